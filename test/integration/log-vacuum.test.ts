/**
 * The change log is created with autovacuum off, and the apply deletes what it applied: the
 * backfill and catch-up stages vacuum it, so it does not keep every entry ever written (each
 * round, including the one under the swap lock, scans the whole log).
 */
import { join } from 'node:path';
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
      // The settle round at the end of the backfill applies (and deletes) them; the vacuum after it frees their pages.
      let r = await stage('psql', plan, url, 'backfill');
      expect(r.code, r.stderr).toBe(0);
      expect(await entries()).toBe(0);
      expect(await pages(), 'log pages after the backfill').toBeLessThan(written);
      expect((await stage('psql', plan, url, 'build')).code).toBe(0);

      const before: number[] = [];
      for (const executor of ['psql', 'runner', 'psql'] as const) {
        await write();
        before.push(await pages());
        r = await stage(executor, plan, url, 'catchup');
        expect(r.code, r.stderr).toBe(0);
        expect(await entries()).toBe(0);
        expect(await pages(), `log pages after catch-up by ${executor}`).toBeLessThan(before.at(-1)!);
      }
      // Without vacuum every round's 2,000 dead entries stay: the file would be 3 times the first round's.
      expect(Math.max(...before), `log pages before each round: ${before.join(', ')}`).toBeLessThanOrEqual(
        before[0]! + 2,
      );
    });

    for (const s of ['swap', 'cleanup'] as const) expect((await stage('psql', plan, url, s)).code).toBe(0);
    await withClient(url, async (c) =>
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 }),
    );
  });
});
