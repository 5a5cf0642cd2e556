import type { ClientBase } from 'pg';
import type { MoveSequence } from '../model/move-types.js';
import { qualified } from '../model/quote.js';

/**
 * Catalog facts a move needs beyond the table model (issue 15): the sequences the group uses, the database's identity. Typed rows stay in this file;
 * the result is plain model data.
 */

export type { MoveSequence, MoveUserType } from '../model/move-types.js';
export { moveColumnTypes, moveTypeAsDefined } from './move-column-types.js';

export interface MoveServerFacts {
  readonly serverVersionNum: number;
  readonly serverVersion: string;
  readonly database: string;
  readonly databaseOid: number;
  readonly encoding: string;
  readonly systemIdentifier: string | null;
  readonly inRecovery: boolean;
  readonly user: string;
}

export async function moveServerFacts(client: ClientBase): Promise<MoveServerFacts> {
  const r = (
    await client.query<{
      v: number;
      vs: string;
      db: string;
      oid: string;
      enc: string;
      rec: boolean;
      u: string;
      can: boolean;
    }>(
      `SELECT current_setting('server_version_num')::int AS v, current_setting('server_version') AS vs, d.datname AS db, d.oid::text AS oid,
            pg_catalog.pg_encoding_to_char(d.encoding) AS enc, pg_catalog.pg_is_in_recovery() AS rec, current_user AS u,
            has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE') AS can
       FROM pg_catalog.pg_database d WHERE d.datname = current_database()`,
    )
  ).rows[0]!;
  const sys = r.can
    ? (await client.query<{ s: string }>('SELECT system_identifier::text AS s FROM pg_catalog.pg_control_system()'))
        .rows[0]!.s
    : null;
  return {
    serverVersionNum: Number(r.v),
    serverVersion: r.vs,
    database: r.db,
    databaseOid: Number(r.oid),
    encoding: r.enc,
    systemIdentifier: sys,
    inRecovery: r.rec,
    user: r.u,
  };
}

interface SeqRow {
  schema: string;
  name: string;
  kind: string;
  col: string;
  type: string;
  start: string;
  inc: string;
  min: string;
  max: string;
  cache: string;
  cycle: boolean;
  elsewhere: string[] | null;
}

/** Owned (serial), identity and default-referenced sequences of the table's columns. */
export async function moveSequences(client: ClientBase, schema: string, table: string): Promise<MoveSequence[]> {
  const rel = qualified(schema, table);
  const rows = (
    await client.query<SeqRow>(
      `WITH used AS (
       SELECT d.objid AS seq, d.refobjsubid AS attnum, CASE d.deptype WHEN 'i' THEN 'identity' ELSE 'owned' END AS kind
         FROM pg_catalog.pg_depend d
        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
          AND d.refobjid = $1::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
       UNION
       SELECT d.refobjid, ad.adnum, 'default'
         FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
         JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
        WHERE ad.adrelid = $1::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
     )
     SELECT DISTINCT ON (u.seq) n.nspname AS schema, c.relname AS name, u.kind, a.attname AS col,
            pg_catalog.format_type(s.seqtypid, NULL) AS type, s.seqstart::text AS start, s.seqincrement::text AS inc,
            s.seqmin::text AS min, s.seqmax::text AS max, s.seqcache::text AS cache, s.seqcycle AS cycle,
            (SELECT array_agg(DISTINCT format('%s.%s', on2.nspname, oc.relname)) FROM pg_catalog.pg_depend d2
               JOIN pg_catalog.pg_attrdef ad2 ON d2.classid = 'pg_catalog.pg_attrdef'::regclass AND d2.objid = ad2.oid
               JOIN pg_catalog.pg_class oc ON oc.oid = ad2.adrelid JOIN pg_catalog.pg_namespace on2 ON on2.oid = oc.relnamespace
              WHERE d2.refobjid = u.seq AND ad2.adrelid <> $1::regclass) AS elsewhere
       FROM used u JOIN pg_catalog.pg_class c ON c.oid = u.seq JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_sequence s ON s.seqrelid = u.seq
       JOIN pg_catalog.pg_attribute a ON a.attrelid = $1::regclass AND a.attnum = u.attnum
      ORDER BY u.seq, CASE u.kind WHEN 'identity' THEN 0 WHEN 'owned' THEN 1 ELSE 2 END`,
      [rel],
    )
  ).rows;
  return rows.map((r) => ({
    schema: r.schema,
    name: r.name,
    kind: r.kind as MoveSequence['kind'],
    tableSchema: schema,
    tableName: table,
    column: r.col,
    type: r.type,
    start: r.start,
    increment: r.inc,
    min: r.min,
    max: r.max,
    cache: r.cache,
    cycle: r.cycle,
    usedElsewhere: r.elsewhere ?? [],
  }));
}

