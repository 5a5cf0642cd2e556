import type { ClientBase } from 'pg';
import type { MoveUserType } from '../model/move-types.js';
import { qualified } from '../model/quote.js';

/**
 * The user-defined types a moved table's columns need on the target (issue 15): enums, composites (nested ones
 * too), domains, range and multirange types, each after the types it is made of. Typed rows stay in this file.
 */

export interface MoveColumnTypes {
  /** Dependency order: a type comes after every type it is made of. */
  readonly types: MoveUserType[];
  /** Functions the types call (domain CHECKs and defaults, range subtype_diff): regprocedure text, qualified. */
  readonly functions: string[];
  /** Types the move cannot create, with why: refused unless the target has them already (qualified name as key). */
  readonly uncreatable: { readonly type: string; readonly display: string; readonly why: string }[];
  /** Columns no move can carry (large objects). */
  readonly unsupported: string[];
}

interface TypeRow {
  oid: string;
  schema: string;
  name: string;
  typtype: string;
  elem: string | null;
  relkind: string | null;
  base: string | null;
  base_oid: string | null;
  collation: string | null;
  not_null: boolean;
  default_expr: string | null;
}

/** A collation's name, qualified (the oid given as SQL). */
const collationName = (oid: string): string =>
  `(SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = ${oid})`;

const TYPE_SQL = `
  SELECT t.oid::text AS oid, n.nspname AS schema, t.typname AS name, t.typtype::text AS typtype,
         CASE WHEN t.typelem <> 0 AND t.typlen = -1 AND t.typsubscript = 'array_subscript_handler'::regproc THEN t.typelem::text END AS elem,
         (SELECT c.relkind::text FROM pg_class c WHERE c.oid = t.typrelid) AS relkind,
         CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base,
         CASE WHEN t.typtype = 'd' THEN t.typbasetype::text END AS base_oid,
         CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 AND t.typcollation <> (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)
              THEN ${collationName('t.typcollation')} END AS collation,
         t.typnotnull AS not_null, pg_get_expr(t.typdefaultbin, 0) AS default_expr
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1::oid`;

/** Reads the types of `schema.table`'s columns (search_path pinned to pg_catalog, so every name comes qualified). */
export async function moveColumnTypes(client: ClientBase, schema: string, table: string): Promise<MoveColumnTypes> {
  await client.query('SET search_path = pg_catalog');
  try {
    return await readTypes(client, schema, table);
  } finally {
    await client.query('RESET search_path');
  }
}

/**
 * How the target defines a type of the same name as one the move would create (read as on the source, without
 * the types it is made of): null when it has none, 'other' when it is not an enum, composite, domain or range.
 */
export async function moveTypeAsDefined(client: ClientBase, typeName: string): Promise<MoveUserType | 'other' | null> {
  await client.query('SET search_path = pg_catalog');
  try {
    const oid = (await client.query<{ o: string | null }>('SELECT to_regtype($1)::oid::text AS o', [typeName])).rows[0]!
      .o;
    if (oid === null) return null;
    const out = emptyTypes();
    await typeVisitor(client, out, false)(oid);
    return out.types[0] ?? 'other';
  } finally {
    await client.query('RESET search_path');
  }
}

const emptyTypes = (): MoveColumnTypes => ({ types: [], functions: [], uncreatable: [], unsupported: [] });

