import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPlanDir } from '../../src/planning/plan-dir.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';
import type { RangeVerifyResult } from '../../src/run/verify.js';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable, psql } from '../helpers/rebuild.js';

describe('verify by key ranges, and the verify stage the swap requires', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('verify_ranges');
    await withClient(db.url, (c) => createDemoSchema(c, 6_000));
  });
  afterAll(async () => db?.drop());

  it('passes under load, fails on a row altered by hand (naming its range), and holds the swap until it passes', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'sp-plan-')), 'orders');
    let r = await cli([
      'plan',
      '--table',
      'app.orders',
      '--out',
      dir,
      '--url',
      db.url,
      '--verify-before-swap',
      '--batch-pages',
      '10',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const plan = readPlanDir(dir);
    expect(plan.manifest.options.verifyRanges).toBe(16);
    expect(plan.manifest.stages.map((s) => s.file)).toContain('04b-verify.sql');

    const writers = await startWriters({ connectionString: db.url }, 3, 1);
    try {
      r = await cli(['run', '--plan', dir, '--url', db.url, '--until', 'catchup']);
      expect(r.code, r.stderr).toBe(0);
      r = await cli(['verify', '--plan', dir, '--url', db.url, '--ranges', '8', '--json']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const ok = JSON.parse(r.stdout) as RangeVerifyResult;
      expect(ok).toMatchObject({ pass: true, side: 'before-swap', algorithm: 'sp-range-md5-v1' });
      expect(ok.ranges).toHaveLength(8);
      expect(ok.rowsLive).toBeGreaterThan(5_000);
    } finally {
      await writers.stop();
    }

    // Alter one copy row that no pending log entry will repair.
    const copy = `app."_sp_${plan.manifest.runId}_new"`;
    const id = await withClient(db.url, async (c) => {
      const k = await c.query<{ id: number }>(
        `SELECT id FROM ${copy} WHERE id NOT IN (SELECT k1 FROM shadowpack."log_${plan.manifest.runId}") ORDER BY id OFFSET 3000 LIMIT 1`,
      );
      await c.query(`UPDATE ${copy} SET note = 'altered by hand' WHERE id = $1`, [k.rows[0]!.id]);
      return k.rows[0]!.id;
    });
    r = await cli(['verify', '--plan', dir, '--url', db.url, '--ranges', '8']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL: app\.orders against the copy: 7 of 8 key ranges equal \(sp-range-md5-v1\)/);
    const bad = /range \d+, keys (\d+) \.\. (\d+): (\d+) rows in the table, \3 in the copy/.exec(r.stdout);
    expect(bad, r.stdout).not.toBeNull();
    expect(Number(bad![1])).toBeLessThanOrEqual(id);
    expect(Number(bad![2])).toBeGreaterThanOrEqual(id);

    // The stage fails the same way, with psql; the swap then refuses and nothing is swapped.
    r = await psql(db.url, join(dir, '04b-verify.sql'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/key range \d+ \(keys \d+ \.\. \d+\) differs/);
    expect(r.stderr).toContain('the swap will not run');
    r = await psql(db.url, join(dir, '05-swap.sql'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('the run is at "catchup" (it needs one of: verified)');
    await withClient(db.url, async (c) => {
      expect((await c.query(`SELECT to_regclass('${copy}') IS NOT NULL AS ok`)).rows[0].ok).toBe(true);
      // Repair it through the table: the log re-reads the row, catch-up rewrites the copy's.
      await c.query('UPDATE app.orders SET note = note WHERE id = $1', [id]);
    });

    // Now the runner verifies (passes), swaps; verify against the old table passes too.
    r = await cli(['run', '--plan', dir, '--url', db.url, '--until', 'swap']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain('verify passed: 16 key ranges equal');
    r = await cli(['verify', '--plan', dir, '--url', db.url, '--ranges', '4']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^PASS: app\.orders against the old table: 4 of 4 key ranges equal/);
    r = await cli(['run', '--plan', dir, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await leftovers(c)).toEqual([]);
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
    });
  });

  it('checks a composite key, text and NULLs through the verify stage, with psql', async () => {
    await withClient(db.url, (c) =>
      c.query(`CREATE TABLE app."Lines" (order_id int, "line no" int, note text, at timestamptz, PRIMARY KEY (order_id, "line no"));
               INSERT INTO app."Lines" SELECT g / 10, g % 10, CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g END, '2026-01-01'::timestamptz + g * interval '1 minute'
                 FROM generate_series(1, 500) g`),
    );
    const plan = await planTable(db.url, 'app', 'Lines', { verifyRanges: 5 });
    for (const s of plan.manifest.stages.filter((x) => !x.offPath && x.name !== 'swap' && x.name !== 'cleanup')) {
      const r = await psql(db.url, join(plan.dir, s.file));
      expect(r.code, `${s.file}: ${r.stderr}`).toBe(0);
      if (s.name === 'verify') expect(r.stderr).toContain('verify passed: 5 key ranges equal');
    }
    const r = await cli(['verify', '--plan', plan.dir, '--url', db.url, '--ranges', '3', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const ok = JSON.parse(r.stdout) as RangeVerifyResult;
    expect(ok.ranges.map((x) => [x.rowsLive, x.rowsOther])).toEqual([
      [167, 167],
      [167, 167],
      [166, 166],
    ]);
    expect(ok.ranges[0]!.firstKey).toBe('(0,1)');
    const abort = await psql(db.url, join(plan.dir, '90-abort.sql'));
    expect(abort.code, abort.stderr).toBe(0);
  });
});
