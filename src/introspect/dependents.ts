import type { ClientBase } from 'pg';
import type { DependentsModel } from '../model/types.js';
import * as Q from './dependent-queries.js';

interface DependentRow {
  catalog: string;
  description: string;
  via_row_type: boolean;
  rule_name: string | null;
  rel_kind: string | null;
  rel_persistence: string | null;
  proc_kind: string | null;
  sql_body: boolean | null;
  proc_temp: boolean | null;
}
interface ViewRow {
  schema: string;
  name: string;
  owner: string;
  options: string[];
  definition: string;
  depth: number;
}
interface FunctionRow {
  schema: string;
  name: string;
  arguments: string;
  kind: string;
  owner: string;
  definition: string;
}
interface PublicationRow {
  name: string;
  owner: string;
  all_tables: boolean;
  explicit: boolean;
  columns: string[] | null;
  row_filter: string | null;
}
interface SchemaPublicationRow {
  name: string;
  schema: string;
}

/** What the swap can carry, and one phrase per object it cannot. */
export interface DependentsReading {
  readonly model: DependentsModel;
  readonly refusals: readonly string[];
}

/**
 * Why one dependent cannot be carried, or null when the swap carries it
 * (a plain view, a BEGIN ATOMIC function). Each phrase names the object.
 */
function refusal(d: DependentRow): string | null {
  if (d.via_row_type)
    return `${d.description} uses the table's row type (it would keep the old table's type; change it to not use the row type, or drop it for the run)`;
  switch (d.catalog) {
    case 'pg_rewrite':
      if (d.rule_name !== '_RETURN')
        return `${d.description} refers to it (rules cannot be carried; drop the rule for the run)`;
      if (d.rel_kind === 'm')
        return `${d.description.replace(/^rule _RETURN on /, '')} reads it (materialized views cannot be carried; drop it for the run and re-create it after)`;
      if (d.rel_kind !== 'v') return `${d.description} refers to it`;
      if (d.rel_persistence === 't')
        return `temporary ${d.description.replace(/^rule _RETURN on /, '')} of another session reads it (end that session first)`;
      return null;
    case 'pg_proc':
      if (d.proc_temp) return `temporary ${d.description} of another session reads it (end that session first)`;
      if (d.sql_body && (d.proc_kind === 'f' || d.proc_kind === 'p')) return null;
      return `${d.description} depends on it`;
    case 'pg_statistic_ext':
      // Carried like an index: read by introspect (EXTENDED_STATISTICS_SQL), created on the copy, renamed at the swap.
      return null;
    case 'pg_trigger':
      return `${d.description} refers to it (a constraint trigger FROM the table would be dropped with the old one; drop it for the run)`;
    case 'pg_policy':
      return `${d.description} refers to it (drop the policy for the run, or rebuild that table's policies after)`;
    default:
      return `${d.description} depends on it`;
  }
}

function kind(k: string): 'function' | 'procedure' {
  if (k === 'f') return 'function';
  if (k === 'p') return 'procedure';
  throw new Error(`unexpected prokind ${k}`);
}

/** pg_get_viewdef and pg_get_functiondef end with ";" or a newline; the plan adds its own ";". */
function statementText(text: string): string {
  return text.trim().replace(/;$/, '');
}

/**
 * Reads the table's dependents: the views, functions and publication
 * memberships the swap re-points, and a refusal for everything else.
 * `oid` is the table's; it runs inside introspection's read-only transaction.
 */
export async function readDependents(
  client: ClientBase,
  oid: number,
  schema: string,
  table: string,
  serverVersionNum: number,
  toolSchema: string,
): Promise<DependentsReading> {
  const q = async <T>(sql: string, params: unknown[]): Promise<T[]> => (await client.query(sql, params)).rows as T[];
  const refusals: string[] = [];
  for (const d of await q<DependentRow>(Q.DEPENDENTS_SQL, [oid])) {
    const why = refusal(d);
    if (why !== null) refusals.push(why);
  }
  const publications: DependentsModel['publications'][number][] = [];
  for (const p of await q<PublicationRow>(Q.PUBLICATIONS_SQL, [oid, schema, table])) {
    if (p.all_tables)
      refusals.push(
        `publication "${p.name}" is FOR ALL TABLES (it would publish the copy and the change log too; publish the tables one by one instead)`,
      );
    else if (p.explicit)
      publications.push({ name: p.name, owner: p.owner, columns: p.columns, rowFilter: p.row_filter });
  }
  if (serverVersionNum >= 150000) {
    for (const p of await q<SchemaPublicationRow>(Q.SCHEMA_PUBLICATIONS_SQL, [[schema, toolSchema]])) {
      refusals.push(
        `publication "${p.name}" publishes every table in schema "${p.schema}" (it would publish the copy or the change log too)`,
      );
    }
  }
  const views = (await q<ViewRow>(Q.DEPENDENT_VIEWS_SQL, [oid])).map((v) => ({
    schema: v.schema,
    name: v.name,
    owner: v.owner,
    options: v.options,
    definition: statementText(v.definition),
    depth: v.depth,
  }));
  const functions = (await q<FunctionRow>(Q.DEPENDENT_FUNCTIONS_SQL, [oid])).map((f) => ({
    schema: f.schema,
    name: f.name,
    arguments: f.arguments,
    kind: kind(f.kind),
    owner: f.owner,
    definition: statementText(f.definition),
  }));
  return { model: { views, functions, publications }, refusals };
}
