import type { ClientBase } from 'pg';
import { UserError } from '../model/errors.js';
import type { IntrospectedTable, TableModel } from '../model/types.js';
import { qualified } from '../model/quote.js';
import { signatureSql } from '../model/signature.js';
import { TOOL_SCHEMA } from '../model/names.js';
import { normalise } from '../model/normalise.js';
import * as Q from './queries.js';
import type {
  ColumnGrantRow,
  ColumnRow,
  ConstraintRow,
  GrantRow,
  IdentityRow,
  IndexRow,
  OwnedSequenceRow,
  ExtendedStatisticsRow,
  PolicyRow,
  ReferencedByRow,
  TableRow,
  TriggerRow,
} from './rows.js';
import { objectRefusals, tableKindRefusal, type CatalogRows } from './refusals.js';
import { mapModel, type Extras } from './map.js';
import { grantorRefusals } from './grant-refusals.js';
import { readDependents } from './dependents.js';
import { tableSuggestion } from './table-suggestions.js';

/**
 * Splits `schema.table` the way PostgreSQL stores names: case kept, quotes optional. Blanks around
 * an unquoted name are dropped, as the SQL parser drops them (` sales.orders` is sales.orders).
 */
export function parseTableName(input: string): { schema: string; table: string } {
  const parts: string[] = [];
  const quoted: boolean[] = [];
  let i = 0;
  while (i < input.length) {
    while (input[i] === ' ' || input[i] === '\t') i++;
    if (input[i] === '"') {
      let name = '';
      i++;
      for (;;) {
        if (i >= input.length)
          throw new UserError(
            'BAD_TABLE_NAME',
            `--table ${input}: unterminated double quote; write it as schema.table, quoting names with "..."`,
          );
        if (input[i] === '"') {
          if (input[i + 1] === '"') {
            name += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        name += input[i];
        i++;
      }
      while (input[i] === ' ' || input[i] === '\t') i++;
      parts.push(name);
      quoted.push(true);
    } else {
      const dot = input.indexOf('.', i);
      const end = dot === -1 ? input.length : dot;
      parts.push(input.slice(i, end).trim());
      quoted.push(false);
      i = end;
    }
    if (i < input.length) {
      if (input[i] !== '.') throw new UserError('BAD_TABLE_NAME', `--table ${input}: expected "." after a quoted name`);
      i++;
      if (i === input.length) parts.push('');
    }
  }
  if (parts.length === 1 && quoted[0] === true && parts[0]!.includes('.')) {
    const [schema, ...rest] = parts[0]!.split('.');
    throw new UserError(
      'BAD_TABLE_NAME',
      `--table ${input}: in double quotes "${parts[0]}" is one name with a dot in it; for table ${rest.join('.')} of schema ${schema} write ${schema}.${rest.join('.')} (or "${schema}"."${rest.join('.')}")`,
    );
  }
  if (parts.length !== 2 || parts.some((p) => p.length === 0)) {
    // A bare name: the caller may look up the schemas that hold it.
    const details = parts.length === 1 && parts[0]!.length > 0 ? { bareName: parts[0]! } : {};
    throw new UserError(
      'BAD_TABLE_NAME',
      `--table ${input}: give the table as schema.table (for example public.orders), exactly as the catalog spells the names`,
      details,
    );
  }
  return { schema: parts[0]!, table: parts[1]! };
}

async function rows<T>(client: ClientBase, sql: string, params: unknown[]): Promise<T[]> {
  return (await client.query(sql, params)).rows as T[];
}

async function systemIdentifier(client: ClientBase): Promise<string | null> {
  const [can] = await rows<{ ok: boolean }>(client, Q.CAN_READ_CONTROL_SQL, []);
  if (!can?.ok) return null;
  const [r] = await rows<{ system_identifier: string }>(client, Q.SYSTEM_IDENTIFIER_SQL, []);
  return r?.system_identifier ?? null;
}

/**
 * Reads one table into a model, in one read-only REPEATABLE READ transaction
 * so every query sees the same catalog. Refuses what it cannot rebuild.
 */
export async function introspect(client: ClientBase, schema: string, table: string): Promise<IntrospectedTable> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query('SET LOCAL search_path = pg_catalog');
    const found = await rows<{ oid: number | null }>(client, 'SELECT to_regclass($1)::oid AS oid', [
      qualified(schema, table),
    ]);
    const oid = found[0]?.oid ?? null;
    if (oid === null) {
      throw new UserError(
        'TABLE_NOT_FOUND',
        `table ${qualified(schema, table)} does not exist in this database; ${await tableSuggestion(client, schema, table)}check --table (names are taken as written, not folded to lower case) and the connection`,
      );
    }
    const [t] = await rows<TableRow>(client, Q.TABLE_SQL, [oid]);
    if (!t)
      throw new UserError(
        'TABLE_NOT_FOUND',
        `table ${qualified(schema, table)} vanished while it was being read; try again`,
      );
    if (t.server_version_num < 140000) {
      throw new UserError(
        'UNSUPPORTED_SERVER',
        `PostgreSQL ${t.server_version} is not supported; shadowpack needs PostgreSQL 14 or newer`,
      );
    }
    if (t.scs !== 'on') {
      throw new UserError(
        'UNSUPPORTED_SERVER',
        'standard_conforming_strings is off; set it to on (the default) for the database or role',
      );
    }
    const kind = tableKindRefusal(t);
    if (kind) throw new UserError('UNSUPPORTED_TABLE', `cannot rebuild ${qualified(schema, table)}: ${kind}`);

    const cat: CatalogRows & Extras = {
      table: t,
      columns: await rows<ColumnRow>(client, Q.COLUMNS_SQL, [oid]),
      indexes: await rows<IndexRow>(client, Q.INDEXES_SQL, [oid]),
      constraints: await rows<ConstraintRow>(client, Q.CONSTRAINTS_SQL, [oid]),
      referencedBy: await rows<ReferencedByRow>(client, Q.REFERENCED_BY_SQL, [oid]),
      triggers: await rows<TriggerRow>(client, Q.TRIGGERS_SQL, [oid, TOOL_SCHEMA]),
      grants: await rows<GrantRow>(client, Q.GRANTS_SQL, [oid]),
      sequences: await rows<OwnedSequenceRow>(client, Q.OWNED_SEQUENCES_SQL, [oid]),
      statistics: await rows<ExtendedStatisticsRow>(client, Q.EXTENDED_STATISTICS_SQL, [oid]),
      identities: await rows<IdentityRow>(client, Q.IDENTITIES_SQL, [oid]),
      policies: await rows<PolicyRow>(client, Q.POLICIES_SQL, [oid]),
      columnGrants: await rows<ColumnGrantRow>(client, Q.COLUMN_GRANTS_SQL, [oid]),
      replicaIndex: (await rows<{ name: string }>(client, Q.REPLICA_INDEX_SQL, [oid]))[0]?.name ?? null,
    };
    const dependents = await readDependents(client, oid, t.schema, t.name, t.server_version_num, TOOL_SCHEMA);
    const refusals = [
      ...objectRefusals(cat),
      ...dependents.refusals,
      ...grantorRefusals(t.owner, cat.grants, cat.columnGrants, cat.identities),
    ];
    if (refusals.length > 0) {
      throw new UserError(
        'UNSUPPORTED_OBJECT',
        `cannot rebuild ${qualified(schema, table)} yet: ${refusals.join('; ')} (see docs/refusals.md)`,
        { refusals },
      );
    }
    const [sig] = await rows<{ fingerprint: string }>(
      client,
      `SELECT ${signatureSql(schema, table, TOOL_SCHEMA)} AS fingerprint`,
      [],
    );
    const model: TableModel = normalise({ ...mapModel(cat, sig!.fingerprint), dependents: dependents.model });
    return {
      model,
      facts: {
        serverVersionNum: t.server_version_num,
        serverVersion: t.server_version,
        relpages: Number(t.relpages),
        reltuples: Math.max(0, Math.round(t.reltuples)),
        totalBytes: Number(t.total_bytes),
        tableBytes: Number(t.table_bytes),
        indexBytes: Number(t.index_bytes),
        database: t.database,
        databaseOid: Number(t.database_oid),
        systemIdentifier: await systemIdentifier(client),
        tableOid: Number(oid),
      },
    };
  } finally {
    await client.query('ROLLBACK');
  }
}
