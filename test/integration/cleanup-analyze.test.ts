/**
 * Cleanup analyzes the rebuilt table only when the build's ANALYZE of the copy is not there or is
 * stale (issue 14): the statistics stay with the copy through the swap, and a second ANALYZE sampled
 * the same table again (about 0.2 s of a 1M-row rebuild). analyze_count counts manual ANALYZEs only,
 * so autovacuum cannot make these assertions pass or fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable } from '../helpers/rebuild.js';

interface TableStats {
  analyzes: number;
  analyzed: boolean;
  modified: number;
}

async function tableStats(c: pg.Client, table: string): Promise<TableStats> {
  const r = await c.query<{ analyze_count: string; last_analyze: Date | null; n_mod_since_analyze: string }>(
    'SELECT analyze_count, last_analyze, n_mod_since_analyze FROM pg_stat_all_tables WHERE relid = $1::regclass',
    [table],
  );
  const row = r.rows[0]!;
  return {
    analyzes: Number(row.analyze_count),
    analyzed: row.last_analyze !== null,
    modified: Number(row.n_mod_since_analyze),
  };
}

describe('cleanup analyzes only when the build did not, or the table changed since', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('cleanup_analyze');
    await withClient(db.url, (c) =>
      c.query(`
      CREATE SCHEMA ca;
      CREATE TABLE ca.kept (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false);
      CREATE TABLE ca.changed (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false);
      CREATE TABLE ca.reset (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false);
      INSERT INTO ca.kept SELECT g, g FROM generate_series(1, 3000) g;
      INSERT INTO ca.changed SELECT g, g FROM generate_series(1, 3000) g;
      INSERT INTO ca.reset SELECT g, g FROM generate_series(1, 3000) g;
      CREATE TABLE ca.parted (id int, created date NOT NULL, v int, PRIMARY KEY (id, created));
      INSERT INTO ca.parted SELECT g, date '2026-01-01' + (g % 3) * 31, g FROM generate_series(1, 3000) g;`),
    );
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function runToSwap(table: string): Promise<string> {
    const plan = await planTable(db.url, 'ca', table);
    const r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'swap']);
    expect(r.code, r.stderr).toBe(0);
    return plan.dir;
  }

  async function cleanup(dir: string): Promise<void> {
    const r = await cli(['run', '--plan', dir, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
  }

  it('keeps the build stage’s statistics when little changed since', async () => {
    const dir = await runToSwap('kept');
    const swapped = await withClient(db.url, (c) => tableStats(c, 'ca.kept'));
    // The rebuilt table is the copy, analyzed once by the build stage.
    expect(swapped).toMatchObject({ analyzes: 1, analyzed: true });
    await cleanup(dir);
    expect(await withClient(db.url, (c) => tableStats(c, 'ca.kept'))).toMatchObject({ analyzes: 1 });
  });

  it('analyzes again when more rows changed since than autovacuum would wait for', async () => {
    const dir = await runToSwap('changed');
    await withClient(db.url, async (c) => {
      // One query string: the counts are flushed to shared memory when it ends, so the next read
      // (and the cleanup's session) sees them.
      await c.query('UPDATE ca.changed SET v = v + 1 WHERE id <= 1000; SELECT pg_stat_force_next_flush()');
      const s = await tableStats(c, 'ca.changed');
      expect(s.analyzes).toBe(1);
      expect(s.modified).toBeGreaterThan(50 + 0.1 * 3000);
    });
    await cleanup(dir);
    expect(await withClient(db.url, (c) => tableStats(c, 'ca.changed'))).toMatchObject({ analyzes: 2, modified: 0 });
  });

  it('counts the changes of a partitioned table in its partitions (its own count stays 0)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sp-plan-'));
    const partitioned = ['--partition-by', 'range(created)', '--interval', '1 month', '--partitions-ahead', '1'];
    const p = await cli(['plan', '--table', 'ca.parted', '--out', out, '--url', db.url, ...partitioned]);
    expect(p.code, p.stderr).toBe(0);
    const r = await cli(['run', '--plan', out, '--url', db.url, '--until', 'swap']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await tableStats(c, 'ca.parted')).toMatchObject({ analyzes: 1, analyzed: true });
      await c.query('UPDATE ca.parted SET v = v + 1 WHERE id <= 1000; SELECT pg_stat_force_next_flush()');
      expect(await tableStats(c, 'ca.parted')).toMatchObject({ analyzes: 1, modified: 0 });
    });
    await cleanup(out);
    expect(await withClient(db.url, (c) => tableStats(c, 'ca.parted'))).toMatchObject({ analyzes: 2 });
  });

  it('analyzes when no ANALYZE of the rebuilt table is recorded', async () => {
    const dir = await runToSwap('reset');
    await withClient(db.url, async (c) => {
      await c.query("SELECT pg_stat_reset_single_table_counters('ca.reset'::regclass)");
      expect(await tableStats(c, 'ca.reset')).toMatchObject({ analyzes: 0, analyzed: false });
    });
    await cleanup(dir);
    expect(await withClient(db.url, (c) => tableStats(c, 'ca.reset'))).toMatchObject({ analyzes: 1, analyzed: true });
  });
});
