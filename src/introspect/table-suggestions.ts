import type { ClientBase } from 'pg';
import { editDistance } from '../model/edit-distance.js';
import { qualified } from '../model/quote.js';
import { UserError } from '../model/errors.js';

/**
 * When --table names nothing (newcomer review finding 34): the tables the user most likely meant.
 * Names are taken as written (no case folding, as the catalog spells them), so `sales.Orders`
 * misses `sales.orders`; the same name in other cases, the same name in other schemas, and a
 * close spelling in the same schema are offered, written the way --table takes them.
 */
const CANDIDATES_SQL = `
SELECT n.nspname AS schema, c.relname AS name
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
 ORDER BY 1, 2`;

interface Candidate {
  readonly schema: string;
  readonly name: string;
}

/** How --table takes a name: bare when PostgreSQL would read it back unchanged, else "quoted". */
export function tableArgument(schema: string, name: string): string {
  const bare = (s: string) => /^[a-z_][a-z0-9_$]*$/.test(s);
  return bare(schema) && bare(name) ? `${schema}.${name}` : qualified(schema, name);
}

/** Up to three tables close to schema.table (schema null: a bare name, any schema), best first. */
export function closestTables(candidates: readonly Candidate[], schema: string | null, table: string): string[] {
  const lower = (s: string) => s.toLowerCase();
  const scored = candidates.flatMap((c) => {
    const sameName = lower(c.name) === lower(table);
    const sameSchema = schema === null || lower(c.schema) === lower(schema);
    if (sameName && sameSchema) return [{ c, score: 0 }];
    if (sameName) return [{ c, score: 1 }];
    const d = editDistance(lower(c.name), lower(table));
    if (sameSchema && d <= Math.min(3, Math.max(1, Math.floor(table.length / 3)))) return [{ c, score: 1 + d }];
    return [];
  });
  return scored
    .sort((a, b) => a.score - b.score)
    .slice(0, 3)
    .map(({ c }) => tableArgument(c.schema, c.name));
}

/** The suggestion clause for a table that does not exist, or '' when nothing is close. */
export async function tableSuggestion(client: ClientBase, schema: string | null, table: string): Promise<string> {
  const candidates = (await client.query<Candidate>(CANDIDATES_SQL)).rows;
  const found = closestTables(candidates, schema, table);
  return found.length === 0 ? '' : `did you mean ${found.join(' or ')}? `;
}

/**
 * parseTableName's refusal of a bare name (`--table orders`), with the schema-qualified tables of
 * that name when the database has any; any other error comes back unchanged.
 */
export async function withSchemaSuggestion(e: unknown, client: () => Promise<ClientBase>): Promise<unknown> {
  if (!(e instanceof UserError) || e.code !== 'BAD_TABLE_NAME' || typeof e.details['bareName'] !== 'string') return e;
  try {
    const c = await client();
    const hint = (await tableSuggestion(c, null, e.details['bareName'])).trim();
    return hint === '' ? e : new UserError('BAD_TABLE_NAME', `${e.message}; ${hint}`, e.details);
  } catch {
    // No connection: the refusal alone still says what to do.
    return e;
  }
}
