/**
 * Production-safety behaviour of a run: TRUNCATE refused, DDL drift caught,
 * capture for unusual writers, bounded lock waits for the application, the
 * old-snapshot wait, and a server crash in the middle of the backfill.
 *
 * Every test gets its own database with a small demo table.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { freshDatabase, quoteIdent, withClient, type FreshDatabase } from '../helpers/db.js';
import { catalogSnapshot, cli, leftovers, planTable, type Exit } from '../helpers/rebuild.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';
import { restartImmediate, startEmbeddedPostgres, type EmbeddedServer } from '../../src/dev/embedded-server.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const databases: FreshDatabase[] = [];

async function prepared(prefix: string, rows: number, adminUrl?: string): Promise<FreshDatabase> {
  const db = adminUrl === undefined ? await freshDatabase(prefix) : await freshDatabase(prefix, adminUrl);
  databases.push(db);
  await withClient(db.url, (c) => createDemoSchema(c, rows));
  return db;
}

afterAll(async () => {
  for (const db of databases.splice(0)) await db.drop().catch(() => undefined);
});

function runPlan(plan: LoadedPlan, url: string, ...extra: string[]): Promise<Exit> {
  return cli(['run', '--plan', plan.dir, '--url', url, ...extra]);
}

interface StatusJson {
  state: { stage: string; backfillNext: number; backfillEnd: number; backlog: number | null } | null;
  next: string;
}

async function status(plan: LoadedPlan, url: string): Promise<StatusJson> {
  const r = await cli(['status', '--plan', plan.dir, '--url', url, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim()) as StatusJson;
}

async function expectEqualsTwin(url: string, minRows: number): Promise<void> {
  await withClient(url, async (c) => {
    const cmp = await compareWithTwin(c);
    expect(cmp).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
    expect(cmp.rows).toBeGreaterThanOrEqual(minRows);
  });
}

async function tableOid(url: string): Promise<string> {
  return withClient(url, async (c) => String((await c.query("SELECT 'app.orders'::regclass::oid AS o")).rows[0].o));
}

function rnd(n: number): number {
  return Math.floor(Math.random() * n);
}

/** An application connection doing one kind of write in a loop, one transaction at a time. */
interface WriteLoop {
  readonly name: string;
  commits: number;
  readonly errors: string[];
  stop(): Promise<void>;
}

async function writeLoop(
  name: string,
  config: pg.ClientConfig,
  onConnect: (c: pg.Client) => Promise<void>,
  transaction: (c: pg.Client, seq: number) => Promise<void>,
  pauseMs = 3,
): Promise<WriteLoop> {
  const c = new pg.Client({ ...config, application_name: name });
  c.on('error', () => undefined);
  await c.connect();
  await onConnect(c);
  let stopping = false;
  const state: WriteLoop = {
    name,
    commits: 0,
    errors: [],
    async stop() {
      stopping = true;
      await done;
      await c.end().catch(() => undefined);
    },
  };
  const done = (async () => {
    let seq = 0;
    while (!stopping) {
      seq++;
      try {
        await c.query('BEGIN');
        await transaction(c, seq);
        await c.query('COMMIT');
        state.commits++;
      } catch (e) {
        state.errors.push(`${(e as { code?: string }).code ?? ''} ${(e as Error).message}`);
        await c.query('ROLLBACK').catch(() => undefined);
      }
      await sleep(pauseMs);
    }
  })();
  return state;
}

