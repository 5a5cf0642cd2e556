/**
 * What a move carries to the target beyond rows (issue 15), source PostgreSQL 14 -> the suite's 17: the types
 * the columns need (domains with checks, NOT VALID ones and defaults, ranges with their multiranges, nested
 * composites, in dependency order), refused in one line while a function they call is missing on the target;
 * plan refuses a sequence shared with a table outside the group unless --split-shared-sequences, which the
 * review then names; a function a default or check calls or a tablespace missing on the target, a type defined otherwise there, or an empty table of the
 * same name there, is refused in one line. After the runner's whole move,
 * each table's catalog description (extended statistics, statistics targets, column storage and compression,
 * planner options, table and TOAST storage parameters, table and index tablespaces included) and every type on
 * the target equal the source's, and so do the rows; descending sequences continue below every used value; an abort drops the types the move created, and only those.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { asOnSourceMajor, describeTable } from '../helpers/catalog-describe.js';
import { createTablespace } from '../helpers/carried-fixture.js';
import { withClient } from '../helpers/db.js';
import {
  freshMovePair,
  MOVE_SOURCE_MISSING,
  SOURCE_MAJOR,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';

let servers: MoveServers;
let pair: MovePair;
let root: string;
let typed: MovePair;
const FDW_PASSWORD_ENV = 'SHADOWPACK_FDW_PASSWORD';
let savedPassword: string | undefined;

/** What the group's columns need: a domain calling a function, one over an enum, one over a range, a NOT VALID check, nested composites, ranges. */
const TYPES_SQL = `
  CREATE SCHEMA kinds;
  CREATE TYPE kinds.mood AS ENUM ('sad', 'ok', 'happy');
  CREATE FUNCTION kinds.is_even(integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 % 2 = 0';
  CREATE FUNCTION kinds.f8_diff(float8, float8) RETURNS float8 LANGUAGE sql IMMUTABLE AS 'SELECT $1 - $2';`;
