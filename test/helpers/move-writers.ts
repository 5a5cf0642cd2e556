/**
 * The application writing to the source during a move test: every statement on the group is mirrored into the
 * twin tables (schema `twin`, test/helpers/move-fixture.ts) in the same transaction, so the twins hold exactly
 * what committed. Inserts, updates of every column type, NULLs, TOAST-size text, key changes (cascading to the
 * items), a unique value moving between rows, deletes, upserts, savepoints rolled back and whole transactions
 * rolled back. `openSpanning` and `prepareOne` give the transaction that spans rounds and the prepared one.
 * A twin's UPDATE or DELETE changes exactly the rows the group's statement returned (see `changed`): the writers run
 * READ COMMITTED, and a statement's snapshot is not the one before it.
 *
 * Stop-at-fence mode: after the fence, a write fails with the fence message; each writer counts that once and
 * stops. Any other failure is an error the tool must never cause (deadlocks, FK races and unique races between
 * the writers themselves are the application's own and are counted apart).
 */
import pg from 'pg';

export interface MoveWriterStats {
  commits: number;
  rollbacks: number;
  /** Deadlocks, FK and unique races between the writers themselves: retried. */
  conflicts: number;
  /** Writes refused by the fence (stop-at-fence mode). */
  fenced: number;
  errors: number;
  lastError: string | null;
}

/** The fence's message (design §4.2: "… moved to …; writes are refused"). */
export const DEFAULT_FENCE_MESSAGE = /moved to .*writes are refused|writes are refused/i;

const OWN_CONFLICTS = new Set(['40P01', '40001', '23503', '23505']);

/** A small deterministic PRNG (mulberry32), so a writer's choices repeat for a seed. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

interface Ids {
  customers: number;
  orders: number;
}

async function maxIds(c: pg.ClientBase): Promise<Ids> {
  const r = await c.query<{ c: string; o: string }>(
    `SELECT (SELECT max(id) FROM app.customers) AS c, (SELECT max(id) FROM app.orders) AS o`,
  );
  return { customers: Number(r.rows[0]!.c), orders: Number(r.rows[0]!.o) };
}

const COPY_CUSTOMER =
  'INSERT INTO twin.customers SELECT id, referrer_id, name, email, mood, address, ref, created_at FROM app.customers WHERE id = $1';
const COPY_ORDER =
  'INSERT INTO twin.orders SELECT id, customer_id, email, qty, price, weight, ratio, doc, attrs, blob, tags, scores, note, placed_at, ttl, ref FROM app.orders WHERE id = $1';

/**
 * Runs an UPDATE or DELETE on the group by key and says whether it changed the row. The twin's statement runs only
 * then: in READ COMMITTED each statement has its own snapshot, so a row another writer's transaction created (by
 * an insert or a key change) and committed between the group's statement and the twin's is seen by the twin's
 * alone; mirrored by key regardless, the change lands on the twin only (seen as 4 mismatches in 474 runs of
 * move-psql's four writers, each time with the target equal to the source and only the twin wrong).
 */
async function changed(c: pg.ClientBase, sql: string, params: unknown[]): Promise<boolean> {
  return (await c.query(`${sql} RETURNING 1`, params)).rows.length > 0;
}

