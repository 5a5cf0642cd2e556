import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { catalogSnapshot, cli, leftovers, planTable, ROOT } from '../helpers/rebuild.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';

const FIXTURE = join(ROOT, 'fixtures', 'dependent-views');
const OPS = '"Ops ; ""Ünï"""';

/** Everything a reader of the views, functions and publications can observe in the catalog, OIDs included. */
async function dependentsCatalog(c: pg.ClientBase): Promise<unknown> {
  await c.query('SET search_path = pg_catalog');
  const views = await c.query(
    `
    SELECT v.oid::int8 AS oid, v.oid::regclass::text AS name, pg_get_userbyid(v.relowner) AS owner, v.relacl::text AS acl,
           v.reloptions::text AS options, obj_description(v.oid, 'pg_class') AS comment, pg_get_viewdef(v.oid) AS definition,
           (SELECT string_agg(concat_ws(':', a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum),
                   pg_get_expr(d.adbin, d.adrelid), a.attacl::text), ', ' ORDER BY a.attnum)
              FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = v.oid AND a.attnum > 0) AS columns
      FROM pg_class v WHERE v.relkind = 'v' AND v.relnamespace IN (to_regnamespace('report'), to_regnamespace($1))
     ORDER BY 2`,
    [OPS],
  );
  const functions = await c.query(`
    SELECT p.oid::int8 AS oid, p.oid::regprocedure::text AS name, pg_get_userbyid(p.proowner) AS owner, p.proacl::text AS acl,
           obj_description(p.oid, 'pg_proc') AS comment, pg_get_functiondef(p.oid) AS definition
      FROM pg_proc p WHERE p.pronamespace = to_regnamespace('report') ORDER BY 2`);
  const publications = await c.query(`SELECT to_jsonb(pt)::text AS row FROM pg_publication_tables pt ORDER BY 1`);
  await c.query('RESET search_path');
  return { views: views.rows, functions: functions.rows, publications: publications.rows };
}

/** Rules and SQL bodies still bound to a table with one of shadowpack's names: must be none after every stage. */
async function boundToToolTables(c: pg.ClientBase): Promise<string[]> {
  const r = await c.query<{ d: string }>(`
    SELECT DISTINCT pg_describe_object(d.classid, d.objid, 0) || ' -> ' || t.relname AS d
      FROM pg_depend d JOIN pg_class t ON d.refclassid = 'pg_class'::regclass AND t.oid = d.refobjid
     WHERE t.relname LIKE '\\_sp\\_%' AND d.classid IN ('pg_rewrite'::regclass, 'pg_proc'::regclass, 'pg_publication_rel'::regclass)`);
  return r.rows.map((x) => x.d);
}

/**
 * In one snapshot, the views and the function against the same queries on
 * the table: a view still reading the old table (which lags behind until
 * revert) would differ as soon as a writer commits.
 */
async function expectViewsReadTheTable(c: pg.ClientBase): Promise<void> {
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  try {
    const r = await c.query(`
      SELECT (SELECT count(*) FROM ((SELECT id, customer_id, email, qty FROM app.orders WHERE qty > 2) EXCEPT ALL
                                    SELECT * FROM ${OPS}."open orders") x) AS open_missing,
             (SELECT count(*) FROM (SELECT * FROM ${OPS}."open orders" EXCEPT ALL
                                    SELECT id, customer_id, email, qty FROM app.orders WHERE qty > 2) x) AS open_extra,
             (SELECT count(*) FROM (SELECT id, note FROM app.orders WHERE qty > 2 EXCEPT ALL SELECT * FROM report."order") x) AS order_missing,
             (SELECT count(*) FROM report."orders_with_customer_names_for_the_monthly_report_sheet_ä_€") = (SELECT count(*) FROM app.orders) AS join_same,
             (SELECT count(*) FROM report.as_json) = (SELECT count(*) FROM app.orders) AS json_same,
             (SELECT n FROM report.summary) = (SELECT count(*) FROM app.orders WHERE qty > 2) AS summary_same,
             report.order_count(1) = (SELECT count(*) FROM app.orders) AS function_same`);
    expect(r.rows[0]).toEqual({
      open_missing: '0',
      open_extra: '0',
      order_missing: '0',
      join_same: true,
      json_same: true,
      summary_same: true,
      function_same: true,
    });
  } finally {
    await c.query('ROLLBACK');
  }
}

/**
 * Sessions that read through the views while the run goes on, locking views
 * and table in both orders: the swap locks the views first and never queues,
 * so none of them may ever fail (a deadlock would cancel one).
 */