/** What the target already has of the names a move would create. */
export async function moveTargetConflicts(
  client: ClientBase,
  tables: readonly { schema: string; name: string }[],
  schemas: readonly string[],
  roles: readonly string[],
): Promise<{ existingTables: string[]; missingSchemas: string[]; missingRoles: string[]; fdwAvailable: boolean }> {
  const existingTables: string[] = [];
  for (const t of tables) {
    const r = (
      await client.query<{ o: string | null }>('SELECT to_regclass($1)::text AS o', [qualified(t.schema, t.name)])
    ).rows[0]!;
    if (r.o === null) continue;
    // Refused either way (a move creates its tables); whether it holds rows tells the operator what dropping it costs.
    const rows = await client
      .query<{ any: boolean }>(`SELECT EXISTS (SELECT FROM ${qualified(t.schema, t.name)}) AS any`)
      .then(
        (x) => (x.rows[0]!.any ? 'not empty' : 'empty'),
        () => 'not readable by this role',
      );
    existingTables.push(`${t.schema}.${t.name} (${rows})`);
  }
  const missingSchemas = (
    await client.query<{ s: string }>(
      'SELECT s FROM unnest($1::text[]) AS s WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = s) ORDER BY s',
      [schemas],
    )
  ).rows.map((r) => r.s);
  const missingRoles = (
    await client.query<{ s: string }>(
      'SELECT s FROM unnest($1::text[]) AS s WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = s) ORDER BY s',
      [roles],
    )
  ).rows.map((r) => r.s);
  const fdwAvailable = (
    await client.query<{ ok: boolean }>(
      "SELECT EXISTS (SELECT FROM pg_catalog.pg_available_extensions WHERE name = 'postgres_fdw') AS ok",
    )
  ).rows[0]!.ok;
  return { existingTables, missingSchemas, missingRoles, fdwAvailable };
}

/** The functions the table's user triggers call (regprocedure text, schema-qualified): the target must have them. */
export async function moveTriggerFunctions(
  client: ClientBase,
  schema: string,
  table: string,
  toolSchema: string,
): Promise<string[]> {
  await client.query('SET search_path = pg_catalog');
  try {
    const rows = (
      await client.query<{ f: string }>(
        `SELECT DISTINCT t.tgfoid::regprocedure::text AS f FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
        WHERE t.tgrelid = $1::regclass AND NOT t.tgisinternal AND p.pronamespace <> coalesce(to_regnamespace($2)::oid, 0) ORDER BY 1`,
        [qualified(schema, table), toolSchema],
      )
    ).rows;
    return rows.map((r) => r.f);
  } finally {
    await client.query('RESET search_path');
  }
}

/**
 * The functions the table's column defaults, generated columns, check constraints, index expressions and
 * predicates, extended statistics expressions and policies call (regprocedure text, schema-qualified; built-ins
 * have no dependency rows): the target must have them before setup and the build create those there.
 */
export async function moveTableFunctions(client: ClientBase, schema: string, table: string): Promise<string[]> {
  await client.query('SET search_path = pg_catalog');
  try {
    const rows = (
      await client.query<{ f: string }>(
        `SELECT DISTINCT d.refobjid::regprocedure::text AS f FROM pg_catalog.pg_depend d
          WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.deptype = 'n'
            AND ((d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid IN (SELECT oid FROM pg_catalog.pg_attrdef WHERE adrelid = $1::regclass))
              OR (d.classid = 'pg_catalog.pg_constraint'::regclass AND d.objid IN (SELECT oid FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass))
              OR (d.classid = 'pg_catalog.pg_class'::regclass AND d.objid IN (SELECT indexrelid FROM pg_catalog.pg_index WHERE indrelid = $1::regclass))
              OR (d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = $1::regclass)
              OR (d.classid = 'pg_catalog.pg_statistic_ext'::regclass AND d.objid IN (SELECT oid FROM pg_catalog.pg_statistic_ext WHERE stxrelid = $1::regclass))
              OR (d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid IN (SELECT oid FROM pg_catalog.pg_policy WHERE polrelid = $1::regclass)))
          ORDER BY 1`,
        [qualified(schema, table)],
      )
    ).rows;
    return rows.map((r) => r.f);
  } finally {
    await client.query('RESET search_path');
  }
}