/** One statement on the group and its mirror on the twins (exported for move-harness's interleavings). */
export async function oneOperation(c: pg.ClientBase, rnd: (n: number) => number, tag: string, ids: Ids): Promise<void> {
  const order = () => 1 + rnd(ids.orders);
  const customer = () => 1 + rnd(ids.customers);
  const kind = rnd(100);
  if (kind < 8) {
    const r = await c.query<{ id: number }>(
      `INSERT INTO app.customers (referrer_id, name, email, mood, address)
       SELECT (SELECT id FROM app.customers WHERE id = $1), $2, $3, $4, ROW($5, $6)::app.addr RETURNING id`,
      [
        customer(),
        `new ${tag}`,
        rnd(3) === 0 ? null : `${tag}@c.example.com`,
        ['sad', 'ok', 'happy'][rnd(3)],
        `street ${tag}`,
        rnd(99999),
      ],
    );
    ids.customers = Math.max(ids.customers, r.rows[0]!.id);
    await c.query(COPY_CUSTOMER, [r.rows[0]!.id]);
  } else if (kind < 25) {
    const note = rnd(15) === 0 ? `${tag} `.repeat(1500) : rnd(4) === 0 ? null : `note ${tag}`;
    const r = await c.query<{ id: string }>(
      `INSERT INTO app.orders (customer_id, email, qty, price, weight, ratio, doc, attrs, blob, tags, scores, note, ttl)
       SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM app.customers WHERE id = $1 RETURNING id`,
      [
        customer(),
        rnd(4) === 0 ? null : `${tag}@o.example.com`,
        1 + rnd(9),
        rnd(5) === 0 ? null : `${rnd(100000)}.5`,
        rnd(1000) / 7,
        rnd(1000) / 3,
        JSON.stringify({ tag, n: rnd(10) }),
        JSON.stringify({ tag, deep: { a: [1, null, 'x'] } }),
        Buffer.from([0, 1, rnd(256), 255]),
        ['a', null, `"${tag}"`],
        [rnd(10), rnd(10)],
        note,
        `${rnd(100)} days ${rnd(60)} seconds`,
      ],
    );
    const id = r.rows[0]?.id;
    if (id === undefined) return;
    ids.orders = Math.max(ids.orders, Number(id));
    await c.query(COPY_ORDER, [id]);
    for (let line = 1; line <= rnd(3); line++) {
      const v = [id, line, `sku ${tag}`, 1 + rnd(5)];
      await c.query('INSERT INTO app.order_items (order_id, line, sku, qty) VALUES ($1, $2, $3, $4)', v);
      await c.query('INSERT INTO twin.order_items (order_id, line, sku, qty) VALUES ($1, $2, $3, $4)', v);
    }
  } else if (kind < 45) {
    const v = [
      order(),
      1 + rnd(9),
      rnd(4) === 0 ? null : `${rnd(1000)}.75`,
      rnd(1000) / 9,
      JSON.stringify({ upd: tag }),
      rnd(3) === 0 ? null : ['u', tag],
      rnd(10) === 0 ? `${tag}|`.repeat(2000) : `upd ${tag}`,
      rnd(2) === 0 ? null : '1 year 2 mons 3 days 04:05:06.789',
    ];
    const set = 'SET qty = $2, price = $3, weight = $4, attrs = $5, tags = $6, note = $7, ttl = $8 WHERE id = $1';
    if (await changed(c, `UPDATE app.orders ${set}`, v)) await c.query(`UPDATE twin.orders ${set}`, v);
  } else if (kind < 50) {
    const set = 'SET email = NULL, note = NULL, doc = NULL, blob = NULL, scores = NULL WHERE id = $1';
    const id = order();
    if (await changed(c, `UPDATE app.orders ${set}`, [id])) await c.query(`UPDATE twin.orders ${set}`, [id]);
  } else if (kind < 58) {
    // The key changes (identity: only to DEFAULT); the items follow by ON UPDATE CASCADE.
    const id = order();
    const r = await c.query<{ id: string }>('UPDATE app.orders SET id = DEFAULT WHERE id = $1 RETURNING id', [id]);
    const moved = r.rows[0]?.id;
    if (moved !== undefined) {
      ids.orders = Math.max(ids.orders, Number(moved));
      await c.query('UPDATE twin.orders SET id = $2 WHERE id = $1', [id, moved]);
      // The items the cascade moved: until this commits, no other session can give the new key an item.
      const lines = (await c.query<{ line: number }>('SELECT line FROM app.order_items WHERE order_id = $1', [moved]))
        .rows;
      await c.query('UPDATE twin.order_items SET order_id = $2 WHERE order_id = $1 AND line = ANY($3::int[])', [
        id,
        moved,
        lines.map((x) => x.line),
      ]);
    }
  } else if (kind < 66) {
    // A unique value moves from one row to another in one transaction.
    const [a, b] = [order(), order()].sort((x, y) => x - y) as [number, number];
    if (a === b) return;
    const r = await c.query<{ email: string | null }>('SELECT email FROM app.orders WHERE id = $1 FOR UPDATE', [a]);
    const email = r.rows[0]?.email ?? null;
    if (await changed(c, 'UPDATE app.orders SET email = NULL WHERE id = $1', [a]))
      await c.query('UPDATE twin.orders SET email = NULL WHERE id = $1', [a]);
    if (email !== null && (await changed(c, 'UPDATE app.orders SET email = $2 WHERE id = $1', [b, email])))
      await c.query('UPDATE twin.orders SET email = $2 WHERE id = $1', [b, email]);
  } else if (kind < 74) {
    const id = order();
    const lines = (
      await c.query<{ line: number }>('DELETE FROM app.order_items WHERE order_id = $1 RETURNING line', [id])
    ).rows.map((x) => x.line);
    await c.query('DELETE FROM twin.order_items WHERE order_id = $1 AND line = ANY($2::int[])', [id, lines]);
    if (await changed(c, 'DELETE FROM app.orders WHERE id = $1', [id]))
      await c.query('DELETE FROM twin.orders WHERE id = $1', [id]);
  } else if (kind < 84) {
    // Upsert: a new item line, or the existing one updated.
    const r = await c.query<{ order_id: string; line: number; sku: string; qty: number }>(
      `INSERT INTO app.order_items (order_id, line, sku, qty) SELECT id, $2, $3, 1 FROM app.orders WHERE id = $1
       ON CONFLICT (order_id, line) DO UPDATE SET qty = app.order_items.qty + 1, sku = excluded.sku RETURNING *`,
      [order(), 1 + rnd(3), `up ${tag}`],
    );
    const row = r.rows[0];
    if (row) {
      await c.query('DELETE FROM twin.order_items WHERE order_id = $1 AND line = $2', [row.order_id, row.line]);
      await c.query('INSERT INTO twin.order_items VALUES ($1, $2, $3, $4)', [row.order_id, row.line, row.sku, row.qty]);
    }
  } else if (kind < 94) {
    const v = [
      customer(),
      ['sad', 'ok', 'happy', null][rnd(4)],
      rnd(3) === 0 ? null : `(upd ${tag},${rnd(99999)})`,
      `renamed ${tag}`,
    ];
    const set = 'SET mood = $2, address = $3::app.addr, name = $4 WHERE id = $1';
    if (await changed(c, `UPDATE app.customers ${set}`, v)) await c.query(`UPDATE twin.customers ${set}`, v);
  } else {
    const r = await c.query<{ id: number }>(
      `DELETE FROM app.customers c WHERE id = $1 AND NOT EXISTS (SELECT FROM app.orders o WHERE o.customer_id = c.id)
          AND NOT EXISTS (SELECT FROM app.customers r WHERE r.referrer_id = c.id) RETURNING id`,
      [customer()],
    );
    if (r.rows[0]) await c.query('DELETE FROM twin.customers WHERE id = $1', [r.rows[0].id]);
  }
}

