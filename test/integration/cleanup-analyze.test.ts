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

/** The changes counted for `table` and its partitions (a partitioned table's own count stays 0). */
async function leafChanges(c: pg.Client, table: string): Promise<number> {
  // pg_partition_tree() has no row for a table that is not partitioned.
  const r = await c.query<{ n: string | null }>(
    `SELECT sum(s.n_mod_since_analyze) AS n
       FROM (SELECT $1::regclass AS relid UNION SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf) t
       JOIN pg_stat_all_tables s ON s.relid = t.relid`,
    [table],
  );
  return Number(r.rows[0]!.n ?? 0);
}

/**
 * Runs `sql` in a session of its own and waits until the statistics count at least `rows` changes in `table`'s
 * partitions (or the table). A session's counts are flushed when it ends; PostgreSQL 14 has no
 * pg_stat_force_next_flush() (15+) and sends them to its statistics collector, which readers see a moment later.
 */
async function writeCounted(url: string, sql: string, table: string, rows: number): Promise<void> {
  await withClient(url, (c) => c.query(sql));
  await withClient(url, async (c) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      await c.query('SELECT pg_stat_clear_snapshot()');
      const n = await leafChanges(c, table);
      if (n >= rows) return;
      if (Date.now() > deadline) throw new Error(`the statistics still count ${n} changes in ${table}, not ${rows}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
}

/**
 * `table`'s statistics once they match `expected`, or the last read after 30 s (then the assertion fails on it).
 * PostgreSQL 14's readers see a statistics file up to 500 ms old, and its collector gets the counts a moment
 * after they happen (an ANALYZE, a reset); from 15 on the first read matches. Read before cleanup, they are
 * what cleanup's own check sees too. A value that must not change (analyzes staying 1) matches at once.
 */
async function statsSeen(url: string, table: string, expected: Partial<TableStats>): Promise<TableStats> {
  return withClient(url, async (c) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      await c.query('SELECT pg_stat_clear_snapshot()');
      const s = await tableStats(c, table);
      const matches = Object.entries(expected).every(([k, v]) => s[k as keyof TableStats] === v);
      if (matches || Date.now() > deadline) {
        expect(s).toMatchObject(expected);
        return s;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  });
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
    // The rebuilt table is the copy, analyzed once by the build stage.
    await statsSeen(db.url, 'ca.kept', { analyzes: 1, analyzed: true });
    await cleanup(dir);
    await statsSeen(db.url, 'ca.kept', { analyzes: 1 });
  });

  it('analyzes again when more rows changed since than autovacuum would wait for', async () => {
    const dir = await runToSwap('changed');
    await statsSeen(db.url, 'ca.changed', { analyzes: 1, analyzed: true });
    await writeCounted(db.url, 'UPDATE ca.changed SET v = v + 1 WHERE id <= 1000', 'ca.changed', 1000);
    await withClient(db.url, async (c) => {
      const s = await tableStats(c, 'ca.changed');
      expect(s.analyzes).toBe(1);
      expect(s.modified).toBeGreaterThan(50 + 0.1 * 3000);
    });
    await cleanup(dir);
    await statsSeen(db.url, 'ca.changed', { analyzes: 2, modified: 0 });
  });

  it('counts the changes of a partitioned table in its partitions (its own count stays 0)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sp-plan-'));
    const partitioned = ['--partition-by', 'range(created)', '--interval', '1 month', '--partitions-ahead', '1'];
    const p = await cli(['plan', '--table', 'ca.parted', '--out', out, '--url', db.url, ...partitioned]);
    expect(p.code, p.stderr).toBe(0);
    const r = await cli(['run', '--plan', out, '--url', db.url, '--until', 'swap']);
    expect(r.code, r.stderr).toBe(0);
    await statsSeen(db.url, 'ca.parted', { analyzes: 1, analyzed: true });
    await writeCounted(db.url, 'UPDATE ca.parted SET v = v + 1 WHERE id <= 1000', 'ca.parted', 1000);
    await statsSeen(db.url, 'ca.parted', { analyzes: 1, modified: 0 });
    await cleanup(out);
    await statsSeen(db.url, 'ca.parted', { analyzes: 2 });
  });

  it('analyzes when no ANALYZE of the rebuilt table is recorded', async () => {
    const dir = await runToSwap('reset');
    await statsSeen(db.url, 'ca.reset', { analyzes: 1, analyzed: true });
    await withClient(db.url, (c) => c.query("SELECT pg_stat_reset_single_table_counters('ca.reset'::regclass)"));
    await statsSeen(db.url, 'ca.reset', { analyzes: 0, analyzed: false });
    await cleanup(dir);
    await statsSeen(db.url, 'ca.reset', { analyzes: 1, analyzed: true });
  });
});