const SOURCE_SQL = `
  CREATE SCHEMA app;
  CREATE DOMAIN kinds.even AS integer CONSTRAINT even_check CHECK (kinds.is_even(VALUE));
  CREATE DOMAIN kinds.posint AS integer NOT NULL DEFAULT 1 CONSTRAINT positive CHECK (VALUE > 0);
  CREATE DOMAIN kinds.code AS text COLLATE "C" CHECK (length(VALUE) <= 8);
  CREATE DOMAIN kinds.moody AS kinds.mood CHECK (VALUE <> 'sad');
  CREATE TYPE kinds.point2 AS (x kinds.posint, y float8);
  CREATE TYPE kinds.tagged AS (label kinds.code, p kinds.point2, m kinds.moody, tags text[]);
  CREATE TYPE kinds.f8range AS RANGE (subtype = float8, subtype_diff = kinds.f8_diff);
  CREATE TYPE kinds.trange AS RANGE (subtype = text, collation = "C", multirange_type_name = kinds.tranges);
  CREATE DOMAIN kinds.span AS kinds.f8range CHECK (NOT isempty(VALUE));
  CREATE TABLE app.things (
    id integer PRIMARY KEY, e kinds.even, c kinds.code, t kinds.tagged, ts kinds.tagged[], s kinds.span,
    tr kinds.trange, tmr kinds.tranges, ir int4range, imr int4multirange);
  CREATE TABLE app.parts (id bigserial PRIMARY KEY, thing_id integer NOT NULL REFERENCES app.things, pos kinds.posint, m kinds.moody);
  INSERT INTO app.things
    SELECT g, g * 2, 'C' || g, ROW('L' || g, ROW(g, g / 3.0), 'happy', ARRAY['a', NULL])::kinds.tagged,
           ARRAY[ROW('X', ROW(1, 0.5), 'ok', NULL)::kinds.tagged, NULL], kinds.f8range(0, g), kinds.trange('a', 'b' || g),
           kinds.tranges(kinds.trange('a', 'c'), kinds.trange('x', NULL)), int4range(g, g + 10), int4multirange(int4range(1, 3), int4range(g + 5, NULL))
      FROM generate_series(1, 40) g;
  INSERT INTO app.things (id) VALUES (0);
  INSERT INTO app.parts (thing_id, pos, m) SELECT g % 40 + 1, g, 'ok' FROM generate_series(1, 100) g;
  INSERT INTO app.things (id, c) VALUES (41, 'lower');
  ALTER DOMAIN kinds.code ADD CONSTRAINT upper_only CHECK (VALUE = upper(VALUE)) NOT VALID;
  ALTER TABLE app.things SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, toast.autovacuum_enabled = false);
  ALTER TABLE app.things ALTER COLUMN c SET STATISTICS 500, ALTER COLUMN c SET STORAGE EXTERNAL,
    ALTER COLUMN t SET COMPRESSION pglz, ALTER COLUMN ts SET STORAGE MAIN, ALTER COLUMN e SET (n_distinct = 100);
  CREATE STATISTICS kinds.things_deps (dependencies, ndistinct) ON e, id FROM app.things;
  ALTER STATISTICS kinds.things_deps SET STATISTICS 300;
  COMMENT ON STATISTICS kinds.things_deps IS 'e follows id';
  CREATE STATISTICS app.things_mod ON (id % 7) FROM app.things;
  CREATE FUNCTION kinds.label_of(integer) RETURNS text LANGUAGE sql IMMUTABLE AS $$SELECT 'P' || $1$$;
  ALTER TABLE app.parts ADD COLUMN label text DEFAULT kinds.label_of(7) CHECK (label <> kinds.label_of(0));
  CREATE SEQUENCE kinds.down INCREMENT BY -3 MINVALUE -1000000 MAXVALUE -1 START WITH -1;
  ALTER TABLE app.things ADD COLUMN d bigint DEFAULT nextval('kinds.down');
  ALTER TABLE app.parts ADD COLUMN k integer GENERATED BY DEFAULT AS IDENTITY (INCREMENT BY -1 MAXVALUE -1 START WITH -1);`;
/** Run after the tablespace exists: the parts table, one of its indexes and the things' key live there. */
const spaceSql = (space: string): string => `
  ALTER TABLE app.parts SET TABLESPACE ${space};
  CREATE INDEX parts_pos ON app.parts (pos) TABLESPACE ${space};
  ALTER INDEX app.things_pkey SET TABLESPACE ${space};`;
const SPACE = `sp_fidelity_${process.pid}`;

/** Every type in schema kinds, as the catalog describes it (no OIDs). */
async function describeKinds(url: string): Promise<string[]> {
  return withClient(url, async (c) => {
    await c.query('SET search_path = pg_catalog');
    const r = await c.query<{ d: string }>(`
      SELECT concat_ws(' | ', t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
             t.typcollation::regcollation,
             (SELECT string_agg(concat_ws(' ', conname, pg_get_constraintdef(oid), convalidated), '; ' ORDER BY conname) FROM pg_constraint WHERE contypid = t.oid AND contype = 'c'),
             (SELECT string_agg(concat_ws(' ', a.attname, format_type(a.atttypid, a.atttypmod), a.attcollation::regcollation), ', ' ORDER BY a.attnum)
                FROM pg_attribute a JOIN pg_class k ON k.oid = a.attrelid WHERE k.oid = t.typrelid AND k.relkind = 'c' AND a.attnum > 0),
             (SELECT concat_ws(' ', format_type(rngsubtype, NULL), rngsubopc::regclass, rngcollation::regcollation, rngsubdiff::regproc, format_type(rngmultitypid, NULL))
                FROM pg_range WHERE rngtypid = t.oid),
             (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid)) AS d
        FROM pg_type t WHERE t.typnamespace = 'kinds'::regnamespace AND t.typtype <> 'b' ORDER BY t.typname`);
    await c.query('RESET search_path');
    return r.rows.map((x) => x.d);
  });
}

