import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli } from '../helpers/rebuild.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';
import type { BatchManifest } from '../../src/batch/manifest.js';

// Issue 16's acceptance at its own scale: 30 tables of varied size and bloat, some refused, a write
// load on the demo table and its twin, plan --bloated, a SIGKILL mid-batch, a run that finishes
// it. A few minutes on 2 cores: SHADOWPACK_SOAK=1 only (test/integration/batch.test.ts covers the
// same ground with 3 tables by default).
describe.runIf(process.env.SHADOWPACK_SOAK)('a batch of 30 tables (soak)', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('batch_soak');
    await withClient(db.url, async (c) => {
      await createDemoSchema(c, 20_000);
      await c.query(
        'UPDATE app.orders SET qty = qty WHERE id % 3 = 0; UPDATE app.orders_twin SET qty = qty WHERE id % 3 = 0',
      );
      await c.query('CREATE SCHEMA s');
      for (let i = 1; i <= 24; i++) {
        const rows = 1000 * (1 + (i % 6) * 3);
        const deleted = (i * 37) % 90; // 0 % … 89 % of the rows, spread over every page
        await c.query(`CREATE TABLE s.t${i} (id int PRIMARY KEY, v text NOT NULL)`);
        await c.query(`INSERT INTO s.t${i} SELECT g, repeat('x', 60 + ${i}) FROM generate_series(1, ${rows}) g`);
        if (deleted > 0) await c.query(`DELETE FROM s.t${i} WHERE (id * 7919) % 100 < ${deleted}`);
      }
      await c.query(`
        CREATE TABLE s.nokey (a int, v text); INSERT INTO s.nokey SELECT g, repeat('x', 80) FROM generate_series(1, 8000) g; DELETE FROM s.nokey WHERE a % 2 = 0;
        CREATE UNLOGGED TABLE s.scratch (id int PRIMARY KEY, v text); INSERT INTO s.scratch SELECT g, repeat('x', 80) FROM generate_series(1, 8000) g; DELETE FROM s.scratch WHERE id % 2 = 0;
        CREATE TABLE s.parted (id int, d date, PRIMARY KEY (id, d)) PARTITION BY RANGE (d);`);
      await c.query('VACUUM ANALYZE');
    });
  });
  afterAll(async () => {
    await db?.drop();
  });

  it(
    'plans the bloated ones, runs them all under writers through a SIGKILL, keeps every write and gives back the estimate',
    { timeout: 1_200_000 },
    async () => {
      const dir = join(mkdtempSync(join(tmpdir(), 'sp-batch-soak-')), 'batch');
      const p = await cli([
        'plan',
        '--bloated',
        '--schema',
        's',
        '--schema',
        'app',
        '--min-ratio',
        '0.1',
        '--out',
        dir,
        '--url',
        db.url,
      ]);
      expect(p.code, p.stderr).toBe(0);
      const m = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as BatchManifest;
      expect(m.skipped.map((s) => s.name).sort()).toEqual(['nokey', 'scratch']);
      expect(m.tables.length).toBeGreaterThan(15);
      const writers = await startWriters({ connectionString: db.url }, 2, 5);
      try {
        const killed = await cli(['run', '--plan', dir, '--url', db.url, '--until', 'cleanup'], {
          killWhen: { stderr: new RegExp(`\\[table ${Math.ceil(m.tables.length / 2)} of `), delayMs: 500 },
        });
        expect(killed.signal, killed.stderr).toBe('SIGKILL');
        const r = await cli(['run', '--plan', dir, '--url', db.url, '--until', 'cleanup']);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain(`batch: ${m.tables.length} of ${m.tables.length} tables rebuilt and cleaned up`);
      } finally {
        const stats = await writers.stop();
        expect(stats.errors, stats.lastError ?? '').toBe(0);
      }
      await withClient(db.url, async (c) => {
        expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
        const h = await c.query<{ plan_id: string; outcome: string }>(
          'SELECT plan_id, outcome FROM shadowpack.history',
        );
        expect(h.rows.map((x) => x.plan_id).sort()).toEqual(m.tables.map((t) => t.planId).sort());
        expect(h.rows.every((x) => x.outcome === 'cleaned')).toBe(true);
        const quiet = m.tables.filter((t) => t.schema === 's');
        const now = await c.query<{ n: string }>(
          "SELECT sum(pg_total_relation_size(format('s.%I', t)::regclass))::text AS n FROM unnest($1::text[]) t",
          [quiet.map((t) => t.name)],
        );
        const gained = quiet.reduce((sum, t) => sum + t.totalBytes, 0) - Number(now.rows[0]!.n);
        expect(gained).toBeGreaterThanOrEqual(0.8 * quiet.reduce((sum, t) => sum + t.reclaimableBytes, 0));
      });
    },
  );
});