/** A few operations, some inside a savepoint that is rolled back. */
async function someOperations(c: pg.ClientBase, rnd: (n: number) => number, tag: string, ids: Ids): Promise<void> {
  const ops = 1 + rnd(3);
  for (let i = 0; i < ops; i++) {
    if (rnd(8) === 0) {
      await c.query('SAVEPOINT sp');
      await oneOperation(c, rnd, `${tag}.${i}s`, ids);
      await c.query('ROLLBACK TO SAVEPOINT sp');
    } else {
      await oneOperation(c, rnd, `${tag}.${i}`, ids);
    }
  }
}

export interface MoveWriters {
  readonly stats: MoveWriterStats;
  /** Stops every writer (after its current transaction) and returns the counts. */
  stop(): Promise<MoveWriterStats>;
  /** Resolves when every writer has stopped by itself (stop-at-fence mode: each saw the fence). */
  readonly fencedAll: Promise<MoveWriterStats>;
}

export interface MoveWriterOptions {
  readonly count?: number;
  readonly pauseMs?: number;
  readonly seed?: number;
  /** Each writer stops after its first write refused by the fence. */
  readonly stopAtFence?: boolean;
  readonly fenceMessage?: RegExp;
}

/** Starts the writers on their own connections to the source. */
export async function startMoveWriters(sourceUrl: string, opts: MoveWriterOptions = {}): Promise<MoveWriters> {
  const count = opts.count ?? 4;
  const fence = opts.fenceMessage ?? DEFAULT_FENCE_MESSAGE;
  const stats: MoveWriterStats = { commits: 0, rollbacks: 0, conflicts: 0, fenced: 0, errors: 0, lastError: null };
  let stopping = false;
  const loops = Array.from({ length: count }, async (_, w) => {
    const rnd = prng((opts.seed ?? 1) * 1000 + w);
    const c = new pg.Client({ connectionString: sourceUrl, application_name: `move-writer-${w}` });
    c.on('error', () => undefined);
    await c.connect();
    const ids = await maxIds(c);
    let seq = 0;
    while (!stopping) {
      seq++;
      try {
        await c.query('BEGIN');
        await someOperations(c, rnd, `w${w}-${seq}`, ids);
        if (rnd(10) === 0) {
          await c.query('ROLLBACK');
          stats.rollbacks++;
        } else {
          await c.query('COMMIT');
          stats.commits++;
        }
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        const { code, message } = e as { code?: string; message: string };
        if (fence.test(message)) {
          stats.fenced++;
          if (opts.stopAtFence) break;
        } else if (code !== undefined && OWN_CONFLICTS.has(code)) {
          stats.conflicts++;
        } else {
          stats.errors++;
          stats.lastError = `${code ?? ''} ${message}`;
        }
      }
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
    await c.end().catch(() => undefined);
  });
  const all = Promise.all(loops).then(() => stats);
  return {
    stats,
    async stop() {
      stopping = true;
      return all;
    },
    fencedAll: all,
  };
}

export interface OpenTransaction {
  /** COMMIT (or COMMIT PREPARED for a prepared one). */
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

async function writesInOpenTransaction(sourceUrl: string, name: string, seed: number): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: sourceUrl, application_name: name });
  c.on('error', () => undefined);
  await c.connect();
  const ids = await maxIds(c);
  const rnd = prng(seed);
  await c.query('BEGIN');
  // Sure to touch all three tables: a new order with items, then more.
  for (let i = 0; i < 6; i++)
    await oneOperation(c, (n) => (i === 0 ? Math.min(20, n - 1) : rnd(n)), `${name}-${i}`, ids);
  return c;
}