function startViewReaders(url: string): { stop: () => Promise<{ reads: number; errors: string[] }> } {
  let stopping = false;
  const errors: string[] = [];
  let reads = 0;
  // Point reads, as an application makes them, with a pause between them.
  const queries = [
    `SELECT o.note, t.qty FROM report."order" o JOIN app.orders t USING (id) WHERE o.id = $1`,
    `SELECT t.qty, v.email FROM app.orders t JOIN ${OPS}."open orders" v USING (id) WHERE t.id = $1`,
  ];
  const loops = queries.map((q) =>
    withClient(url, async (c) => {
      while (!stopping) {
        try {
          await c.query(q, [1 + Math.floor(Math.random() * 20_000)]);
          reads++;
        } catch (e) {
          errors.push((e as Error).message);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    }),
  );
  return {
    async stop() {
      stopping = true;
      await Promise.all(loops);
      return { reads, errors };
    },
  };
}

describe('views, BEGIN ATOMIC functions and publications over the table survive swap, revert and cleanup', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('dependents');
    await withClient(db.url, async (c) => {
      for (const role of ['sp_dep_owner', 'sp_dep_reader']) {
        await c.query(`DO $$ BEGIN CREATE ROLE ${role}; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
      }
      await createDemoSchema(c, 20_000);
      await c.query(readFileSync(join(FIXTURE, 'schema.sql'), 'utf8'));
      // security_invoker, column lists and row filters need PostgreSQL 15; on 14 a plain membership is still carried.
      const v = Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v);
      await c.query(
        v >= 150000
          ? readFileSync(join(FIXTURE, 'pg15.sql'), 'utf8')
          : 'CREATE PUBLICATION sp_pub_plain FOR TABLE app.orders, app.customers',
      );
    });
  });
  afterAll(async () => db?.drop());

  it('re-points them inside the swap under concurrent writers, keeps every property, and does so again at revert', async () => {
    const catalogBefore = await withClient(db.url, dependentsCatalog);
    const signatureBefore = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
    let plan = await planTable(db.url, 'app', 'orders', { batchPages: 20 });
    expect(plan.manifest.stages.find((s) => s.name === 'swap')!.hazards).toEqual(
      expect.arrayContaining(['VIEWS_RECREATED', 'FUNCTIONS_RECREATED', 'PUBLICATION_MOVED']),
    );

    const writers = await startWriters({ connectionString: db.url }, 3, 2);
    const readers = startViewReaders(db.url);
    let r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'swap']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await boundToToolTables(c)).toEqual([]);
      await expectViewsReadTheTable(c);
    });
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'revert']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await boundToToolTables(c)).toEqual([]);
      await expectViewsReadTheTable(c);
    });
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    const read = await readers.stop();
    expect(read.errors).toEqual([]);
    expect(read.reads).toBeGreaterThan(0);
    await withClient(db.url, async (c) => {
      expect(await dependentsCatalog(c)).toEqual(catalogBefore);
      expect(await catalogSnapshot(c, 'app', 'orders')).toEqual(signatureBefore);
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
      expect(await leftovers(c)).toEqual([]);
    });

    // Forward to the end this time: cleanup drops the old table, which nothing may still need.
    plan = await planTable(db.url, 'app', 'orders', { batchPages: 20 });
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await dependentsCatalog(c)).toEqual(catalogBefore);
      expect(await catalogSnapshot(c, 'app', 'orders')).toEqual(signatureBefore);
      expect(await leftovers(c)).toEqual([]);
      await expectViewsReadTheTable(c);
      // Writes through the auto-updatable view and the procedure reach the live table.
      await c.query(
        `UPDATE ${OPS}."open orders" SET email = NULL WHERE id = (SELECT min(id) FROM app.orders WHERE qty > 2)`,
      );
      const id = (await c.query<{ id: number }>('SELECT min(id) AS id FROM app.orders')).rows[0]!.id;
      await c.query(`CALL report.set_note($1, 'via procedure')`, [id]);
      expect((await c.query(`SELECT count(*) AS n FROM app.orders WHERE note = 'via procedure'`)).rows[0].n).toBe('1');
      await expect(c.query(`INSERT INTO ${OPS}."open orders" (customer_id, qty) VALUES (1, 1)`)).rejects.toThrow(
        /check option/,
      );
    });
  });

  it('refuses drift: a changed or new dependent changes the fingerprint; revert and cleanup stop, naming what they cannot carry', async () => {
    await withClient(db.url, async (c) => {
      const base = (await catalogSnapshot(c, 'app', 'orders')).signature;
      await c.query('CREATE VIEW report.late AS SELECT id FROM app.orders');
      expect((await catalogSnapshot(c, 'app', 'orders')).signature).not.toBe(base);
      await c.query('DROP VIEW report.late');
      await c.query(`ALTER VIEW ${OPS}."open orders" SET (security_barrier = false)`);
      expect((await catalogSnapshot(c, 'app', 'orders')).signature).not.toBe(base);
      await c.query(`ALTER VIEW ${OPS}."open orders" SET (security_barrier = true)`);
      expect((await catalogSnapshot(c, 'app', 'orders')).signature).toBe(base);
    });

    const plan = await planTable(db.url, 'app', 'orders', { batchPages: 20 });
    let r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'swap']);
    expect(r.code, r.stderr).toBe(0);
    // Created over the live table after the swap: revert would leave it reading the copy.
    await withClient(db.url, (c) => c.query('CREATE VIEW report.late AS SELECT id FROM app.orders'));
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'revert']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/revert stopped before changing anything: rule _RETURN on view report\.late depend on/);
    // Bound to the old table after the swap: cleanup would fail at DROP TABLE.
    const old = `app."_sp_${plan.manifest.runId}_old"`;
    await withClient(db.url, (c) =>
      c.query(`DROP VIEW report.late; CREATE VIEW report.on_old AS SELECT id FROM ${old}`),
    );
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'cleanup']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/cleanup stopped before changing anything: rule _RETURN on view report\.on_old depend on/);
    await withClient(db.url, async (c) => {
      expect((await c.query(`SELECT to_regclass('${old}') IS NOT NULL AS kept`)).rows[0].kept).toBe(true);
      await c.query('DROP VIEW report.on_old');
    });
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await leftovers(c)).toEqual([]);
      await expectViewsReadTheTable(c);
    });
  });
});
