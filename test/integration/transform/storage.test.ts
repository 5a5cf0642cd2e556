import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chownSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import type pg from 'pg';
import { freshDatabase, withClient, type FreshDatabase } from '../../helpers/db.js';
import { cli, leftovers } from '../../helpers/rebuild.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../../src/dev/workload.js';
import type { PlanManifest } from '../../../src/compile/compile.js';

const ROWS = 20_000;
const suffix = `${process.pid}_${Date.now() % 100000}`;
const TABLE_SPACE = `sp_tbl_${suffix}`;
const INDEX_SPACE = `sp_idx_${suffix}`;

/** A tablespace in a fresh folder owned by the server's OS user (the server runs on this machine). */
async function createTablespace(c: pg.ClientBase, name: string): Promise<void> {
  const dataDir = (await c.query<{ d: string }>("SELECT current_setting('data_directory') AS d")).rows[0]!.d;
  const owner = statSync(dataDir);
  const dir = mkdtempSync(join(tmpdir(), 'sp-ts-'));
  chownSync(dir, owner.uid, owner.gid);
  await c.query(`CREATE TABLESPACE ${name} LOCATION '${dir}'`);
}

/** Share of neighbours in physical (ctid) order that are also in (note, id) order. */
async function orderedShare(c: pg.ClientBase): Promise<number> {
  const r = await c.query<{ share: number }>(`
    SELECT avg(CASE WHEN prev < rk THEN 1.0 ELSE 0.0 END)::float8 AS share
      FROM (SELECT rk, lag(rk) OVER (ORDER BY ctid) AS prev
              FROM (SELECT ctid, row_number() OVER (ORDER BY note, id) AS rk FROM app.orders) x) y
     WHERE prev IS NOT NULL`);
  return r.rows[0]!.share;
}

describe('--order-by, --fillfactor, --tablespace, --index-tablespace under concurrent writers', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('storage');
    await withClient(db.url, (c) => createDemoSchema(c, ROWS));
    await withClient(inject('adminUrl'), async (c) => {
      await createTablespace(c, TABLE_SPACE);
      await createTablespace(c, INDEX_SPACE);
    });
  });
  afterAll(async () => {
    await db?.drop();
    await withClient(inject('adminUrl'), async (c) => {
      await c.query(`DROP TABLESPACE IF EXISTS ${TABLE_SPACE}`);
      await c.query(`DROP TABLESPACE IF EXISTS ${INDEX_SPACE}`);
    });
  });

  it('writes rows in the requested order, with the fillfactor, in the tablespaces asked for', async () => {
    // md5 notes: the table is in no particular (note, id) order before the rebuild.
    const before = await withClient(db.url, orderedShare);
    expect(before).toBeLessThan(0.7);
    const out = join(mkdtempSync(join(tmpdir(), 'sp-storage-')), 'orders');
    const p = await cli([
      'plan',
      '--table',
      'app.orders',
      '--out',
      out,
      '--url',
      db.url,
      '--order-by',
      'note,id',
      '--fillfactor',
      '70',
      '--tablespace',
      TABLE_SPACE,
      '--index-tablespace',
      INDEX_SPACE,
    ]);
    expect(p.code, p.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as PlanManifest;
    expect(manifest.stages.find((s) => s.name === 'backfill')!.hazards).toContain('BACKFILL_ONE_TRANSACTION');
    expect(manifest.transform.differences).toEqual(
      expect.arrayContaining(['fillfactor 70', `table in tablespace ${TABLE_SPACE}`]),
    );

    const writers = await startWriters({ connectionString: db.url }, 1, 20);
    const r = await cli(['run', '--plan', out, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    expect(stats.commits).toBeGreaterThan(5);

    await withClient(db.url, async (c) => {
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
      // Rows the writers changed during the run were re-applied at the end; the rest follow (note, id).
      expect(await orderedShare(c)).toBeGreaterThan(0.9);
      const rel = await c.query<{ reloptions: string[] | null; spc: string }>(
        "SELECT c.reloptions, t.spcname AS spc FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace WHERE c.oid = 'app.orders'::regclass",
      );
      expect(rel.rows[0]).toEqual({ reloptions: ['fillfactor=70'], spc: TABLE_SPACE });
      const idx = await c.query<{ name: string; spc: string | null }>(
        `SELECT i.indexrelid::regclass::text AS name, t.spcname AS spc FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
           LEFT JOIN pg_tablespace t ON t.oid = ic.reltablespace WHERE i.indrelid = 'app.orders'::regclass ORDER BY 1`,
      );
      expect(idx.rows.length).toBe(4);
      for (const row of idx.rows) expect(row, row.name).toEqual({ name: row.name, spc: INDEX_SPACE });
      expect(await leftovers(c)).toEqual([]);
    });
  });
});
