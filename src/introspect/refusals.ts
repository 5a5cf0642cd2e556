import type { ColumnRow, ConstraintRow, IdentityRow, IndexRow, ReferencedByRow, TableRow, TriggerRow } from './rows.js';

export interface CatalogRows {
  table: TableRow;
  columns: ColumnRow[];
  indexes: IndexRow[];
  constraints: ConstraintRow[];
  referencedBy: ReferencedByRow[];
  triggers: TriggerRow[];
  identities: IdentityRow[];
}

/**
 * Kinds of table the rebuild cannot handle at all. Returns the reason, or
 * null. These are checked before anything else so the message is the real one.
 */
export function tableKindRefusal(
  t: Pick<TableRow, 'relkind' | 'persistence' | 'is_partition' | 'has_children' | 'is_child' | 'is_typed'>,
): string | null {
  switch (t.relkind) {
    case 'r':
      break;
    case 'p':
      return 'it is a partitioned table (rebuild its partitions one by one instead)';
    case 'f':
      return 'it is a foreign table';
    case 'v':
      return 'it is a view';
    case 'm':
      return 'it is a materialized view (use REFRESH MATERIALIZED VIEW CONCURRENTLY)';
    default:
      return `it is not an ordinary table (relkind ${t.relkind})`;
  }
  if (t.persistence === 't') return 'it is a temporary table';
  if (t.persistence === 'u')
    return 'it is an UNLOGGED table (its contents are not crash-safe, so an online rebuild gains nothing)';
  if (t.is_partition) return 'it is a partition of a partitioned table';
  if (t.has_children) return 'it is an inheritance parent';
  if (t.is_child) return 'it inherits from another table';
  if (t.is_typed) return 'it is a typed table (CREATE TABLE OF type)';
  return null;
}

/**
 * Objects attached to the table that this version cannot carry across the
 * swap faithfully. Refusing is better than silently dropping them.
 * Objects outside the table (views, functions, publications) are judged in dependents.ts.
 */
export function objectRefusals(rows: CatalogRows): string[] {
  const out: string[] = [];
  const t = rows.table;
  if (t.rls_forced && !t.bypass_rls) {
    out.push(
      `row-level security is FORCEd and role "${t.current_role}" is neither superuser nor BYPASSRLS, so the policies would hide rows from the copy: plan and run as a role that bypasses row-level security (ALTER ROLE … BYPASSRLS)`,
    );
  }
  for (const c of rows.columns) {
  }
  for (const q of rows.identities) {
    if (q.persistence !== 'p') out.push(`identity sequence "${q.name}" of column "${q.column_name}" is UNLOGGED`);
  }
  for (const i of rows.indexes) {
    if (!i.is_valid)
      out.push(`index "${i.name}" is invalid (a failed CREATE INDEX CONCURRENTLY? drop or REINDEX it first)`);
  }
  for (const c of rows.constraints) {
    if (c.type === 'n' && c.comment !== null) out.push(`NOT NULL constraint "${c.name}" has a comment`);
    if (c.type === 't') out.push(`constraint trigger "${c.name}"`);
    if (c.type === 'n' && !c.validated) out.push(`NOT NULL constraint "${c.name}" is NOT VALID`);
  }
  for (const r of rows.referencedBy) {
    if (r.relkind !== 'r')
      out.push(`foreign key "${r.name}" on ${r.schema}.${r.table_name} comes from a partitioned table`);
  }
  for (const tr of rows.triggers) {
    if (!tr.is_tool && tr.is_constraint) out.push(`constraint trigger "${tr.name}"`);
  }
  return out;
}

/**
 * Schemas whose tables shadowpack never rebuilds: PostgreSQL's own catalogs (a superuser's plan
 * would fail at setup with "System catalog modifications are currently disallowed", anyone else's
 * got a grant list to make it work) and the tool's own schema. Checked before connecting.
 */
export function systemSchemaRefusal(schema: string, toolSchema: string): string | null {
  if (schema === 'pg_catalog' || schema === 'information_schema' || /^pg_toast(_temp_\d+)?$/.test(schema)) {
    return `${schema} is a system schema: PostgreSQL's catalogs cannot be rebuilt (VACUUM FULL or REINDEX them, if anything)`;
  }
  if (schema === toolSchema) return `${schema} is shadowpack's own schema: its tables belong to runs in progress`;
  return null;
}
