/**
 * The change log is created with autovacuum off, and the apply deletes what it applied: the
 * catch-up stage vacuums it (the backfill does too, after the settle round it runs when the copying
 * statement is handed to the table's owner), so it does not keep every entry ever written (each
 * round, including the one under the swap lock, scans the whole log).
 *
 * They vacuum with TRUNCATE false: shrinking the file needs ACCESS EXCLUSIVE on the log, which
 * VACUUM tries to get again every 50 ms for up to 5 s while any writer holds its ROW EXCLUSIVE lock
 * (an application transaction that wrote to the table, until it commits) — under a steady load
 * that was 5 s (and more) of nothing in a backfill or catch-up stage (issue 14). The space the
 * applied entries held is reused instead: the file keeps its size, it does not grow.
 */
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, planTable, psql, type Exit } from '../helpers/rebuild.js';
import { stageInfo, type StageName } from '../../src/compile/stages.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { compareWithTwin, createDemoSchema } from '../../src/dev/workload.js';

let db: FreshDatabase | undefined;
afterAll(async () => db?.drop());

function stage(executor: 'runner' | 'psql', plan: LoadedPlan, url: string, name: StageName): Promise<Exit> {
  return executor === 'runner'
    ? cli(['run', '--plan', plan.dir, '--url', url, '--stage', name])
    : psql(url, join(plan.dir, stageInfo(name).file));
}

/**
 * Runs `fn` while another session holds ROW EXCLUSIVE on the log, as an application transaction that
 * wrote to the table holds it until it commits (a LOCK TABLE takes no transaction id and keeps no
 * snapshot, so the entries the stage deletes are removable, as under a steady load of short
 * writes), and returns the wait events the run's sessions were seen in meanwhile.
 */
async function withWriterHolding<T>(
  url: string,
  log: string,
  fn: () => Promise<T>,
): Promise<{ result: T; waits: string[] }> {
  return withClient(url, (holder) =>
    withClient(url, async (watcher) => {
      await holder.query(`BEGIN; LOCK TABLE ${log} IN ROW EXCLUSIVE MODE`);
      const waits = new Set<string>();
      let polling = true;
      const poll = (async (c: pg.Client) => {
        while (polling) {
          const r = await c.query<{ w: string }>(
            `SELECT wait_event AS w FROM pg_stat_activity WHERE application_name LIKE 'shadowpack/%' AND wait_event IS NOT NULL`,
          );
          for (const { w } of r.rows) waits.add(w);
          await new Promise((res) => setTimeout(res, 50));
        }
      })(watcher);
      try {
        const result = await fn();
        return { result, waits: [...waits] };
      } finally {
        polling = false;
        await poll;
        await holder.query('COMMIT');
      }
    }),
  );
}

describe('the change log is vacuumed between rounds', () => {
  it('its file does not grow with every entry ever written (backfill, then catch-up by psql and by the runner)', async () => {
    db = await freshDatabase('log_vacuum');
    const url = db.url;
    await withClient(url, (c) => createDemoSchema(c, 2_000));
    const plan = await planTable(url, 'app', 'orders');
    const log = `shadowpack.log_${plan.manifest.runId}`;
    for (const s of ['preflight', 'setup'] as const) expect((await stage('psql', plan, url, s)).code).toBe(0);

    await withClient(url, async (c) => {
      // 2,000 log entries for every round: every row updated, twin alike.
      const write = () =>
        c.query('UPDATE app.orders SET qty = qty % 9 + 1; UPDATE app.orders_twin SET qty = qty % 9 + 1');
      const pages = async () =>
        Number(
          (await c.query(`SELECT pg_relation_size('${log}') / current_setting('block_size')::int AS n`)).rows[0].n,
        );
      const entries = async () => Number((await c.query(`SELECT count(*) AS n FROM ${log}`)).rows[0].n);

      await write();
      const written = await pages();
      expect(written).toBeGreaterThan(5);
      // The backfill leaves out the rows whose key is logged (every row here) and keeps their entries
      // for the catch-up after the build, which applies (and deletes) them; its vacuum does not wait
      // for the lock a writer holds.
      let { result: r, waits } = await withWriterHolding(url, log, () => stage('psql', plan, url, 'backfill'));
      expect(r.code, r.stderr).toBe(0);
      expect(waits, 'wait events of the backfill').not.toContain('VacuumTruncate');
      expect(await entries()).toBe(2_000);
      expect(
        Number(
          (await c.query(`SELECT rows_copied FROM shadowpack.runs WHERE run_id = '${plan.manifest.runId}'`)).rows[0]
            .rows_copied,
        ),
      ).toBe(0);
      expect((await stage('psql', plan, url, 'build')).code).toBe(0);

      const before: number[] = [];
      for (const executor of ['psql', 'runner', 'psql'] as const) {
        await write();
        before.push(await pages());
        ({ result: r, waits } = await withWriterHolding(url, log, () => stage(executor, plan, url, 'catchup')));
        expect(r.code, r.stderr).toBe(0);
        expect(waits, `wait events of the catch-up by ${executor}`).not.toContain('VacuumTruncate');
        expect(await entries()).toBe(0);
      }
      // The freed space is reused. The first round's backlog is both writes (the backfill leaves its
      // 2,000 entries to the catch-up), so the file holds two writes then; without vacuum every
      // round's 2,000 dead entries would stay, and the file would grow by one write each round.
      expect(before[0], `log pages: ${written} written, before each round: ${before.join(', ')}`).toBeLessThanOrEqual(
        2 * written + 2,
      );
      expect(
        Math.max(...before),
        `log pages: ${written} written, before each round: ${before.join(', ')}`,
      ).toBeLessThanOrEqual(before[0]! + 2);
    });

    for (const s of ['swap', 'cleanup'] as const) expect((await stage('psql', plan, url, s)).code).toBe(0);
    await withClient(url, async (c) =>
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 }),
    );
  });
});