/** A transaction that writes now and commits when told (after one or more apply rounds). */
export async function openSpanning(sourceUrl: string, seed = 7): Promise<OpenTransaction> {
  const c = await writesInOpenTransaction(sourceUrl, 'move-spanning', seed);
  const end = async (sql: string) => {
    try {
      await c.query(sql);
    } finally {
      await c.end().catch(() => undefined);
    }
  };
  return { commit: () => end('COMMIT'), rollback: () => end('ROLLBACK') };
}

/** A transaction that writes, is PREPAREd (its session ends) and is committed when told. */
export async function prepareOne(sourceUrl: string, gid: string, seed = 11): Promise<OpenTransaction> {
  const c = await writesInOpenTransaction(sourceUrl, 'move-prepared', seed);
  await c.query(`PREPARE TRANSACTION '${gid.replace(/'/g, "''")}'`);
  await c.end();
  const finish = async (sql: string) => {
    const d = new pg.Client({ connectionString: sourceUrl });
    await d.connect();
    try {
      await d.query(`${sql} '${gid.replace(/'/g, "''")}'`);
    } finally {
      await d.end().catch(() => undefined);
    }
  };
  return { commit: () => finish('COMMIT PREPARED'), rollback: () => finish('ROLLBACK PREPARED') };
}
