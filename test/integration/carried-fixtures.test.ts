import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import pg from 'pg';
import { freshDatabase, urlForDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable } from '../helpers/rebuild.js';
import { describeTable, survivingObjects, tableObjects, type CatalogDescription } from '../helpers/catalog-describe.js';
import { createTablespace, loadCarriedFixture } from '../helpers/carried-fixture.js';
import { qualified } from '../../src/model/quote.js';

const fx = loadCarriedFixture('everything');
const REL = qualified(fx.schema, fx.table);
const S = (name: string) => qualified(fx.schema, name);
const READER = 'Sp FX "reader"';
const ROLES = ['sp_fx_owner', READER, 'sp_fx_writer'];
const SPACE = 'sp fixture space';
const ADMIN = 'sp_fx_admin';

/**
 * Application writes while a stage runs: inserts (identity from the sequence), updates that fire
 * the conditional trigger, deletes of its own rows. Counts what it did, for the row count check.
 */
function writer(url: string): { stop: () => Promise<{ inserted: number; deleted: number }> } {
  let running = true;
  let inserted = 0;
  let deleted = 0;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      for (let k = 1; running; k++) {
        const code = `w ${process.hrtime.bigint()} ${k}`;
        const r = await c.query<{ ID: string }>(
          `INSERT INTO ${REL} ("select", "名前", "col_éééééééééééééééééééééééééééééx", "Parent Id", during, big)
           VALUES ($1, 'w', $2, $3, int4range($4, $4 + 1), repeat('y', 2500)) RETURNING "ID"`,
          [code, k % 40, 1 + (k % 2), 10_000_000 + Number(process.hrtime.bigint() % 1_000_000_000n)],
        );
        inserted++;
        await c.query(`UPDATE ${REL} SET "名前" = 'w' || $2 WHERE "ID" = $1`, [r.rows[0]!.ID, k]);
        if (k % 3 === 0) {
          deleted += (await c.query(`DELETE FROM ${REL} WHERE "ID" = $1`, [r.rows[0]!.ID])).rowCount ?? 0;
        }
      }
    } finally {
      await c.end();
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return { inserted, deleted };
    },
  };
}

/** Every role's rights on the table and its columns: what a grant check sees. */
async function rights(c: pg.ClientBase): Promise<string[]> {
  const r = await c.query<{ d: string }>(
    `
    SELECT r.rolname || ' ' || p || ' ' || has_table_privilege(r.oid, $1::text::regclass, p) AS d
      FROM pg_roles r, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p WHERE r.rolname = ANY($2)
    UNION ALL
    SELECT r.rolname || ' ' || a.attname || ' ' || p || ' ' || has_column_privilege(r.oid, $1::text::regclass, a.attnum, p)
      FROM pg_roles r, pg_attribute a, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p
     WHERE r.rolname = ANY($2) AND a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY 1`,
    [REL, ROLES],
  );
  return r.rows.map((x) => x.d);
}

interface State {
  readonly description: Readonly<Record<string, CatalogDescription>>;
  readonly rights: string[];
  readonly rows: number;
}