const rowTexts = (url: string, table: string): Promise<string[]> =>
  withClient(url, async (c) =>
    (await c.query<{ r: string }>(`SELECT t::text AS r FROM ${table} t ORDER BY id`)).rows.map((x) => x.r),
  );

beforeAll(async () => {
  servers = await startMoveServers();
  pair = await freshMovePair(servers, 'move_fidelity');
  await withClient(pair.source.url, (c) =>
    c.query(`
      CREATE SCHEMA app;
      CREATE SEQUENCE app.ids;
      CREATE TABLE app.moved (id bigint PRIMARY KEY DEFAULT nextval('app.ids'), v text);
      CREATE TABLE app.stays (id bigint PRIMARY KEY DEFAULT nextval('app.ids'), v text);
      INSERT INTO app.moved (v) SELECT 'm' || g FROM generate_series(1, 5) g;
      INSERT INTO app.stays (v) SELECT 's' || g FROM generate_series(1, 5) g;`),
  );
  await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
  typed = await freshMovePair(servers, 'move_fidelity_types');
  await withClient(typed.source.url, async (c) => {
    await c.query(TYPES_SQL + SOURCE_SQL);
    await createTablespace(c, SPACE);
    await c.query(spaceSql(SPACE));
  });
  // The enum is already there (the move uses it), the functions not yet.
  await withClient(typed.target.url, (c) =>
    c.query(`CREATE SCHEMA app; CREATE SCHEMA kinds; CREATE TYPE kinds.mood AS ENUM ('sad', 'ok', 'happy');`),
  );
  root = mkdtempSync(join(tmpdir(), 'sp-move-fidelity-'));
  savedPassword = process.env[FDW_PASSWORD_ENV];
  process.env[FDW_PASSWORD_ENV] = decodeURIComponent(new URL(typed.source.url).password);
}, 120_000);

afterAll(async () => {
  if (savedPassword === undefined) delete process.env[FDW_PASSWORD_ENV];
  else process.env[FDW_PASSWORD_ENV] = savedPassword;
  await typed?.drop();
  for (const url of [servers?.sourceAdminUrl, servers?.targetAdminUrl])
    if (url !== undefined)
      await withClient(url, (c) => c.query(`DROP TABLESPACE IF EXISTS ${SPACE}`)).catch(() => undefined);
  if (root) rmSync(root, { recursive: true, force: true });
  await pair?.drop();
  await servers?.stop();
});

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await main(args, { out: (line) => (out += line + '\n'), err: (text) => (out += text) });
  return { code, out };
}

