import type pg from 'pg';
import { qualified } from '../model/quote.js';
import { runNames } from '../model/names.js';
import type { TableModel } from '../model/types.js';
import type { VerifySide } from '../compile/verify-sql.js';

/**
 * Issue 19: `shadowpack verify` reads the table through the --alter expressions and the columns'
 * output functions, the owner's code. When a superuser other than the table's owner runs it, the
 * query goes through the run's verify function (owner-functions.hbs), which setup handed to the owner:
 * it runs the statement as the owner and returns rows of (range, first_key, last_key, rows_live,
 * rows_other, sum_live, sum_other). The owner cannot read the change log, so the pending keys are read
 * here and passed as arrays ($3, $4, …). Nothing the owner's code leaves in the session acts later:
 * the transaction is READ ONLY and rolled back (a SET or a WITH HOLD cursor goes with it), and nothing
 * runs after the call but the ROLLBACK.
 */
export interface OwnerRoute {
  /** Runs `statement` (returning the 7 columns above; pending keys as `pending`) as the owner. */
  readonly run: (statement: string) => Promise<pg.QueryResult<Record<string, string>>>;
  /** The pending keys as a relation of k1, k2, …, for the statement. */
  readonly pending: string;
}

/** The route, or null when the statement should run as the connecting role (it is the owner, not a superuser, or the function was not handed over). */
export async function ownerRoute(
  client: pg.ClientBase,
  model: TableModel,
  side: VerifySide,
): Promise<OwnerRoute | null> {
  const n = runNames(model.schema, model.name);
  const r = await client.query<{ fn: string | null; types: string[] | null }>(
    `SELECT p.oid::regprocedure::text AS fn,
            ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes[3:]) WITH ORDINALITY AS a(t, i) ORDER BY i) AS types
       FROM pg_catalog.pg_proc p
      WHERE p.pronamespace = to_regnamespace($1) AND p.proname = $2
        AND pg_get_userbyid(p.proowner) = $3 AND current_user <> $3
        AND (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)`,
    [n.toolSchema, n.verifyOwnerFunction, model.owner],
  );
  const row = r.rows[0];
  if (row === undefined || row.fn === null || row.types === null) return null;
  const types = row.types;
  const log = qualified(n.toolSchema, side === 'before-swap' ? n.logTable : n.reverseLogTable);
  const fn = qualified(n.toolSchema, n.verifyOwnerFunction);
  // After the swap the reverse log holds the rebuilt table's key types: cast to the function's.
  const arrays = types.map((t, i) => `l.a${i + 1}::${t}`).join(', ');
  const aggregated = types.map((_, i) => `array_agg(k${i + 1}) AS a${i + 1}`).join(', ');
  const collations = model.key.columns.map((k) => model.columns.find((c) => c.name === k)?.collation ?? null);
  const pending = `(SELECT ${types.map((_, i) => `u.k${i + 1}${collations[i] ? ` COLLATE ${collations[i]}` : ''} AS k${i + 1}`).join(', ')} FROM unnest(${types.map((_, i) => `$${i + 3}`).join(', ')}) AS u (${types.map((_, i) => `k${i + 1}`).join(', ')}))`;
  return {
    pending,
    run: (statement) =>
      client.query(`SELECT f.* FROM (SELECT ${aggregated} FROM ${log}) AS l, ${fn}($1, NULL, NULL, ${arrays}) AS f`, [
        statement,
      ]),
  };
}

/** A row-by-row comparison's one row (compared, missing, extra, changed, pending) in the verify function's columns. */
export function asRangeRow(statement: string): string {
  return `SELECT 0::integer, v.missing::text, v.extra::text, v.compared, v.changed, v.pending::text, NULL::text FROM (${statement}) AS v`;
}

/** Back from asRangeRow's columns. */
export function fromRangeRow(row: Record<string, string>): Record<string, string> {
  return {
    compared: row['rows_live']!,
    changed: row['rows_other']!,
    missing: row['first_key']!,
    extra: row['last_key']!,
    pending: row['sum_live']!,
  };
}
