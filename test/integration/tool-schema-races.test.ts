import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { planTable, psql } from '../helpers/rebuild.js';

/**
 * Runs on different tables share the tool schema and its state table: setup creates them, cleanup
 * and abort drop the state table once no run is left in it. Each interleaving below is made
 * deterministic by a third session holding the table's lock, which keeps a setup's transaction open
 * at its lock step (after it created the schema and inserted its run's row). psql runs the very
 * statements the runner runs (one session, one statement after another), so psql covers both.
 */
describe('runs on different tables share the tool schema safely', () => {
  let db: FreshDatabase;

  beforeAll(async () => {
    db = await freshDatabase('schema_races');
    await withClient(db.url, (c) =>
      c.query(`
      CREATE TABLE public.ta (id bigserial PRIMARY KEY, v int);
      CREATE TABLE public.tb (id bigserial PRIMARY KEY, v int);
      CREATE TABLE public.tc (id bigserial PRIMARY KEY, v int);
      INSERT INTO public.ta (v) SELECT g FROM generate_series(1, 500) g;
      INSERT INTO public.tb (v) SELECT g FROM generate_series(1, 500) g;
      INSERT INTO public.tc (v) SELECT g FROM generate_series(1, 500) g`),
    );
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** A plan whose lock step waits long enough for the test to line the sessions up. */
  async function plan(table: string): Promise<{ dir: string; runId: string }> {
    const p = await planTable(db.url, 'public', table, {
      lockBudgetMs: 60000,
      lockAttempts: 10000,
      backoffBaseMs: 50,
      backoffMaxMs: 100,
    });
    return { dir: p.dir, runId: p.manifest.runId };
  }

  /** Runs the stages with psql, one after another; each must succeed. */
  async function stages(p: { dir: string }, ...files: string[]): Promise<void> {
    for (const f of files) {
      const r = await psql(db.url, join(p.dir, f));
      expect(r.code, `${f}: ${r.stderr}`).toBe(0);
    }
  }

  /** Waits until the session of the stage (by its application_name) satisfies `where`. */
  async function waitFor(c: pg.Client, app: string, where: string): Promise<void> {
    for (let i = 0; i < 600; i++) {
      const r = await c.query(`SELECT FROM pg_stat_activity WHERE application_name = $1 AND ${where}`, [app]);
      if (r.rowCount! > 0) return;
      await new Promise((res) => setTimeout(res, 50));
    }
    const seen = await c.query(
      'SELECT application_name, state, wait_event_type, wait_event, left(query, 300) AS query FROM pg_stat_activity WHERE datname = current_database()',
    );
    throw new Error(`timed out waiting for ${app}: ${where}; sessions: ${JSON.stringify(seen.rows)}`);
  }

  const inLockStep = "query LIKE '%pg_stat_clear_snapshot%'";
  const waitingOnLock = "wait_event_type = 'Lock'";

  it('two first-ever setups on different tables at once both succeed (CREATE SCHEMA does not collide)', async () => {
    const a = await plan('ta');
    const b = await plan('tb');
    await stages(a, '00-preflight.sql');
    await stages(b, '00-preflight.sql');
    await withClient(db.url, async (c) => {
      expect((await c.query("SELECT FROM pg_namespace WHERE nspname = 'shadowpack'")).rowCount).toBe(0);
    });
    const holder = new pg.Client({ connectionString: db.url });
    const watcher = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await watcher.connect();
    try {
      // (SHARE: it blocks the lock step, SHARE ROW EXCLUSIVE, and none of the reads before it.)
      // A's setup stops at its lock step with the schema created but not committed; B's setup starts then.
      await holder.query('BEGIN; LOCK TABLE public.ta IN SHARE MODE');
      const setupA = psql(db.url, join(a.dir, '01-setup.sql'));
      await Promise.race([
        waitFor(watcher, `shadowpack/${a.runId}/setup`, inLockStep),
        setupA.then((x) => {
          throw new Error(`setup A ended: ${x.stderr}`);
        }),
      ]);
      const setupB = psql(db.url, join(b.dir, '01-setup.sql'));
      await waitFor(watcher, `shadowpack/${b.runId}/setup`, waitingOnLock);
      await holder.query('COMMIT');
      const [ra, rb] = await Promise.all([setupA, setupB]);
      expect(ra.code, ra.stderr).toBe(0);
      expect(rb.code, rb.stderr).toBe(0);
      const stages = await watcher.query<{ run_id: string; stage: string }>(
        'SELECT run_id, stage FROM shadowpack.runs ORDER BY table_name',
      );
      expect(stages.rows).toEqual([
        { run_id: a.runId, stage: 'setup' },
        { run_id: b.runId, stage: 'setup' },
      ]);
    } finally {
      await holder.end();
      await watcher.end();
      // Whatever happened, leave no run behind for the next test (abort also removes leftovers).
      await psql(db.url, join(a.dir, '90-abort.sql'));
      await psql(db.url, join(b.dir, '90-abort.sql'));
    }
    await withClient(db.url, async (c) => {
      expect((await c.query("SELECT FROM pg_class WHERE oid = to_regclass('shadowpack.runs')")).rowCount).toBe(0);
    });
  });

  it("a cleanup that ends the last run while another run's setup is uncommitted keeps that run's state; a preflight meanwhile reads the state table", async () => {
    const a = await plan('ta');
    const b = await plan('tb');
    const c = await plan('tc');
    await stages(
      a,
      '00-preflight.sql',
      '01-setup.sql',
      '02-backfill.sql',
      '03-build.sql',
      '04-catchup.sql',
      '05-swap.sql',
    );
    await stages(c, '00-preflight.sql');
    const holder = new pg.Client({ connectionString: db.url });
    const watcher = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await watcher.connect();
    try {
      // C's setup stops at its lock step, its row in shadowpack.runs inserted but not committed;
      // then A's cleanup removes A's run, the last committed one.
      await holder.query('BEGIN; LOCK TABLE public.tc IN SHARE MODE');
      const setupC = psql(db.url, join(c.dir, '01-setup.sql'));
      await waitFor(watcher, `shadowpack/${c.runId}/setup`, inLockStep);
      const cleanupA = psql(db.url, join(a.dir, '06-cleanup.sql'));
      await waitFor(watcher, `shadowpack/${a.runId}/cleanup`, waitingOnLock);
      // B's preflight finds the state table, then reads it once the cleanup is through with it.
      const preflightB = psql(db.url, join(b.dir, '00-preflight.sql'));
      await waitFor(watcher, `shadowpack/${b.runId}/preflight`, waitingOnLock);
      await holder.query('COMMIT');
      const [rc, ra, rb] = await Promise.all([setupC, cleanupA, preflightB]);
      expect(rc.code, rc.stderr).toBe(0);
      expect(ra.code, ra.stderr).toBe(0);
      const left = await watcher.query<{ run_id: string; stage: string }>('SELECT run_id, stage FROM shadowpack.runs');
      expect(left.rows).toEqual([{ run_id: c.runId, stage: 'setup' }]);
      expect(rb.code, rb.stderr).toBe(0);
    } finally {
      await holder.end();
      await watcher.end();
    }
    // C's run goes on from its state: its backfill runs, and its abort removes it.
    await stages(c, '02-backfill.sql', '90-abort.sql');
  });
});
