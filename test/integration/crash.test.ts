import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable } from '../helpers/rebuild.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';

const STAGES = ['setup', 'backfill', 'build', 'catchup', 'swap', 'cleanup'] as const;

describe('the runner killed with SIGKILL inside every stage (one session, and four: run --jobs 4)', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('crash');
    await withClient(db.url, (c) => createDemoSchema(c, 60_000));
  });
  afterAll(async () => db?.drop());

  it('is continued by the next run with nothing lost', async () => {
    // Tiny batches make backfill and catch-up long enough to be hit in the middle.
    const plan = await planTable(db.url, 'app', 'orders', {
      batchPages: 8,
      catchupTarget: 0,
      catchupRounds: 3,
      advisoryWaitSeconds: 30,
    });
    const writers = await startWriters({ connectionString: db.url }, 3, 2);
    const hits: string[] = [];
    for (const stage of STAGES) {
      // Twice per stage: right as it starts, and a little into it.
      for (const delayMs of [Math.floor(Math.random() * 20), 40 + Math.floor(Math.random() * 200)]) {
        // The second kill in each stage hits a runner with four sessions in its parallel stages.
        const jobs = delayMs < 40 ? '1' : '4';
        // --until the stage: a kill that comes late (the test's timer runs late under load) finds the
        // run stopped after this stage, never further on. With --until cleanup it could land stages
        // later, or after the run finished, and every later run (started past the stage its kill waits
        // for) then ran to the end unharmed: the kills meant for the stages left never happened.
        const r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', stage, '--jobs', jobs], {
          killWhen: { stderr: new RegExp(`» ${stage} `), delayMs },
        });
        if (r.signal === 'SIGKILL') {
          const seen = [...r.stderr.matchAll(/» (\w+)/g)].map((m) => m[1]);
          hits.push(`${seen.at(-1)}+${delayMs}ms/j${jobs}`);
        } else if (!ranOnce(r)) {
          expect(r.code, r.stderr).toBe(0);
        }
      }
    }
    // Whatever is left, one more run finishes.
    const last = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup', '--jobs', '4']);
    // A kill in cleanup can land after its commit: the run is then finished, and the plan refuses to run again.
    if (!ranOnce(last)) expect(last.code, last.stderr).toBe(0);
    const stats = await writers.stop();
    expect(new Set(hits.map((h) => h.split('+')[0])).size, hits.join(', ')).toBeGreaterThanOrEqual(4);
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await withClient(db.url, async (c) => {
      const cmp = await compareWithTwin(c);
      expect(cmp).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
      expect(await leftovers(c)).toEqual([]);
    });
    // Thirteen runner processes and their startup: minutes, not seconds, on a loaded 2-core machine.
  }, 300_000);
});

/** The plan already finished (a kill landed after cleanup committed): it refuses to run twice, exit 2. */
function ranOnce(r: { code: number | null; stderr: string }): boolean {
  return r.code === 2 && /already rebuilt .*a plan runs once/.test(r.stderr);
}
