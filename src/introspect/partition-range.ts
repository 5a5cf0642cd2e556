import type { ClientBase } from 'pg';
import { ident, qualified } from '../model/quote.js';
import type { TableModel } from '../model/types.js';

/**
 * The partition column's smallest and largest value, read once at plan time
 * and recorded in the plan (so the scripts follow from the plan alone).
 * Dates and timestamps as YYYY-MM-DD (timestamptz in UTC, where its bounds
 * are), integers as text. Null for an empty table. An unknown column or type
 * is left to the compiler, which refuses it with the reason.
 */
export async function partitionDataRange(
  client: ClientBase,
  model: TableModel,
  spec: { readonly column: string },
): Promise<{ readonly min: string; readonly max: string } | null> {
  const col = model.columns.find((c) => c.name === spec.column);
  if (!col) return null;
  const c = ident(col.name);
  let expr: string;
  switch (col.type) {
    case 'date':
    case 'timestamp without time zone':
      expr = `to_char(%s(${c}), 'YYYY-MM-DD')`;
      break;
    case 'timestamp with time zone':
      expr = `to_char(%s(${c}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')`;
      break;
    case 'smallint':
    case 'integer':
    case 'bigint':
      expr = `%s(${c})::text`;
      break;
    default:
      return null;
  }
  const r = await client.query<{ lo: string | null; hi: string | null }>(
    `SELECT ${expr.replace('%s', 'min')} AS lo, ${expr.replace('%s', 'max')} AS hi FROM ONLY ${qualified(model.schema, model.name)}`,
  );
  const row = r.rows[0];
  return row?.lo == null || row.hi == null ? null : { min: row.lo, max: row.hi };
}

/** Partition names the plan would create that already name a relation in the schema (setup would fail on them). */
export async function takenPartitionNames(
  client: ClientBase,
  schema: string,
  names: readonly string[],
): Promise<string[]> {
  const r = await client.query<{ n: string }>(
    'SELECT c.relname::text AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relname = ANY($2::text[]) ORDER BY 1',
    [schema, names],
  );
  return r.rows.map((x) => x.n);
}
