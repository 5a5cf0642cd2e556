import pg from 'pg';
import type { ClientConfig } from 'pg';

/**
 * A demo schema and an application that keeps writing to it, mirroring every
 * change into a twin table in the same transaction. After a rebuild the table
 * must equal its twin: the oracle for "nothing lost, duplicated or corrupted".
 */
export const DEMO_SCHEMA = 'app';
export const DEMO_TABLE = 'orders';
const COLUMNS = ['id', 'customer_id', 'email', 'qty', 'note', 'created_at'] as const;

export async function createDemoSchema(client: pg.ClientBase, rows: number): Promise<void> {
  await client.query(`
    DROP SCHEMA IF EXISTS app CASCADE;
    CREATE SCHEMA app;
    CREATE TABLE app.customers (id serial PRIMARY KEY, name text NOT NULL);
    INSERT INTO app.customers (name) SELECT 'customer ' || g FROM generate_series(1, 1000) g;
    CREATE TABLE app.orders (
      id serial PRIMARY KEY,
      customer_id integer NOT NULL REFERENCES app.customers (id),
      email text,
      qty integer NOT NULL CHECK (qty > 0),
      note text,
      total numeric(12,2) GENERATED ALWAYS AS (qty * 2.5) STORED,
      created_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT orders_email_key UNIQUE (email)
    );
    CREATE TABLE app.order_items (
      id serial PRIMARY KEY,
      order_id integer NOT NULL REFERENCES app.orders (id) ON UPDATE CASCADE ON DELETE CASCADE,
      sku text NOT NULL
    );
    CREATE TABLE app.orders_twin (
      id integer PRIMARY KEY, customer_id integer NOT NULL, email text, qty integer NOT NULL, note text,
      created_at timestamptz NOT NULL
    );
  `);
  await client.query(
    `
    INSERT INTO app.orders (customer_id, email, qty, note, created_at)
    SELECT 1 + g % 1000, CASE WHEN g % 10 <> 0 THEN 'order' || g || '@example.com' END, 1 + g % 9,
           CASE WHEN g % 3 = 0 THEN NULL ELSE md5(g::text) END, timestamptz '2026-01-01' + g * interval '1 second'
      FROM generate_series(1, $1::int) g`,
    [rows],
  );
  await client.query(`
    CREATE INDEX orders_created_at_idx ON app.orders (created_at DESC);
    CREATE INDEX orders_customer_idx ON app.orders (customer_id) WHERE qty > 1;
    INSERT INTO app.order_items (order_id, sku) SELECT id, 'sku-' || id FROM app.orders WHERE id % 100 = 0;
    INSERT INTO app.orders_twin SELECT ${COLUMNS.join(', ')} FROM app.orders;
    ANALYZE app.orders, app.orders_twin, app.customers, app.order_items;
  `);
}

export interface WriterStats {
  commits: number;
  rollbacks: number;
  /** Errors the application would see that shadowpack must never cause. */
  errors: number;
  /** Deadlocks between the writers themselves: the application's own doing, retried. */
  deadlocks: number;
  /**
   * 40001 "tuple to be … was already moved to another partition due to concurrent update": a writer locked or
   * updated a row that another session's UPDATE of the partition key had just moved (the partition tests' movers).
   * PostgreSQL raises it on a partitioned table on every major, with no shadowpack involved: retried.
   */
  movedAway: number;
  lastError: string | null;
  maxLatencyMs: number;
}

function rnd(n: number): number {
  return Math.floor(Math.random() * n);
}