async function state(url: string): Promise<State> {
  return withClient(url, async (c) => {
    const description: Record<string, CatalogDescription> = {};
    for (const t of [fx.table, 'Child "T"', 'loose', 'Parent Table'])
      description[t] = await describeTable(c, fx.schema, t);
    const rows = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${REL}`)).rows[0]!.n);
    return { description, rights: await rights(c), rows };
  });
}

/** The behaviour checks of issue 3, for one parent row (each call consumes a different one). */
async function behaves(url: string, parent: number): Promise<void> {
  await withClient(url, async (c) => {
    // nextval continues: a new row gets an identity above every one used so far.
    const max = Number((await c.query<{ m: string }>(`SELECT max("ID") AS m FROM ${REL}`)).rows[0]!.m);
    await c.query(`DELETE FROM ${S('audit')}`);
    const ins = await c.query<{ ID: string }>(
      `INSERT INTO ${REL} ("select", "名前", "Parent Id", during) VALUES ($1, 'b', 1, int4range($2, $2 + 1)) RETURNING "ID"`,
      [`b ${parent}`, -parent * 10],
    );
    expect(Number(ins.rows[0]!.ID)).toBeGreaterThan(max);
    await c.query(`UPDATE ${REL} SET "名前" = 'b2' WHERE "ID" = $1`, [ins.rows[0]!.ID]);
    // Each trigger fires once per write, in its state: "audit off" never, "audit replica" not in an origin session.
    const fired = (await c.query<{ f: string }>(`SELECT tg || ' ' || op AS f FROM ${S('audit')} ORDER BY n`)).rows.map(
      (r) => r.f,
    );
    expect(fired.sort()).toEqual(['Audit; on INSERT', 'Audit; on UPDATE', 'audit always UPDATE']);
    // Cascades in both directions: parent → table → child, and the self-reference sets NULL.
    const lines = (await c.query<{ ID: string }>(`SELECT "ID" FROM ${REL} WHERE "Parent Id" = $1`, [parent])).rows.map(
      (r) => r.ID,
    );
    expect(lines.length).toBeGreaterThan(0);
    await c.query(`DELETE FROM ${S('Parent Table')} WHERE "Id" = $1`, [parent]);
    const left = await c.query<{ lines: string; children: string; selfs: string }>(
      `
      SELECT (SELECT count(*) FROM ${REL} WHERE "ID" = ANY($1::bigint[])) AS lines,
             (SELECT count(*) FROM ${S('Child "T"')} WHERE "line id" = ANY($1::bigint[])) AS children,
             (SELECT count(*) FROM ${REL} WHERE "self parent" = ANY($1::bigint[])) AS selfs`,
      [lines],
    );
    expect(left.rows[0]).toEqual({ lines: '0', children: '0', selfs: '0' });
  });
  // A role that is not the owner: its column grants work, the policy hides the other rows, nothing more is allowed.
  const reader = new pg.Client({ connectionString: url.replace(/\/\/[^@]*@/, `//${encodeURIComponent(READER)}:pw@`) });
  await reader.connect();
  try {
    const expected = await withClient(
      url,
      async (c) =>
        (await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${REL} WHERE "名前" = $1`, [READER])).rows[0]!.n,
    );
    expect((await reader.query<{ n: string }>(`SELECT count(*) AS n FROM ${REL}`)).rows[0]!.n).toBe(expected);
    expect(Number(expected)).toBeGreaterThan(0);
    await reader.query(`SELECT "ID", "名前", "select" FROM ${REL} LIMIT 1`);
    await expect(reader.query(`SELECT token FROM ${REL} LIMIT 1`)).rejects.toThrow(/permission denied/);
    await expect(reader.query(`INSERT INTO ${REL} ("select") VALUES ('r')`)).rejects.toThrow(/permission denied/);
    await expect(reader.query(`TRUNCATE ${REL}`)).rejects.toThrow(/permission denied/);
  } finally {
    await reader.end();
  }
}

describe(`everything a table carries survives the swap (fixtures/carried/everything.sql)`, () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('carried_fx');
    await withClient(db.url, async (c) => {
      if ((await c.query(`SELECT FROM pg_tablespace WHERE spcname = $1`, [SPACE])).rowCount === 0)
        await createTablespace(c, SPACE);
      await c.query(fx.sql);
    });
  });
  afterAll(async () => {
    await db?.drop();
    await withClient(urlForDatabase(db.url, 'postgres'), async (c) => {
      await c.query(`DROP TABLESPACE IF EXISTS "${SPACE}"`).catch(() => undefined);
      for (const r of [ADMIN, ...ROLES])
        await c.query(`DROP ROLE IF EXISTS "${r.replaceAll('"', '""')}"`).catch(() => undefined);
    });
  });

  it('is identical in the catalog after a full run under writes, behaves the same, and leaves nothing of the old table', async () => {
    const before = await state(db.url);
    const old = await withClient(db.url, (c) => tableObjects(c, fx.schema, fx.table));
    const plan = await planTable(db.url, fx.schema, fx.table, { batchPages: 20 });
    const w = writer(db.url);
    const r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
    const wrote = await w.stop();
    expect(r.code, r.stderr).toBe(0);
    expect(wrote.inserted).toBeGreaterThan(0);
    const after = await state(db.url);
    expect(after.description).toEqual(before.description);
    expect(after.rights).toEqual(before.rights);
    expect(after.rows).toBe(before.rows + wrote.inserted - wrote.deleted);
    await withClient(db.url, async (c) => {
      expect(await leftovers(c)).toEqual([]);
      expect(await survivingObjects(c, old)).toEqual([]);
    });
    await behaves(db.url, 3);
  });

  it('is identical in the catalog after a revert under writes, and behaves the same', async () => {
    const before = await state(db.url);
    const plan = await planTable(db.url, fx.schema, fx.table);
    // Mid-run (capture trigger on, copy filled): application writes fire the triggers exactly as before.
    let r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'catchup']);
    expect(r.code, r.stderr).toBe(0);
    await behaves(db.url, 6);
    let w = writer(db.url);
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'swap']);
    await w.stop();
    expect(r.code, r.stderr).toBe(0);
    await behaves(db.url, 4);
    w = writer(db.url);
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'revert']);
    await w.stop();
    expect(r.code, r.stderr).toBe(0);
    const after = await state(db.url);
    expect(after.description).toEqual(before.description);
    expect(after.rights).toEqual(before.rights);
    await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
    await behaves(db.url, 5);
  });

  it('refuses FORCE ROW LEVEL SECURITY to a role that does not bypass it, in one line with the fix', async () => {
    // Every privilege a run needs (so that this is the only refusal), but neither superuser nor BYPASSRLS.
    await withClient(db.url, (c) =>
      c.query(`
      DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ADMIN}') THEN CREATE ROLE ${ADMIN} LOGIN PASSWORD 'pw' NOBYPASSRLS; END IF;
      END $$;
      GRANT sp_fx_owner, postgres, pg_read_all_stats TO ${ADMIN};
      GRANT CREATE ON DATABASE "${db.name}" TO ${ADMIN};
    `),
    );
    const out = join(mkdtempSync(join(tmpdir(), 'sp-refuse-')), 'plan');
    const url = db.url.replace(/\/\/[^@]*@/, `//${ADMIN}:pw@`);
    const r = await cli(['plan', '--table', `${fx.schema}.${fx.table}`, '--out', out, '--url', url]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toContain(`row-level security is FORCEd and role "${ADMIN}" is neither superuser nor BYPASSRLS`);
    expect(existsSync(out)).toBe(false);
  });
});
