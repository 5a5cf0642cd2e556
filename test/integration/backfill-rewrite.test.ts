/**
 * A table rewrite (VACUUM FULL, CLUSTER, pg_repack) during the backfill: page ranges recorded at
 * setup mean nothing in the new heap. The backfill must stop (abort is then the way on, and the
 * table is unchanged), never record a copy that misses rows.
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { catalogSnapshot, cli, leftovers, planTable, psql, type Exit } from '../helpers/rebuild.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const databases: FreshDatabase[] = [];

afterAll(async () => {
  for (const db of databases.splice(0)) await db.drop().catch(() => undefined);
});

async function prepared(prefix: string, rows: number): Promise<FreshDatabase> {
  const db = await freshDatabase(prefix);
  databases.push(db);
  await withClient(db.url, (c) => createDemoSchema(c, rows));
  return db;
}

async function waitFor(
  what: string,
  c: pg.ClientBase,
  sql: string,
  params: unknown[] = [],
  timeoutMs = 20_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (((await c.query(sql, params)).rowCount ?? 0) > 0) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function backfill(executor: 'runner' | 'psql', plan: LoadedPlan, url: string): Promise<Exit> {
  return executor === 'runner'
    ? cli(['run', '--plan', plan.dir, '--url', url, '--until', 'backfill'])
    : psql(url, join(plan.dir, '02-backfill.sql'));
}

const REWRITTEN = /was rewritten \(VACUUM FULL or CLUSTER\?\) during the backfill/;

describe.each(['runner', 'psql'] as const)('a rewrite during the last backfill batch (%s)', (executor) => {
  it('stops the backfill (abort needed, table unchanged) instead of recording a copy that misses rows', async () => {
    const db = await prepared(`rewrite_last_${executor}`, 8_000);
    // The bloat a rebuild is for: after VACUUM FULL the heap is a quarter of its size, so the last
    // batch's page range reads an empty part of the new heap.
    await withClient(db.url, async (c) => {
      await c.query('DELETE FROM app.orders WHERE id <= 6000');
      await c.query('DELETE FROM app.orders_twin WHERE id <= 6000');
    });
    const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
    const plan = await planTable(db.url, 'app', 'orders');
    const id = plan.manifest.runId;
    const setup = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'setup']);
    expect(setup.code, setup.stderr).toBe(0);

    const admin = new pg.Client({ connectionString: db.url });
    const holder = new pg.Client({ connectionString: db.url });
    const writer = new pg.Client({ connectionString: db.url });
    const vacuumer = new pg.Client({ connectionString: db.url });
    for (const c of [admin, holder, writer, vacuumer]) {
      c.on('error', () => undefined);
      await c.connect();
    }
    try {
      // Two batches: all pages but the last five, then those five.
      await admin.query(
        `UPDATE shadowpack.control_${id} SET batch_pages = (SELECT backfill_end - 5 FROM shadowpack.runs WHERE run_id = $1)`,
        [id],
      );
      // Hold the first batch's INSERT on the copy, pause the run meanwhile: it stops right after batch 1.
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE app._sp_${id}_new IN SHARE MODE`);
      const running = backfill(executor, plan, db.url);
      await waitFor(
        'the first batch to wait for the copy',
        admin,
        `SELECT FROM pg_locks WHERE relation = 'app._sp_${id}_new'::regclass AND NOT granted`,
      );
      await admin.query(`UPDATE shadowpack.control_${id} SET paused = true`);
      await holder.query('COMMIT');
      await waitFor(
        'the pause after batch 1',
        admin,
        `SELECT FROM shadowpack.runs r, shadowpack.control_${id} c WHERE r.run_id = $1 AND r.backfill_next > 0 AND c.waiting_for IS NOT NULL`,
        [id],
      );

      // A VACUUM FULL queued behind an ordinary writer; then the last batch queues behind it.
      await writer.query('BEGIN');
      await writer.query('LOCK TABLE app.orders IN ROW EXCLUSIVE MODE');
      const vacuum = vacuumer.query('VACUUM FULL app.orders');
      await waitFor(
        'VACUUM FULL to queue',
        admin,
        "SELECT FROM pg_locks WHERE relation = 'app.orders'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted",
      );
      await admin.query(`UPDATE shadowpack.control_${id} SET paused = false`);
      await waitFor(
        'the last batch to queue behind it',
        admin,
        "SELECT FROM pg_locks WHERE relation = 'app.orders'::regclass AND mode = 'AccessShareLock' AND NOT granted",
      );
      await writer.query('COMMIT');
      await vacuum;

      const b = await running;
      // psql with ON_ERROR_STOP exits 3, the runner 2.
      expect(b.code, 'the backfill went on after the rewrite').toBe(executor === 'psql' ? 3 : 2);
      expect(b.stderr).toMatch(REWRITTEN);
      expect(b.stderr).toMatch(/Run the abort stage/);
      // The failed batch was rolled back: the run still says the last batch is to do.
      const st = await admin.query<{ stage: string; left: string }>(
        'SELECT stage, backfill_end - backfill_next AS left FROM shadowpack.runs WHERE run_id = $1',
        [id],
      );
      expect(st.rows[0]).toEqual({ stage: 'setup', left: '5' });
    } finally {
      for (const c of [admin, holder, writer, vacuumer]) await c.end().catch(() => undefined);
    }

    const abort = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'abort']);
    expect(abort.code, abort.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await leftovers(c)).toEqual([]);
      expect(await catalogSnapshot(c, 'app', 'orders')).toEqual(before);
      expect(await compareWithTwin(c)).toEqual({ rows: 2_000, missing: 0, extra: 0, badGenerated: 0 });
    });
  });
});

/** Longer under SHADOWPACK_SOAK; a few rounds by default. */
const ROUNDS = process.env.SHADOWPACK_SOAK ? 30 : 2;