/** One transaction of random writes, each applied to the table and the twin. */
async function oneTransaction(
  c: pg.Client,
  writer: string,
  seq: number,
  maxId: number,
): Promise<'commit' | 'rollback'> {
  const pick = () => 1 + rnd(maxId);
  await c.query('BEGIN');
  const ops = 1 + rnd(3);
  for (let i = 0; i < ops; i++) {
    const kind = rnd(100);
    if (kind < 30) {
      const email = rnd(4) === 0 ? null : `w${writer}-${seq}-${i}@example.com`;
      const note =
        rnd(20) === 0 ? 'x'.repeat(3000) + String(Math.random()).repeat(400) : rnd(5) === 0 ? null : `note ${seq}`;
      const r = await c.query<{ id: number }>(
        'INSERT INTO app.orders (customer_id, email, qty, note) VALUES ($1, $2, $3, $4) RETURNING id',
        [1 + rnd(1000), email, 1 + rnd(9), note],
      );
      // Copied in SQL, not through JavaScript, so timestamps keep their microseconds.
      await c.query(
        'INSERT INTO app.orders_twin SELECT id, customer_id, email, qty, note, created_at FROM app.orders WHERE id = $1',
        [r.rows[0]!.id],
      );
    } else if (kind < 60) {
      const id = pick();
      const qty = 1 + rnd(9);
      const note = `upd ${writer}/${seq}`;
      await c.query('UPDATE app.orders SET qty = $2, note = $3 WHERE id = $1', [id, qty, note]);
      await c.query('UPDATE app.orders_twin SET qty = $2, note = $3 WHERE id = $1', [id, qty, note]);
    } else if (kind < 70) {
      const id = pick();
      await c.query('UPDATE app.orders SET email = NULL, note = NULL WHERE id = $1', [id]);
      await c.query('UPDATE app.orders_twin SET email = NULL, note = NULL WHERE id = $1', [id]);
    } else if (kind < 80) {
      // The key changes: the old key must vanish from the copy, the new one appear.
      const id = pick();
      const r = await c.query<{ id: number }>(
        "UPDATE app.orders SET id = nextval('app.orders_id_seq') WHERE id = $1 RETURNING id",
        [id],
      );
      if (r.rows[0]) await c.query('UPDATE app.orders_twin SET id = $2 WHERE id = $1', [id, r.rows[0].id]);
    } else if (kind < 90) {
      // A unique value moves from one row to another within one transaction.
      const [a, b] = [pick(), pick()].sort((x, y) => x - y) as [number, number];
      if (a !== b) {
        // FOR UPDATE reads the latest committed email and keeps others from moving it meanwhile;
        // reading it through the statement's snapshot could return one that has moved on already.
        const r = await c.query<{ email: string | null }>('SELECT email FROM app.orders WHERE id = $1 FOR UPDATE', [a]);
        const email = r.rows[0]?.email ?? null;
        await c.query('UPDATE app.orders SET email = NULL WHERE id = $1', [a]);
        await c.query('UPDATE app.orders_twin SET email = NULL WHERE id = $1', [a]);
        if (email !== null) {
          await c.query('UPDATE app.orders SET email = $2 WHERE id = $1', [b, email]);
          await c.query('UPDATE app.orders_twin SET email = $2 WHERE id = $1', [b, email]);
        }
      }
    } else {
      const id = pick();
      await c.query('DELETE FROM app.orders WHERE id = $1', [id]);
      await c.query('DELETE FROM app.orders_twin WHERE id = $1', [id]);
    }
  }
  if (rnd(10) === 0) {
    await c.query('ROLLBACK');
    return 'rollback';
  }
  await c.query('COMMIT');
  return 'commit';
}

export interface Writers {
  readonly stats: WriterStats;
  stop(): Promise<WriterStats>;
}

/**
 * Starts `count` writers on their own connections; `pauseMs` between transactions keeps the machine usable.
 * Writers update and delete ids from 1 to the largest id, or to `maxId` when a test placed a few far-away keys.
 */
export async function startWriters(
  config: ClientConfig,
  count: number,
  pauseMs = 0,
  maxIdOverride?: number,
): Promise<Writers> {
  // Emails written by this set of writers must not collide with an earlier set's.
  const tag = Math.random().toString(36).slice(2, 8);
  const stats: WriterStats = {
    commits: 0,
    rollbacks: 0,
    errors: 0,
    deadlocks: 0,
    movedAway: 0,
    lastError: null,
    maxLatencyMs: 0,
  };
  let stopping = false;
  const setup = new pg.Client(config);
  await setup.connect();
  const maxId =
    maxIdOverride ?? Number((await setup.query<{ m: string }>('SELECT max(id) AS m FROM app.orders')).rows[0]!.m);
  await setup.end();
  const loops = Array.from({ length: count }, async (_, w) => {
    const c = new pg.Client({ ...config, application_name: `demo-writer-${w}` });
    c.on('error', () => undefined);
    await c.connect();
    let seq = 0;
    while (!stopping) {
      seq++;
      const t0 = Date.now();
      try {
        const r = await oneTransaction(c, `${tag}-${w}`, seq, maxId);
        if (r === 'commit') stats.commits++;
        else stats.rollbacks++;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        const code = (e as { code?: string }).code;
        if (code === '40P01') stats.deadlocks++;
        else if (code === '40001' && /already moved to another partition due to concurrent update/.test(String(e)))
          stats.movedAway++;
        else {
          stats.errors++;
          stats.lastError = `${code ?? ''} ${(e as Error).message}`;
        }
      }
      stats.maxLatencyMs = Math.max(stats.maxLatencyMs, Date.now() - t0);
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    await c.end().catch(() => undefined);
  });
  return {
    stats,
    async stop() {
      stopping = true;
      await Promise.all(loops);
      return stats;
    },
  };
}

export interface TwinComparison {
  readonly rows: number;
  readonly missing: number;
  readonly extra: number;
  readonly badGenerated: number;
}

/** The table against its twin, both ways, plus the generated column recomputed. */
export async function compareWithTwin(client: pg.ClientBase): Promise<TwinComparison> {
  const cols = COLUMNS.join(', ');
  const r = await client.query<{ rows: string; missing: string; extra: string; bad: string }>(`
    SELECT (SELECT count(*) FROM app.orders) AS rows,
           (SELECT count(*) FROM (SELECT ${cols} FROM app.orders_twin EXCEPT ALL SELECT ${cols} FROM app.orders) x) AS missing,
           (SELECT count(*) FROM (SELECT ${cols} FROM app.orders EXCEPT ALL SELECT ${cols} FROM app.orders_twin) x) AS extra,
           (SELECT count(*) FROM app.orders WHERE total IS DISTINCT FROM qty * 2.5) AS bad`);
  const row = r.rows[0]!;
  return {
    rows: Number(row.rows),
    missing: Number(row.missing),
    extra: Number(row.extra),
    badGenerated: Number(row.bad),
  };
}