describe('production safety', () => {
  it('refuses TRUNCATE while a run is set up, and allows it again after abort', async () => {
    const db = await prepared('ps_truncate', 5_000);
    const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
    const plan = await planTable(db.url, 'app', 'orders');
    const r = await runPlan(plan, db.url, '--until', 'setup');
    expect(r.code, r.stderr).toBe(0);

    await withClient(db.url, async (c) => {
      // order_items references the table, so a plain TRUNCATE would fail for that reason alone.
      const err = await c.query('TRUNCATE app.orders CASCADE').then(
        () => null,
        (e: Error) => e,
      );
      expect(err, 'TRUNCATE succeeded while the run was set up').not.toBeNull();
      expect(err!.message).toMatch(/shadowpack/);
      expect(err!.message).toMatch(/refused/);
      expect(Number((await c.query('SELECT count(*) AS n FROM app.orders')).rows[0].n)).toBe(5_000);
      expect(Number((await c.query('SELECT count(*) AS n FROM app.order_items')).rows[0].n)).toBe(50);
    });

    const a = await runPlan(plan, db.url, '--stage', 'abort');
    expect(a.code, a.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await leftovers(c)).toEqual([]);
      expect(await catalogSnapshot(c, 'app', 'orders')).toEqual(before);
      await c.query('TRUNCATE app.orders CASCADE');
      expect(Number((await c.query('SELECT count(*) AS n FROM app.orders')).rows[0].n)).toBe(0);
    });
  });

  it('refuses to go on with the backfill after the table was rewritten by VACUUM FULL', async () => {
    const db = await prepared('ps_vacuum_full', 10_000);
    const plan = await planTable(db.url, 'app', 'orders', { batchPages: 5 });
    const r = await runPlan(plan, db.url, '--until', 'setup');
    expect(r.code, r.stderr).toBe(0);
    // Rows that nobody changed move to other pages: page ranges copied so far no longer mean anything.
    await withClient(db.url, async (c) => {
      await c.query('DELETE FROM app.orders WHERE id % 2 = 0');
      await c.query('DELETE FROM app.orders_twin WHERE id % 2 = 0');
      await c.query('VACUUM FULL app.orders');
    });
    const b = await runPlan(plan, db.url, '--until', 'backfill');
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/was rewritten \(VACUUM FULL or CLUSTER\?\) during the backfill/);
    const a = await runPlan(plan, db.url, '--stage', 'abort');
    expect(a.code, a.stderr).toBe(0);
    await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
  });

  it('stops at DDL drift without advancing, and completes once the drift is undone', async () => {
    const db = await prepared('ps_drift', 10_000);
    const plan = await planTable(db.url, 'app', 'orders', { batchPages: 20 });
    let writers = await startWriters({ connectionString: db.url }, 2, 5);
    const r = await runPlan(plan, db.url, '--until', 'backfill');
    expect(r.code, r.stderr).toBe(0);
    let stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    expect((await status(plan, db.url)).state?.stage).toBe('backfill');

    await withClient(db.url, (c) => c.query('CREATE INDEX orders_note_drift_idx ON app.orders (note)'));
    const drifted = await runPlan(plan, db.url, '--until', 'cleanup');
    expect(drifted.code, drifted.stderr).toBe(2);
    expect(drifted.stderr).toContain('changed since this plan was made');
    const after = await status(plan, db.url);
    expect(after.state?.stage).toBe('backfill');
    expect(after.next).toBe('build');
    await withClient(db.url, async (c) => {
      // The build stage did not start: the copy has no index and no constraint yet (PostgreSQL 18's NOT NULL ones aside).
      const copy = await c.query<{ indexes: string; constraints: string }>(`
        SELECT (SELECT count(*) FROM pg_index WHERE indrelid = t.oid) AS indexes,
               (SELECT count(*) FROM pg_constraint WHERE conrelid = t.oid AND contype <> 'n') AS constraints
          FROM pg_class t WHERE t.relname LIKE '\\_sp\\_%\\_new' AND t.relkind = 'r'`);
      expect(copy.rows).toEqual([{ indexes: '0', constraints: '0' }]);
    });

    await withClient(db.url, (c) => c.query('DROP INDEX app.orders_note_drift_idx'));
    writers = await startWriters({ connectionString: db.url }, 2, 5);
    const done = await runPlan(plan, db.url, '--until', 'cleanup');
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/done/);
    stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await expectEqualsTwin(db.url, 5_000);
    await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
  });

  describe('capture for every kind of writer', () => {
    let role: string | undefined;
    afterEach(async () => {
      // Databases go first: the role still holds privileges in them.
      for (const db of databases.splice(0)) await db.drop().catch(() => undefined);
      if (role)
        await withClient(inject('adminUrl'), (c) => c.query(`DROP ROLE IF EXISTS ${quoteIdent(role!)}`)).catch(
          () => undefined,
        );
    });

    it('replica-role sessions, an unprivileged role and upserts all reach the rebuilt table', async () => {
      const ROWS = 20_000;
      const db = await prepared('ps_capture', ROWS);
      role = `app_writer_${randomBytes(3).toString('hex')}`;
      const password = randomBytes(9).toString('hex');
      await withClient(db.url, (c) =>
        c.query(`
          CREATE ROLE ${quoteIdent(role!)} LOGIN PASSWORD '${password}';
          GRANT CONNECT ON DATABASE ${quoteIdent(db.name)} TO ${quoteIdent(role!)};
          GRANT USAGE ON SCHEMA app TO ${quoteIdent(role!)};
          GRANT SELECT, INSERT, UPDATE, DELETE ON app.orders, app.orders_twin TO ${quoteIdent(role!)};
          GRANT USAGE ON SEQUENCE app.orders_id_seq TO ${quoteIdent(role!)};`),
      );
      const roleUrl = new URL(db.url);
      roleUrl.username = role;
      roleUrl.password = password;

      const plan = await planTable(db.url, 'app', 'orders', { batchPages: 20 });
      const tag = randomBytes(3).toString('hex');

      // (a) session_replication_role = replica: ordinary triggers do not fire for it.
      let replicaUpdates = 0;
      const replica = await writeLoop(
        'replica-writer',
        { connectionString: db.url },
        async (c) => {
          await c.query('SET session_replication_role = replica');
          expect((await c.query('SHOW session_replication_role')).rows[0].session_replication_role).toBe('replica');
        },
        async (c, seq) => {
          const id = 1 + rnd(ROWS);
          const qty = 1 + rnd(9);
          const note = `replica ${seq}`;
          const u = await c.query('UPDATE app.orders SET qty = $2, note = $3 WHERE id = $1', [id, qty, note]);
          await c.query('UPDATE app.orders_twin SET qty = $2, note = $3 WHERE id = $1', [id, qty, note]);
          replicaUpdates += u.rowCount ?? 0;
        },
      );

      // (b) a role with no privilege at all on the tool's schema.
      const unprivileged = await writeLoop(
        'unprivileged-writer',
        { connectionString: roleUrl.toString() },
        async (c) => {
          const u = await c.query<{ u: string; su: boolean }>(
            'SELECT current_user AS u, rolsuper AS su FROM pg_roles WHERE rolname = current_user',
          );
          expect(u.rows[0]).toEqual({ u: role, su: false });
        },
        async (c, seq) => {
          const kind = rnd(4);
          if (kind === 0) {
            const email = rnd(3) === 0 ? null : `role-${tag}-${seq}@example.com`;
            const ins = await c.query<{ id: number }>(
              'INSERT INTO app.orders (customer_id, email, qty, note) VALUES ($1, $2, $3, $4) RETURNING id',
              [1 + rnd(1000), email, 1 + rnd(9), `role ${seq}`],
            );
            await c.query(
              'INSERT INTO app.orders_twin SELECT id, customer_id, email, qty, note, created_at FROM app.orders WHERE id = $1',
              [ins.rows[0]!.id],
            );
          } else if (kind === 1) {
            const id = 1 + rnd(ROWS);
            const qty = 1 + rnd(9);
            await c.query('UPDATE app.orders SET qty = $2, email = NULL WHERE id = $1', [id, qty]);
            await c.query('UPDATE app.orders_twin SET qty = $2, email = NULL WHERE id = $1', [id, qty]);
          } else if (kind === 2) {
            const id = 1 + rnd(ROWS);
            const r = await c.query<{ id: number }>(
              "UPDATE app.orders SET id = nextval('app.orders_id_seq') WHERE id = $1 RETURNING id",
              [id],
            );
            if (r.rows[0]) await c.query('UPDATE app.orders_twin SET id = $2 WHERE id = $1', [id, r.rows[0].id]);
          } else {
            const id = 1 + rnd(ROWS);
            await c.query('DELETE FROM app.orders WHERE id = $1', [id]);
            await c.query('DELETE FROM app.orders_twin WHERE id = $1', [id]);
          }
        },
      );

      // (c) INSERT ... ON CONFLICT DO UPDATE, on existing keys and on keys of its own range.
      const upserts = await writeLoop(
        'upsert-writer',
        { connectionString: db.url },
        async () => undefined,
        async (c, seq) => {
          const id = rnd(2) === 0 ? 1 + rnd(ROWS) : 10_000_000 + rnd(500);
          const email = rnd(3) === 0 ? null : `upsert-${tag}-${seq}@example.com`;
          await c.query(
            `INSERT INTO app.orders (id, customer_id, email, qty, note) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, qty = EXCLUDED.qty, note = EXCLUDED.note`,
            [id, 1 + rnd(1000), email, 1 + rnd(9), `upsert ${seq}`],
          );
          await c.query(
            `INSERT INTO app.orders_twin SELECT id, customer_id, email, qty, note, created_at FROM app.orders WHERE id = $1
             ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, email = EXCLUDED.email, qty = EXCLUDED.qty,
                                            note = EXCLUDED.note, created_at = EXCLUDED.created_at`,
            [id],
          );
        },
      );

      const loops = [replica, unprivileged, upserts];
      try {
        const oid = await tableOid(db.url);
        await sleep(300);
        // While the run is in progress, the role must have no privilege on the tool's schema.
        const toolPrivileges: string[] = [];
        let watching = true;
        const watcher = withClient(db.url, async (c) => {
          while (watching) {
            const p = await c.query<{ usage: boolean | null; create: boolean | null }>(
              `
              SELECT has_schema_privilege($1, n.oid, 'USAGE') AS usage, has_schema_privilege($1, n.oid, 'CREATE') AS create
                FROM pg_namespace n WHERE n.nspname = 'shadowpack'`,
              [role],
            );
            if (p.rows[0]) toolPrivileges.push(`${p.rows[0].usage}/${p.rows[0].create}`);
            await sleep(100);
          }
        });
        const r = await runPlan(plan, db.url, '--until', 'cleanup');
        watching = false;
        await watcher;
        expect(r.code, r.stderr).toBe(0);
        expect(toolPrivileges.length).toBeGreaterThan(0);
        expect(new Set(toolPrivileges)).toEqual(new Set(['false/false']));
        expect(r.stdout).toMatch(/done/);
        // The table really was swapped, and every writer keeps writing to the rebuilt one.
        expect(await tableOid(db.url)).not.toBe(oid);
        const atEnd = loops.map((l) => l.commits);
        for (let i = 0; i < 100 && loops.some((l, k) => l.commits < atEnd[k]! + 5); i++) await sleep(50);
      } finally {
        for (const l of loops) await l.stop();
      }
      for (const l of loops) {
        expect(l.errors, l.name).toEqual([]);
        expect(l.commits, l.name).toBeGreaterThan(20);
      }
      expect(replicaUpdates).toBeGreaterThan(10);
      await expectEqualsTwin(db.url, ROWS / 2);
      await withClient(db.url, async (c) => {
        expect(await leftovers(c)).toEqual([]);
        // Some upserts inserted, some updated: both paths were exercised.
        expect(
          Number((await c.query('SELECT count(*) AS n FROM app.orders WHERE id >= 10000000')).rows[0].n),
        ).toBeGreaterThan(0);
        expect(
          Number(
            (await c.query("SELECT count(*) AS n FROM app.orders WHERE id < 10000000 AND note LIKE 'upsert %'")).rows[0]
              .n,
          ),
        ).toBeGreaterThan(0);
        expect(
          Number((await c.query("SELECT count(*) AS n FROM app.orders WHERE note LIKE 'replica %'")).rows[0].n),
        ).toBeGreaterThan(0);
        expect(
          Number((await c.query("SELECT count(*) AS n FROM app.orders WHERE note LIKE 'role %'")).rows[0].n),
        ).toBeGreaterThan(0);
      });
    });
  });

  it('gives up on the swap lock behind an idle-in-transaction reader, never stalling the application long', async () => {
    const options = {
      lockTimeoutMs: 100,
      lockAttempts: 3,
      backoffBaseMs: 50,
      backoffMaxMs: 100,
      snapshotWaitSeconds: 1,
    };
    const db = await prepared('ps_lockwait', 10_000);
    const plan = await planTable(db.url, 'app', 'orders', options);
    const r = await runPlan(plan, db.url, '--until', 'catchup');
    expect(r.code, r.stderr).toBe(0);
    const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
    const oid = await tableOid(db.url);

    const holder = new pg.Client({ connectionString: db.url, application_name: 'access-share-holder' });
    holder.on('error', () => undefined);
    await holder.connect();
    const probe = new pg.Client({ connectionString: db.url, application_name: 'latency-probe' });
    probe.on('error', () => undefined);
    await probe.connect();
    try {
      const holderPid = Number((await holder.query('SELECT pg_backend_pid() AS p')).rows[0].p);
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM app.orders LIMIT 1');
      const seen = await withClient(db.url, (c) =>
        c.query<{ state: string; xmin: string | null; locked: boolean }>(
          `SELECT a.state, a.backend_xmin::text AS xmin,
                  EXISTS (SELECT FROM pg_locks l WHERE l.pid = a.pid AND l.relation = 'app.orders'::regclass AND l.mode = 'AccessShareLock' AND l.granted) AS locked
             FROM pg_stat_activity a WHERE a.pid = $1`,
          [holderPid],
        ),
      );
      expect(seen.rows[0]).toMatchObject({ state: 'idle in transaction', locked: true });
      // READ COMMITTED between statements: no snapshot, so the old-snapshot wait has nobody to wait for.
      expect(seen.rows[0]!.xmin).toBeNull();

      let probing = true;
      const latencies: number[] = [];
      const probeLoop = (async () => {
        while (probing) {
          const t0 = performance.now();
          await probe.query('SELECT count(*) FROM app.orders WHERE id = 1');
          latencies.push(performance.now() - t0);
          await sleep(20);
        }
      })();
      const started = Date.now();
      const swap = await runPlan(plan, db.url, '--until', 'cleanup');
      const elapsed = Date.now() - started;
      probing = false;
      await probeLoop;

      expect(swap.code, swap.stderr).toBe(2);
      // READ COMMITTED holder: the snapshot wait passes, the lock attempts give up. Two wordings exist:
      // a timed-out attempt ("after 3 rounds (N attempts of 100 ms)"), or no attempt made behind a long-held
      // lock ("after 3 rounds (N attempts): held by pid N (...)"), which must then name the holder.
      expect(swap.stderr).not.toMatch(/old snapshots/);
      const failure =
        /could not take ACCESS EXCLUSIVE on "app"\."orders"[^\n]* after 3 rounds \(\d+ attempts(?<rest>[^\n]*)/.exec(
          swap.stderr,
        );
      expect(failure, swap.stderr).not.toBeNull();
      expect(failure!.groups!.rest).toMatch(/nothing was changed/);
      if (/held by/.test(failure!.groups!.rest!))
        expect(failure!.groups!.rest).toContain(`pid ${holderPid} (access-share-holder`);
      else expect(failure!.groups!.rest).toMatch(/^ of 100 ms\);/);
      expect(swap.stderr).not.toMatch(/internal error/);
      expect(latencies.length).toBeGreaterThan(10);
      const max = Math.max(...latencies);
      expect(
        max,
        `probe latencies (ms): ${latencies.map((x) => x.toFixed(0)).join(' ')}; run took ${elapsed} ms`,
      ).toBeLessThan(options.lockTimeoutMs + 150);

      const st = await status(plan, db.url);
      expect(st.state?.stage).toBe('catchup');
      expect(await tableOid(db.url)).toBe(oid);
      await withClient(db.url, async (c) => expect(await catalogSnapshot(c, 'app', 'orders')).toEqual(before));
      await expectEqualsTwin(db.url, 10_000);

      await holder.query('COMMIT');
      const done = await runPlan(plan, db.url, '--until', 'cleanup');
      expect(done.code, done.stderr).toBe(0);
      expect(done.stdout).toMatch(/done/);
      expect(await tableOid(db.url)).not.toBe(oid);
      await expectEqualsTwin(db.url, 10_000);
      await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
    } finally {
      await holder.end().catch(() => undefined);
      await probe.end().catch(() => undefined);
    }
  });

  it('does not swap under a REPEATABLE READ snapshot older than the copy', async () => {
    const db = await prepared('ps_snapshot', 10_000);
    const plan = await planTable(db.url, 'app', 'orders', { snapshotWaitSeconds: 2, batchPages: 20 });
    const reader = new pg.Client({ connectionString: db.url, application_name: 'old-snapshot-reader' });
    reader.on('error', () => undefined);
    await reader.connect();
    try {
      const readerPid = Number((await reader.query('SELECT pg_backend_pid() AS p')).rows[0].p);
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await reader.query('SELECT 1 FROM app.customers LIMIT 1');

      const writers = await startWriters({ connectionString: db.url }, 2, 5);
      const oid = await tableOid(db.url);
      const started = Date.now();
      const r = await runPlan(plan, db.url, '--until', 'cleanup');
      const stats = await writers.stop();
      expect(stats.errors, stats.lastError ?? '').toBe(0);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/gave up after 2 s waiting for sessions with old snapshots/);
      expect(r.stderr).toContain(`pid ${readerPid} (old-snapshot-reader`);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
      expect((await status(plan, db.url)).state?.stage).toBe('catchup');
      expect(await tableOid(db.url)).toBe(oid);

      // In its old snapshot the reader sees every row it should: the table as it was, equal to the twin then.
      const orders = Number((await reader.query('SELECT count(*) AS n FROM app.orders')).rows[0].n);
      const twin = Number((await reader.query('SELECT count(*) AS n FROM app.orders_twin')).rows[0].n);
      expect(orders).toBe(10_000);
      expect(orders).toBe(twin);
      const inSnapshot = await compareWithTwin(reader);
      expect(inSnapshot).toMatchObject({ rows: 10_000, missing: 0, extra: 0, badGenerated: 0 });
      await reader.query('COMMIT');

      const done = await runPlan(plan, db.url, '--until', 'cleanup');
      expect(done.code, done.stderr).toBe(0);
      expect(done.stdout).toMatch(/done/);
      expect(await tableOid(db.url)).not.toBe(oid);
      await expectEqualsTwin(db.url, 5_000);
      await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
    } finally {
      await reader.end().catch(() => undefined);
    }
  });

  describe('server crash during the backfill', () => {
    let server: EmbeddedServer | undefined;
    afterAll(async () => {
      await server?.stop();
    });

    it('is resumed by the next run after crash recovery, with nothing lost', async () => {
      server = await startEmbeddedPostgres({ settings: { shared_buffers: '64MB', max_connections: '50' } });
      const db = await freshDatabase('ps_server_crash', server.url);
      await withClient(db.url, (c) => createDemoSchema(c, 60_000));
      // The rows/s ceiling keeps the backfill running for a few seconds however
      // fast or loaded the machine is, so the crash lands inside it.
      const plan = await planTable(db.url, 'app', 'orders', { batchPages: 5, maxRowsPerSecond: 15_000 });

      let writers = await startWriters({ connectionString: db.url }, 2, 3);
      const runner = runPlan(plan, db.url, '--until', 'cleanup');
      let crashedAt = 'timeout';
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const s = await withClient(db.url, async (c) => {
          const e = await c.query("SELECT to_regclass('shadowpack.runs') IS NOT NULL AS e");
          if (!e.rows[0].e) return null;
          return (
            (
              await c.query<{ stage: string; backfill_next: string; backfill_end: string }>(
                'SELECT stage, backfill_next, backfill_end FROM shadowpack.runs',
              )
            ).rows[0] ?? null
          );
        }).catch(() => null);
        if (s && s.stage === 'setup' && Number(s.backfill_next) > 0) {
          crashedAt = `backfill page ${s.backfill_next} of ${s.backfill_end}`;
          break;
        }
        await sleep(50);
      }
      await restartImmediate(server);
      const failed = await runner;
      await writers.stop();
      expect(crashedAt, 'the backfill was never seen in progress').not.toBe('timeout');
      expect(failed.code, `${crashedAt}: ${failed.stderr}`).toBe(2);
      expect(failed.signal).toBeNull();
      expect(failed.stderr).toMatch(
        /CONNECTION_FAILED: lost the connection during stage backfill .*run the same command again/,
      );

      await withClient(db.url, async (c) => {
        const s = await c.query<{ stage: string; backfill_next: string; backfill_end: string }>(
          'SELECT stage, backfill_next, backfill_end FROM shadowpack.runs',
        );
        expect(s.rows[0]?.stage).toBe('setup');
        expect(Number(s.rows[0]!.backfill_next)).toBeLessThan(Number(s.rows[0]!.backfill_end));
        expect(Number(s.rows[0]!.backfill_next)).toBeGreaterThan(0);
      });

      writers = await startWriters({ connectionString: db.url }, 2, 3);
      const done = await runPlan(plan, db.url, '--until', 'cleanup');
      await sleep(200);
      const stats = await writers.stop();
      expect(done.code, done.stderr).toBe(0);
      expect(done.stdout).toMatch(/done/);
      expect(stats.errors, stats.lastError ?? '').toBe(0);
      await expectEqualsTwin(db.url, 30_000);
      await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
      await db.drop();
    });
  });
});