async function readTypes(client: ClientBase, schema: string, table: string): Promise<MoveColumnTypes> {
  const columns = (
    await client.query<{ col: string; oid: string; name: string; schema: string }>(
      `SELECT a.attname AS col, a.atttypid::text AS oid, t.typname AS name, n.nspname AS schema
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [qualified(schema, table)],
    )
  ).rows;
  const out = emptyTypes();
  const visit = typeVisitor(client, out, true);
  for (const c of columns) {
    const element = c.name.replace(/^_/, '');
    if ((element === 'oid' && c.schema === 'pg_catalog') || element === 'lo') {
      out.unsupported.push(
        `column ${c.col} is of type ${element} (large objects are not seen by triggers and do not move; store the bytes in bytea)`,
      );
      continue;
    }
    await visit(c.oid);
  }
  return out;
}

/** Reads a type into `out`; deep: the types it is made of first (post-order), else only the type itself. */
function typeVisitor(client: ClientBase, out: MoveColumnTypes, deep: boolean): (oid: string) => Promise<void> {
  const done = new Set<string>();
  const q = async <T extends object>(sql: string, oid: string): Promise<T[]> =>
    (await client.query<T & Record<string, unknown>>(sql, [oid])).rows;

  const dependency = (oid: string): Promise<void> => (deep ? visit(oid) : Promise.resolve());
  /** Post-order: what a type is made of is pushed before the type. */
  const visit = async (oid: string): Promise<void> => {
    if (done.has(oid)) return;
    done.add(oid);
    const t = (await q<TypeRow>(TYPE_SQL, oid))[0];
    if (t === undefined) return;
    if (t.elem !== null) return visit(t.elem);
    if (t.schema === 'pg_catalog' || t.schema === 'information_schema') return;
    const display = `${t.schema}.${t.name}`;
    const q1 = qualified(t.schema, t.name);
    switch (t.typtype) {
      case 'e': {
        const labels = await q<{ l: string }>(
          'SELECT enumlabel AS l FROM pg_enum WHERE enumtypid = $1::oid ORDER BY enumsortorder',
          oid,
        );
        out.types.push({ kind: 'enum', schema: t.schema, name: t.name, labels: labels.map((x) => x.l) });
        return;
      }
      case 'c': {
        if (t.relkind !== 'c') {
          out.uncreatable.push({ type: q1, display, why: `the row type of a relation (relkind ${t.relkind})` });
          return;
        }
        const attrs = await q<{ n: string; t: string; oid: string; coll: string | null }>(
          `SELECT a.attname AS n, format_type(a.atttypid, a.atttypmod) AS t, a.atttypid::text AS oid,
                  CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation THEN ${collationName('a.attcollation')} END AS coll
             FROM pg_type c JOIN pg_attribute a ON a.attrelid = c.typrelid JOIN pg_type ty ON ty.oid = a.atttypid
            WHERE c.oid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
          oid,
        );
        for (const a of attrs) await dependency(a.oid);
        out.types.push({
          kind: 'composite',
          schema: t.schema,
          name: t.name,
          attributes: attrs.map((a) =>
            a.coll === null ? { name: a.n, type: a.t } : { name: a.n, type: a.t, collation: a.coll },
          ),
        });
        return;
      }
      case 'd': {
        await dependency(t.base_oid!);
        const checks = await q<{ n: string; d: string; v: boolean }>(
          `SELECT conname AS n, pg_get_constraintdef(oid) AS d, convalidated AS v FROM pg_constraint WHERE contypid = $1::oid AND contype = 'c' ORDER BY conname`,
          oid,
        );
        const fns = await q<{ f: string }>(
          `SELECT DISTINCT d.refobjid::regprocedure::text AS f FROM pg_depend d
            WHERE d.refclassid = 'pg_proc'::regclass AND d.deptype = 'n'
              AND ((d.classid = 'pg_type'::regclass AND d.objid = $1::oid)
                OR (d.classid = 'pg_constraint'::regclass AND d.objid IN (SELECT oid FROM pg_constraint WHERE contypid = $1::oid)))
            ORDER BY 1`,
          oid,
        );
        out.functions.push(...fns.map((x) => x.f));
        out.types.push({
          kind: 'domain',
          schema: t.schema,
          name: t.name,
          base: t.base!,
          collation: t.collation,
          default: t.default_expr,
          notNull: t.not_null,
          constraints: checks.map((c) => ({ name: c.n, definition: c.d, validated: c.v })),
        });
        return;
      }
      case 'r': {
        const r = (
          await q<{
            sub: string;
            opc: string | null;
            coll: string | null;
            canonical: string | null;
            diff: string | null;
            diff_sig: string | null;
            mschema: string;
            mname: string;
          }>(
            `SELECT r.rngsubtype::text AS sub,
                    CASE WHEN NOT o.opcdefault THEN format('%I.%I', on2.nspname, o.opcname) END AS opc,
                    CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN ${collationName('r.rngcollation')} END AS coll,
                    nullif(r.rngcanonical, 0)::regproc::text AS canonical,
                    CASE WHEN r.rngsubdiff <> 0 THEN format('%I.%I', pn.nspname, p.proname) END AS diff,
                    CASE WHEN r.rngsubdiff <> 0 AND pn.nspname <> 'pg_catalog' THEN r.rngsubdiff::regprocedure::text END AS diff_sig,
                    mn.nspname AS mschema, m.typname AS mname
               FROM pg_range r JOIN pg_type st ON st.oid = r.rngsubtype
               JOIN pg_opclass o ON o.oid = r.rngsubopc JOIN pg_namespace on2 ON on2.oid = o.opcnamespace
               LEFT JOIN pg_proc p ON p.oid = r.rngsubdiff LEFT JOIN pg_namespace pn ON pn.oid = p.pronamespace
               JOIN pg_type m ON m.oid = r.rngmultitypid JOIN pg_namespace mn ON mn.oid = m.typnamespace
              WHERE r.rngtypid = $1::oid`,
            oid,
          )
        )[0]!;
        if (r.canonical !== null) {
          out.uncreatable.push({
            type: q1,
            display,
            why: `a range type with a canonical function (${r.canonical}), which only C code can provide`,
          });
          return;
        }
        await dependency(r.sub);
        if (r.diff_sig !== null) out.functions.push(r.diff_sig);
        const subtype = (await q<{ t: string }>('SELECT format_type($1::oid, NULL) AS t', r.sub))[0]!.t;
        out.types.push({
          kind: 'range',
          schema: t.schema,
          name: t.name,
          subtype,
          subtypeOpclass: r.opc,
          collation: r.coll,
          subtypeDiff: r.diff,
          multirangeSchema: r.mschema,
          multirangeName: r.mname,
        });
        return;
      }
      case 'm': {
        const range = (
          await q<{ r: string }>('SELECT rngtypid::text AS r FROM pg_range WHERE rngmultitypid = $1::oid', oid)
        )[0];
        if (range !== undefined) await dependency(range.r);
        return;
      }
      default:
        // Base types of extensions (citext, hstore, …) and shell types: the target's own, as for any built-in.
        return;
    }
  };
  return visit;
}
