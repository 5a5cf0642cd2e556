import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable } from '../helpers/rebuild.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/run/workload.js';

describe('the runner killed with SIGKILL at random points', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('crash');
    await withClient(db.url, (c) => createDemoSchema(c, 60_000));
  });
  afterAll(async () => db?.drop());

  it('is continued by the next run with nothing lost', async () => {
    // Tiny batches and a slow swap window make every stage long enough to be hit.
    const plan = await planTable(db.url, 'app', 'orders', { batchPages: 8, catchupTarget: 0, catchupRounds: 3, advisoryWaitSeconds: 30 });
    const writers = await startWriters({ connectionString: db.url }, 3, 2);
    const kills: string[] = [];
    let finished = false;
    for (let attempt = 0; attempt < 40 && !finished; attempt++) {
      // Later attempts get more time, so the run always completes eventually.
      const killAfterMs = 300 + Math.floor(Math.random() * (600 + attempt * 150));
      const r = await cli(['run', '--plan', plan.dir, '--url', db.url], { killAfterMs });
      if (r.signal === 'SIGKILL') {
        const stage = /» (\w+)/g;
        const seen = [...r.stderr.matchAll(stage)].map((m) => m[1]);
        kills.push(`${killAfterMs}ms:${seen.at(-1) ?? 'start'}`);
        continue;
      }
      expect(r.code, r.stderr).toBe(0);
      finished = /done/.test(r.stdout);
    }
    const stats = await writers.stop();
    expect(finished, `kills: ${kills.join(', ')}`).toBe(true);
    expect(kills.length).toBeGreaterThan(2);
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await withClient(db.url, async (c) => {
      const cmp = await compareWithTwin(c);
      expect(cmp).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
      expect(await leftovers(c)).toEqual([]);
    });
  });
});
