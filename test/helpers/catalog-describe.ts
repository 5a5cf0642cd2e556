import type pg from 'pg';
import { qualified } from '../../src/model/quote.js';

/**
 * A normalised description of a table and everything attached to it, read
 * from the catalog independently of shadowpack's own introspection (so a bug
 * there cannot hide itself). No OIDs, no attnums (a rebuilt table has no
 * dropped columns), no tool temporary names: two descriptions are equal
 * exactly when an application could not tell the tables apart.
 * Sequence values are not part of it (they move with every insert).
 */
export type CatalogDescription = Readonly<Record<string, readonly string[]>>;

/** One query per object kind; each returns one text column `d`, one row per object, ordered. */
const SECTIONS: Readonly<Record<string, string>> = {
  table: `
    SELECT concat_ws(' | ', c.relkind, c.relpersistence, pg_get_userbyid(c.relowner),
           coalesce(c.relacl, acldefault('r', c.relowner))::text,
           -- In catalog order: pg_dump prints them so, and a schema diff would show a reordering.
           'reloptions=' || c.reloptions::text,
           'toast_reloptions=' || (SELECT t.reloptions::text FROM pg_class t WHERE t.oid = c.reltoastrelid),
           'tablespace=' || coalesce((SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace), '(default)'),
           'rls=' || c.relrowsecurity, 'force=' || c.relforcerowsecurity, 'replident=' || c.relreplident::text,
           'toast=' || (c.reltoastrelid <> 0), 'comment=' || obj_description(c.oid, 'pg_class')) AS d
      FROM pg_class c WHERE c.oid = $1::regclass`,
  columns: `
    SELECT concat_ws(' | ', a.attname, format_type(a.atttypid, a.atttypmod), 'notnull=' || a.attnotnull,
           'default=' || pg_get_expr(d.adbin, d.adrelid), 'identity=' || a.attidentity::text, 'generated=' || a.attgenerated::text,
           'storage=' || a.attstorage::text, 'compression=' || a.attcompression::text, 'stats=' || coalesce(nullif(a.attstattarget, -1)::text, 'default'),
           'collation=' || a.attcollation::regcollation, 'options=' || a.attoptions::text, 'acl=' || a.attacl::text,
           'comment=' || col_description(a.attrelid, a.attnum)) AS d
      FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
  sequences: `
    SELECT concat_ws(' | ', s.oid::regclass::text, 'column=' || a.attname, 'dep=' || dep.deptype::text, format_type(q.seqtypid, NULL),
           q.seqstart, q.seqincrement, q.seqmin, q.seqmax, q.seqcache, q.seqcycle, s.relpersistence,
           pg_get_userbyid(s.relowner), coalesce(s.relacl, acldefault('s', s.relowner))::text,
           'comment=' || obj_description(s.oid, 'pg_class')) AS d
      FROM pg_depend dep JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
      JOIN pg_sequence q ON q.seqrelid = s.oid
      JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
     WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = $1::regclass
     ORDER BY 1`,
  indexes: `
    SELECT concat_ws(' | ', pg_get_indexdef(i.indexrelid),
           'tablespace=' || coalesce((SELECT spcname FROM pg_tablespace WHERE oid = ic.reltablespace), '(default)'),
           'clustered=' || i.indisclustered, 'replident=' || i.indisreplident, 'valid=' || i.indisvalid,
           'comment=' || obj_description(i.indexrelid, 'pg_class')) AS d
      FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
     WHERE i.indrelid = $1::regclass AND ic.relname NOT LIKE '\\_sp\\_%' ORDER BY ic.relname`,
  constraints: `
    SELECT concat_ws(' | ', n.conname, n.contype, pg_get_constraintdef(n.oid), 'validated=' || n.convalidated,
           'deferrable=' || n.condeferrable, 'deferred=' || n.condeferred, 'local=' || n.conislocal,
           'comment=' || obj_description(n.oid, 'pg_constraint')) AS d
      FROM pg_constraint n WHERE n.conrelid = $1::regclass ORDER BY n.conname`,
  referencedBy: `
    SELECT concat_ws(' | ', n.conrelid::regclass::text, n.conname, pg_get_constraintdef(n.oid), 'validated=' || n.convalidated,
           'comment=' || obj_description(n.oid, 'pg_constraint')) AS d
      FROM pg_constraint n WHERE n.confrelid = $1::regclass AND n.conrelid <> $1::regclass AND n.contype = 'f'
     ORDER BY n.conrelid::regclass::text, n.conname`,
  triggers: `
    SELECT concat_ws(' | ', t.tgname, pg_get_triggerdef(t.oid), 'enabled=' || t.tgenabled::text,
           'comment=' || obj_description(t.oid, 'pg_trigger')) AS d
      FROM pg_trigger t WHERE t.tgrelid = $1::regclass AND NOT t.tgisinternal AND t.tgname NOT LIKE '\\_sp\\_%' ORDER BY t.tgname`,
  policies: `
    SELECT concat_ws(' | ', p.polname, p.polcmd, p.polpermissive,
           (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r)::text END, ',' ORDER BY 1) FROM unnest(p.polroles) r),
           pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
           'comment=' || obj_description(p.oid, 'pg_policy')) AS d
      FROM pg_policy p WHERE p.polrelid = $1::regclass ORDER BY p.polname`,
  statistics: `
    SELECT concat_ws(' | ', pg_get_statisticsobjdef(s.oid), 'target=' || coalesce(nullif(s.stxstattarget::int, -1)::text, 'default'),
           pg_get_userbyid(s.stxowner), 'comment=' || obj_description(s.oid, 'pg_statistic_ext')) AS d
      FROM pg_statistic_ext s WHERE s.stxrelid = $1::regclass ORDER BY s.stxnamespace::regnamespace::text, s.stxname`,
  rules: `SELECT r.rulename::text AS d FROM pg_rewrite r WHERE r.ev_class = $1::regclass ORDER BY 1`,
  publications: `SELECT p.pubname::text AS d FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE r.prrelid = $1::regclass ORDER BY 1`,
};

/** Describes `schema.table` as the catalog holds it now. */
export async function describeTable(c: pg.ClientBase, schema: string, table: string): Promise<CatalogDescription> {
  await c.query('SET search_path = pg_catalog');
  try {
    const out: Record<string, string[]> = {};
    for (const [section, sql] of Object.entries(SECTIONS)) {
      out[section] = (await c.query<{ d: string }>(sql, [qualified(schema, table)])).rows.map((r) => r.d);
    }
    return out;
  } finally {
    await c.query('RESET search_path');
  }
}

/**
 * `target`'s description as the source's major version would show the same table, for a move to a newer major
 * (the matrix pairs 14 -> 17/18, 16 -> 18): what the newer server adds by itself, and nothing else, is taken out.
 * - PostgreSQL 17 adds MAINTAIN (m) to ALL: an owner holding every privilege on 14 holds it on 17 too.
 * - PostgreSQL 18 keeps each NOT NULL as a constraint (contype n, named <table>_<column>_not_null when created
 *   from a column's NOT NULL): they are dropped here after checking there is exactly one per NOT NULL column,
 *   so a column that lost or gained NOT NULL still shows in `columns`.
 */
export function asOnSourceMajor(
  target: CatalogDescription,
  sourceVersionNum: number,
  targetVersionNum: number,
): CatalogDescription {
  const out: Record<string, readonly string[]> = { ...target };
  if (sourceVersionNum < 170000 && targetVersionNum >= 170000) {
    out.table = target.table!.map((x) => x.replace('=arwdDxtm/', '=arwdDxt/'));
  }
  if (sourceVersionNum < 180000 && targetVersionNum >= 180000) {
    const notNullColumns = target
      .columns!.filter((x) => x.includes(' | notnull=true | '))
      .map((x) => x.split(' | ')[0]);
    const notNullConstraints = target.constraints!.filter((x) => x.split(' | ')[1] === 'n');
    const constrained = notNullConstraints.map((x) => /^NOT NULL (.+)$/.exec(x.split(' | ')[2]!)?.[1]);
    if (JSON.stringify([...constrained].sort()) !== JSON.stringify([...notNullColumns].sort())) {
      throw new Error(
        `NOT NULL constraints ${JSON.stringify(notNullConstraints)} do not match the NOT NULL columns ${JSON.stringify(notNullColumns)}`,
      );
    }
    out.constraints = target.constraints!.filter((x) => x.split(' | ')[1] !== 'n');
  }
  return out;
}

/**
 * The objects that make up the table itself: the table, its TOAST table and their indexes, its
 * identity sequences (re-created at the swap; owned sequences move instead), its row type and
 * array type. After cleanup none of the old table's may remain.
 */
export interface TableObjects {
  readonly relations: readonly number[];
  readonly types: readonly number[];
}

export async function tableObjects(c: pg.ClientBase, schema: string, table: string): Promise<TableObjects> {
  const rel = qualified(schema, table);
  const r = await c.query<{ relations: number[]; types: number[] }>(
    `
    SELECT array_remove(ARRAY[c.oid, c.reltoastrelid] || ARRAY(SELECT indexrelid FROM pg_catalog.pg_index WHERE indrelid IN (c.oid, c.reltoastrelid))
             || ARRAY(SELECT objid FROM pg_catalog.pg_depend WHERE refobjid = c.oid AND classid = 'pg_catalog.pg_class'::regclass
                       AND refclassid = 'pg_catalog.pg_class'::regclass AND deptype = 'i'), 0)::int8[] AS relations,
           ARRAY[c.reltype, (SELECT typarray FROM pg_catalog.pg_type WHERE oid = c.reltype)]::int8[] AS types
      FROM pg_catalog.pg_class c WHERE c.oid = $1::regclass`,
    [rel],
  );
  const row = r.rows[0]!;
  return { relations: row.relations.map(Number), types: row.types.map(Number) };
}

/** Which of `objs` still exist (as text, for a readable failure). */
export async function survivingObjects(c: pg.ClientBase, objs: TableObjects): Promise<string[]> {
  const r = await c.query<{ o: string }>(
    `
    SELECT 'relation ' || relname AS o FROM pg_catalog.pg_class WHERE oid = ANY($1::oid[])
    UNION ALL SELECT 'type ' || typname FROM pg_catalog.pg_type WHERE oid = ANY($2::oid[])
    UNION ALL SELECT 'dependency ' || pg_catalog.pg_describe_object(classid, objid, objsubid) FROM pg_catalog.pg_depend WHERE refobjid = ANY($1::oid[]) AND refclassid = 'pg_catalog.pg_class'::regclass
    ORDER BY 1`,
    [objs.relations, objs.types],
  );
  return r.rows.map((x) => x.o);
}