describe('a rewrite at a random moment of a multi-batch backfill under writers', () => {
  it(
    `never swaps in a table with missing rows: the run stops (abort, table unchanged) or ends equal to the twin (${ROUNDS} rounds)`,
    async () => {
      const outcomes: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const db = await prepared(`rewrite_random_${round}`, 6_000);
        const rewrite = round % 2 === 0 ? 'VACUUM FULL app.orders' : 'CLUSTER app.orders';
        // Plain CLUSTER re-clusters on the index already marked: the plan's fingerprint includes the mark.
        await withClient(db.url, (c) =>
          c.query(
            'ALTER TABLE app.orders CLUSTER ON orders_pkey; DELETE FROM app.orders WHERE id % 3 = 0; DELETE FROM app.orders_twin WHERE id % 3 = 0',
          ),
        );
        const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
        const plan = await planTable(db.url, 'app', 'orders', { batchPages: 2 });
        const writers = await startWriters({ connectionString: db.url }, 2, 2);
        const setup = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'setup']);
        expect(setup.code, setup.stderr).toBe(0);
        // Slow enough that the backfill spans about a second, so the rewrite can land between any two batches.
        await withClient(db.url, (c) =>
          c.query(`UPDATE shadowpack.control_${plan.manifest.runId} SET max_rows_per_second = 4000`),
        );
        let exited = false;
        const running = cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'backfill']).then(
          (r) => ((exited = true), r),
        );
        // The moment: once the backfill reached a random fraction of its pages, or (fraction above 1) once
        // the stage is over, so that rounds where the rewrite comes after the copy happen too.
        const fraction = Math.random() * 1.25;
        await withClient(db.url, async (c) => {
          for (;;) {
            const st = await c.query<{ next: string; end: string }>(
              'SELECT backfill_next AS next, backfill_end AS end FROM shadowpack.runs',
            );
            const row = st.rows[0];
            if (exited || (row !== undefined && Number(row.next) >= fraction * Number(row.end))) break;
            await sleep(5);
          }
          await c.query(rewrite);
        });
        const b = await running;
        let outcome: string;
        if (b.code === 0) {
          const rest = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
          expect(rest.code, rest.stderr).toBe(0);
          outcome = 'completed';
        } else {
          expect(b.stderr).toMatch(REWRITTEN);
          const abort = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'abort']);
          expect(abort.code, abort.stderr).toBe(0);
          outcome = 'stopped';
        }
        const stats = await writers.stop();
        expect(stats.errors, stats.lastError ?? '').toBe(0);
        await withClient(db.url, async (c) => {
          expect(await compareWithTwin(c), `${rewrite}, run ${outcome}`).toMatchObject({
            missing: 0,
            extra: 0,
            badGenerated: 0,
          });
          expect(await leftovers(c)).toEqual([]);
          const after = await catalogSnapshot(c, 'app', 'orders');
          expect(after.signature).toBe(before.signature);
        });
        outcomes.push(`${rewrite} at ${fraction.toFixed(2)}: ${outcome}`);
        await db.drop();
      }
      console.error(`[backfill-rewrite] ${outcomes.join('; ')}`);
    },
    ROUNDS * 30_000,
  );
});