const planArgs = (table: string, out: string, ...more: string[]): string[] => [
  'plan',
  '--url',
  (table.startsWith('app.t') || table.startsWith('app.p') ? typed : pair).source.url,
  '--target-url',
  (table.startsWith('app.t') || table.startsWith('app.p') ? typed : pair).target.url,
  '--table',
  table,
  '--out',
  out,
  ...more,
];

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)(
  `move fidelity, source ${SOURCE_MAJOR} -> the suite's server`,
  () => {
    it('refuses a sequence shared with a table outside the group in one line, unless --split-shared-sequences', async () => {
      const refused = await cli(planArgs('app.moved', join(root, 'shared-refused')));
      expect(refused.code).toBe(2);
      expect(refused.out.trim().split('\n')).toHaveLength(1);
      expect(refused.out).toMatch(
        /sequence app\.ids also feeds app\.stays \(a column default\), outside the group: .*add --table app\.stays to move it too, or --split-shared-sequences/,
      );
      const dir = join(root, 'shared-split');
      const split = await cli(planArgs('app.moved', dir, '--split-shared-sequences'));
      expect(split.code, split.out).toBe(0);
      const manifest = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as {
        options: { splitSharedSequences?: boolean };
        stages: { file: string; hazards: string[] }[];
      };
      expect(manifest.options.splitSharedSequences).toBe(true);
      expect(manifest.stages.find((s) => s.file === '07-cutover.target.sql')!.hazards).toContain('SEQUENCE_SHARED');
      const readme = readFileSync(join(dir, 'README.md'), 'utf8');
      expect(readme).toMatch(/SEQUENCE_SHARED: --split-shared-sequences: .*a value can appear in both clusters/);
      expect(readme).toContain('`app.ids` (default; app.moved.id); also used outside the group by app.stays');
      // Both tables in the group: nothing is shared outside it, nothing to accept.
      const both = await cli([...planArgs('app.moved', join(root, 'shared-both')), '--table', 'app.stays']);
      expect(both.code, both.out).toBe(0);
      // An empty table of the same definition on the target is not adopted: refused in one line with the fix.
      await withClient(pair.target.url, (c) => c.query(`CREATE TABLE app.stays (id bigint PRIMARY KEY, v text)`));
      const empty = await cli([...planArgs('app.moved', join(root, 'empty-there')), '--table', 'app.stays']);
      expect(empty.code).toBe(2);
      expect(empty.out.trim().split('\n')).toHaveLength(1);
      expect(empty.out).toMatch(
        /the target already has app\.stays \(empty\); a move creates its tables itself and adopts none, not even an empty one .*drop or rename them on the target \(an empty one loses nothing/,
      );
      await withClient(pair.target.url, (c) => c.query('DROP TABLE app.stays'));
    });

    it('creates the domains, ranges and nested composites the columns need, in dependency order, and carries extended statistics, column and table storage settings and tablespaces; the target then equals the source', async () => {
      const missing = await cli(planArgs('app.things', join(root, 'types-refused'), '--with-fk-closure'));
      expect(missing.code).toBe(2);
      expect(missing.out.trim().split('\n')).toHaveLength(1);
      expect(missing.out).toMatch(
        /the types of the group's columns \(domain checks or defaults, range subtype_diff\) call kinds\.f8_diff\(double precision,double precision\), kinds\.is_even\(integer\), which the target does not have; create them there first/,
      );
      await withClient(typed.target.url, (c) =>
        c.query(TYPES_SQL.replace(/CREATE SCHEMA kinds;|CREATE TYPE kinds\.mood[^;]*;/g, '')),
      );
      const noFunction = await cli(planArgs('app.things', join(root, 'function-refused'), '--with-fk-closure'));
      expect(noFunction.code).toBe(2);
      expect(noFunction.out.trim().split('\n')).toHaveLength(1);
      expect(noFunction.out).toMatch(
        /the group's column defaults, generated columns, checks, indexes, statistics or policies call kinds\.label_of\(integer\), which the target does not have; create it there first/,
      );
      await withClient(typed.target.url, (c) =>
        c.query(`CREATE FUNCTION kinds.label_of(integer) RETURNS text LANGUAGE sql IMMUTABLE AS $$SELECT 'P' || $1$$`),
      );
      const noSpace = await cli(planArgs('app.things', join(root, 'space-refused'), '--with-fk-closure'));
      expect(noSpace.code).toBe(2);
      expect(noSpace.out.trim().split('\n')).toHaveLength(1);
      expect(noSpace.out).toContain(
        `the group's tables or indexes live in tablespace ${SPACE}, which the target does not have; create it there first (CREATE TABLESPACE "${SPACE}" LOCATION '…';)`,
      );
      await withClient(typed.target.url, (c) => createTablespace(c, SPACE));
      // A type of the same name but another definition on the target: refused, not used as it is.
      await withClient(typed.target.url, (c) =>
        c.query(`CREATE DOMAIN kinds.posint AS integer NOT NULL DEFAULT 1 CONSTRAINT positive CHECK (VALUE > 0);
               CREATE TYPE kinds.point2 AS (x kinds.posint, y real)`),
      );
      const differs = await cli(planArgs('app.things', join(root, 'type-differs'), '--with-fk-closure'));
      expect(differs.code).toBe(2);
      expect(differs.out.trim().split('\n')).toHaveLength(1);
      expect(differs.out).toContain(
        `the target already has kinds.point2 (a composite with other attributes: [{"name":"x","type":"kinds.posint"},{"name":"y","type":"real"}] there, [{"name":"x","type":"kinds.posint"},{"name":"y","type":"double precision"}] on the source); a move uses a type the target has as it is`,
      );
      await withClient(typed.target.url, (c) => c.query('DROP TYPE kinds.point2; DROP DOMAIN kinds.posint'));
      const kindsBefore = await describeKinds(typed.target.url);
      const dir = join(root, 'types');
      const planned = await cli(planArgs('app.things', dir, '--with-fk-closure'));
      expect(planned.code, planned.out).toBe(0);
      const args = ['--plan', dir, '--url', typed.source.url, '--target-url', typed.target.url];
      // Set up and aborted: the types the move created are gone (a domain over a range before the range), the
      // enum that was there stays.
      const setup = await cli(['run', ...args, '--until', 'setup']);
      expect(setup.code, setup.out).toBe(0);
      expect((await describeKinds(typed.target.url)).length).toBeGreaterThan(kindsBefore.length);
      const abort = await cli(['run', ...args, '--stage', 'abort']);
      expect(abort.code, abort.out).toBe(0);
      expect(await describeKinds(typed.target.url)).toEqual(kindsBefore);

      const again = await cli(planArgs('app.things', dir, '--with-fk-closure', '--force'));
      expect(again.code, again.out).toBe(0);
      // verify's checksums agree across the clusters on these types (row text hashed on each side).
      const caughtUp = await cli(['run', ...args, '--until', 'catchup']);
      expect(caughtUp.code, caughtUp.out).toBe(0);
      const verified = await cli(['verify', ...args]);
      expect(verified.code, verified.out).toBe(0);
      expect(verified.out).toMatch(/^PASS: 2 of 2 tables on the target equal the source/);
      const moved = await cli(['run', ...args, '--until', 'cleanup']);
      expect(moved.code, moved.out).toBe(0);
      expect(await describeKinds(typed.target.url)).toEqual(await describeKinds(typed.source.url));
      const [sourceVersion, targetVersion] = await Promise.all(
        [typed.source.url, typed.target.url].map((u) =>
          withClient(u, async (c) =>
            Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v),
          ),
        ),
      );
      // Descending sequences (a default-referenced one and an identity) continue below every used value.
      const [used] = await withClient(
        typed.source.url,
        async (c) =>
          (
            await c.query<{ d: string; k: string }>(
              `SELECT (SELECT min(d) FROM app.things)::text AS d, (SELECT min(k) FROM app.parts)::text AS k`,
            )
          ).rows,
      );
      expect(BigInt(used!.d)).toBe(-124n);
      for (const table of ['app.things', 'app.parts']) {
        expect(await rowTexts(typed.target.url, table), table).toEqual(await rowTexts(typed.source.url, table));
        const [schema, name] = table.split('.') as [string, string];
        const [a, b] = await Promise.all([
          withClient(typed.source.url, (c) => describeTable(c, schema, name)),
          withClient(typed.target.url, (c) => describeTable(c, schema, name)),
        ]);
        expect(asOnSourceMajor(b, sourceVersion!, targetVersion!)).toEqual({
          ...a,
          triggers: a.triggers!.filter((x) => !x.includes('shadowpack_mfence')),
        });
      }
      const [fresh] = await withClient(
        typed.target.url,
        async (c) =>
          (
            await c.query<{ d: string; k: string }>(
              `WITH t AS (INSERT INTO app.things (id) VALUES (1000) RETURNING d), p AS (INSERT INTO app.parts (thing_id) VALUES (1000) RETURNING k)
           SELECT (SELECT d FROM t)::text AS d, (SELECT k FROM p)::text AS k`,
            )
          ).rows,
      );
      expect(BigInt(fresh!.d)).toBeLessThan(BigInt(used!.d) - 10000n);
      expect(BigInt(fresh!.k)).toBeLessThan(BigInt(used!.k) - 10000n);
    });
  },
);
