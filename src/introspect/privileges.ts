import type { ClientBase } from 'pg';
import { UserError } from '../model/errors.js';
import { TOOL_SCHEMA } from '../model/names.js';
import { missingPrivilegesSql } from '../model/privileges-sql.js';

/** A privilege the role that runs the plan lacks, and the statement that grants it. */
export interface MissingPrivilege {
  readonly what: string;
  readonly fix: string;
}

/** Reads which privileges `role` (default: the connected one) lacks to run a plan for the table. Read-only. */
export async function missingPrivileges(
  client: ClientBase,
  schema: string,
  table: string,
  role?: string,
): Promise<MissingPrivilege[]> {
  const who = role ?? (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
  const exists = await client.query<{ ok: boolean }>(
    'SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = $1) AS ok',
    [who],
  );
  if (!exists.rows[0]!.ok)
    throw new UserError('BAD_ARGUMENT', `role ${who} does not exist; give --run-as the role that will run the plan`);
  // Looked up in the catalog, not with to_regclass: that needs USAGE on the schema, which may be what is missing.
  const found = await client.query<{ oid: number }>(
    'SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2',
    [schema, table],
  );
  const oid = found.rows[0]?.oid ?? null;
  if (oid === null) return [];
  // search_path = pg_catalog, as in the stage scripts: every relation name comes back qualified.
  await client.query('BEGIN READ ONLY');
  try {
    await client.query('SET LOCAL search_path = pg_catalog');
    const r = await client.query<{ what: string; fix: string }>(
      missingPrivilegesSql('$1::oid', '$2::name', '$3::text'),
      [oid, who, TOOL_SCHEMA],
    );
    return r.rows.map((x) => ({ what: x.what, fix: x.fix }));
  } finally {
    await client.query('ROLLBACK');
  }
}

/**
 * Refuses a plan its runner could not carry out: one line saying who lacks
 * what and how to fix it, then one fixing statement per missing privilege.
 */
export function privilegeError(role: string, table: string, missing: readonly MissingPrivilege[]): UserError {
  const lines = [
    `role ${role} lacks ${missing.length} privilege${missing.length === 1 ? '' : 's'} needed to run a plan for ${table}; no plan was written and nothing was created. ` +
      "Run these statements as a superuser or the objects' owner, then plan again (or plan with --run-as ROLE for the role that will run it):",
    ...missing.map((m) => `  ${m.fix}  -- ${m.what}`),
  ];
  return new UserError('PRIVILEGES_MISSING', lines.join('\n'), { role, missing });
}
