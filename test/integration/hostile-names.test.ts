import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { join } from 'node:path';
import { catalogSnapshot, cli, leftovers, planTable, psql } from '../helpers/rebuild.js';

const SCHEMA = 'Sales "EU"; drop';
const LONG = 'a'.repeat(60) + '_€'; // 63 bytes

describe('hostile names end to end', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('hostile');
    await withClient(db.url, (c) =>
      c.query(`
      CREATE SCHEMA "Sales ""EU""; drop";
      CREATE TABLE "Sales ""EU""; drop"."order" (
        "OrderId" serial PRIMARY KEY,
        "customer name" text NOT NULL,
        "say ""hi""" text,
        "a;b" integer CHECK ("a;b" >= 0),
        "select" text UNIQUE,
        "名前" text COLLATE "C",
        "${LONG}" integer
      );
      CREATE INDEX "idx ""quoted""; x" ON "Sales ""EU""; drop"."order" ("名前", "a;b" DESC NULLS LAST) WHERE "a;b" > 1;
      INSERT INTO "Sales ""EU""; drop"."order" ("customer name", "say ""hi""", "a;b", "select", "名前", "${LONG}")
      SELECT 'c' || g, CASE WHEN g % 2 = 0 THEN 'hi ''' || g END, g % 5, 's' || g, '名' || g, g FROM generate_series(1, 3000) g;
      CREATE TABLE "Sales ""EU""; drop".expected AS SELECT * FROM "Sales ""EU""; drop"."order";
    `),
    );
  });
  afterAll(async () => db?.drop());

  it('rebuilds a table whose schema, table, column and index names need quoting', async () => {
    const before = await withClient(db.url, (c) => catalogSnapshot(c, SCHEMA, 'order'));
    const plan = await planTable(db.url, SCHEMA, 'order', { batchPages: 5 });
    const r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      const diff = await c.query(`
        SELECT count(*) AS n FROM (
          (SELECT * FROM "Sales ""EU""; drop"."order" EXCEPT ALL SELECT * FROM "Sales ""EU""; drop".expected)
          UNION ALL
          (SELECT * FROM "Sales ""EU""; drop".expected EXCEPT ALL SELECT * FROM "Sales ""EU""; drop"."order")) d`);
      expect(Number(diff.rows[0].n)).toBe(0);
      expect(await catalogSnapshot(c, SCHEMA, 'order')).toEqual(before);
      expect(await leftovers(c)).toEqual([]);
    });
  });

  it('rebuilds a table whose names hold the dollar tag, first stages with psql, the rest with the runner', async () => {
    await withClient(db.url, (c) =>
      c.query(`
      CREATE TABLE public."t$sp$x" ("id$sp$" serial PRIMARY KEY, "v$sp" text CHECK ("v$sp" <> '$sp$'));
      CREATE INDEX "i$sp$" ON public."t$sp$x" ("v$sp");
      INSERT INTO public."t$sp$x" ("v$sp") SELECT 'v' || g || '$sp' FROM generate_series(1, 2000) g;
      CREATE TABLE public."t$sp$expected" AS SELECT * FROM public."t$sp$x";
    `),
    );
    const before = await withClient(db.url, (c) => catalogSnapshot(c, 'public', 't$sp$x'));
    const plan = await planTable(db.url, 'public', 't$sp$x', { batchPages: 3 });
    // Every body is quoted with a tag that no name holds.
    expect(plan.files.get('00-preflight.sql')).toContain('\n$sp1$;');
    for (const file of ['00-preflight.sql', '01-setup.sql', '02-backfill.sql']) {
      const r = await psql(db.url, join(plan.dir, file));
      expect(r.code, `${file}: ${r.stderr}`).toBe(0);
    }
    await withClient(db.url, (c) =>
      c.query(`UPDATE public."t$sp$x" SET "v$sp" = "v$sp" || '$sp1' WHERE "id$sp$" % 7 = 0;
      UPDATE public."t$sp$expected" SET "v$sp" = "v$sp" || '$sp1' WHERE "id$sp$" % 7 = 0`),
    );
    const r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      const diff = await c.query(`
        SELECT count(*) AS n FROM (
          (SELECT * FROM public."t$sp$x" EXCEPT ALL SELECT * FROM public."t$sp$expected")
          UNION ALL
          (SELECT * FROM public."t$sp$expected" EXCEPT ALL SELECT * FROM public."t$sp$x")) d`);
      expect(Number(diff.rows[0].n)).toBe(0);
      expect(await catalogSnapshot(c, 'public', 't$sp$x')).toEqual(before);
      expect(await leftovers(c)).toEqual([]);
    });
  });
});
