import { UserError } from '../model/errors.js';
import { qualified } from '../model/quote.js';
import type { ConstraintKind, IndexModel, RowKeyModel, TableModel } from '../model/types.js';
import type { CatalogRows } from './refusals.js';
import type { ColumnGrantRow, GrantRow, IndexRow, OwnedSequenceRow, ExtendedStatisticsRow, PolicyRow } from './rows.js';

/** Catalog rows beyond those the refusal checks need. */
export interface Extras {
  grants: GrantRow[];
  sequences: OwnedSequenceRow[];
  statistics: ExtendedStatisticsRow[];
  policies: PolicyRow[];
  columnGrants: ColumnGrantRow[];
  replicaIndex: string | null;
}

/** stxkind codes, in the order PostgreSQL lists the kinds. */
const STATISTICS_KINDS: readonly { readonly code: string; readonly kind: 'ndistinct' | 'dependencies' | 'mcv' }[] = [
  { code: 'd', kind: 'ndistinct' },
  { code: 'f', kind: 'dependencies' },
  { code: 'm', kind: 'mcv' },
];

const STORAGE: Readonly<Record<string, string>> = { p: 'PLAIN', e: 'EXTERNAL', m: 'MAIN', x: 'EXTENDED' };
const COMPRESSION: Readonly<Record<string, string>> = { p: 'pglz', l: 'lz4' };
const POLICY_COMMAND: Readonly<Record<string, string>> = {
  r: 'SELECT',
  a: 'INSERT',
  w: 'UPDATE',
  d: 'DELETE',
  '*': 'ALL',
};
const REPLICA: Readonly<Record<string, 'default' | 'nothing' | 'full' | 'index'>> = {
  d: 'default',
  n: 'nothing',
  f: 'full',
  i: 'index',
};

function triggerEnabled(e: string): 'O' | 'D' | 'R' | 'A' {
  if (e === 'O' || e === 'D' || e === 'R' || e === 'A') return e;
  throw new Error(`unknown tgenabled ${e}`);
}

function constraintKind(type: string, name: string): ConstraintKind {
  switch (type) {
    case 'p':
      return 'primary-key';
    case 'u':
      return 'unique';
    case 'c':
      return 'check';
    case 'x':
      return 'exclusion';
    case 'f':
      return 'foreign-key';
    default:
      throw new UserError(
        'UNSUPPORTED_OBJECT',
        `constraint "${name}" has a kind (${type}) shadowpack cannot carry yet`,
      );
  }
}

function indexBody(row: IndexRow): string {
  if (!row.definition.startsWith(row.prefix)) {
    throw new Error(`unexpected index definition for ${row.name}: ${row.definition}`);
  }
  return row.definition.slice(row.prefix.length);
}

/**
 * The row key: the primary key, else the narrowest total, plain, immediate
 * unique index over NOT NULL columns (ties broken by name, for determinism).
 */
function chooseKey(indexes: IndexRow[], table: string): RowKeyModel {
  const pk = indexes.find((i) => i.is_primary);
  if (pk && pk.key_columns) return { source: 'primary-key', indexName: pk.name, columns: pk.key_columns };
  const candidates = indexes
    .filter(
      (i) =>
        i.is_unique && i.is_valid && i.is_total && i.is_plain && i.is_immediate && i.keys_not_null && i.key_columns,
    )
    .sort((a, b) => a.key_columns!.length - b.key_columns!.length || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const best = candidates[0];
  if (!best) {
    throw new UserError(
      'NO_USABLE_KEY',
      `cannot rebuild ${table}: it has no primary key and no unique, non-partial, non-deferrable index over NOT NULL columns; add a primary key (ALTER TABLE … ADD PRIMARY KEY) first`,
    );
  }
  return { source: 'unique-index', indexName: best.name, columns: best.key_columns! };
}

/** The model but its dependents, which dependents.ts reads. */
export function mapModel(cat: CatalogRows & Extras, fingerprint: string): Omit<TableModel, 'dependents'> {
  const t = cat.table;
  const tableName = qualified(t.schema, t.name);
  const indexes: IndexModel[] = cat.indexes.map((i) => ({
    name: i.name,
    body: indexBody(i),
    method: i.method,
    unique: i.is_unique,
    constraint: i.constraint_name,
    clustered: i.is_clustered,
    comment: i.comment,
    tablespace: i.tablespace,
    reloptions: i.reloptions,
  }));
  return {
    schema: t.schema,
    name: t.name,
    owner: t.owner,
    comment: t.comment,
    reloptions: t.reloptions,
    toastReloptions: t.toast_reloptions,
    tablespace: t.tablespace,
    columnOptions: cat.columns.filter((c) => c.options.length > 0).map((c) => ({ column: c.name, options: c.options })),
    columns: cat.columns.map((c) => ({
      name: c.name,
      type: c.type,
      collation: c.collation,
      notNull: c.not_null,
      notNullName: cat.constraints.find((k) => k.type === 'n' && k.not_null_column === c.name)?.name ?? null,
      default: c.generated === 's' ? null : c.default_expr,
      identity: c.identity === 'a' || c.identity === 'd' ? c.identity : '',
      generated: c.generated === 's' ? c.default_expr : null,
      storage: c.custom_storage ? (STORAGE[c.storage] ?? null) : null,
      statistics: c.stattarget !== null && c.stattarget >= 0 ? c.stattarget : null,
      compression: COMPRESSION[c.compression] ?? null,
    })),
    key: chooseKey(cat.indexes, tableName),
    indexes,
    constraints: cat.constraints
      .filter((c) => c.type !== 'n')
      .map((c) => ({
        name: c.name,
        kind: constraintKind(c.type, c.name),
        definition: c.definition,
        validated: c.validated,
        references:
          c.type === 'f' && c.ref_schema !== null && c.ref_table !== null
            ? { schema: c.ref_schema, name: c.ref_table }
            : null,
        comment: c.comment,
      })),
    referencedBy: cat.referencedBy.map((r) => ({
      name: r.name,
      tableSchema: r.schema,
      tableName: r.table_name,
      definition: r.definition,
      validated: r.validated,
      comment: r.comment,
    })),
    ownedSequences: cat.sequences.map((s) => ({ schema: s.schema, name: s.name, column: s.column_name })),
    extendedStatistics: cat.statistics.map((s) => ({
      schema: s.schema,
      name: s.name,
      owner: s.owner,
      // 'e' (expressions) is implied by the columns; a statistic on one expression takes no kinds at all.
      kinds: STATISTICS_KINDS.filter((k) => s.kinds.includes(k.code)).map((k) => k.kind),
      columns: s.columns,
      target: s.target,
      comment: s.comment,
    })),
    identities: cat.identities.map((q) => ({
      column: q.column_name,
      schema: q.schema,
      name: q.name,
      type: q.type,
      start: q.start,
      increment: q.increment,
      min: q.min,
      max: q.max,
      cache: q.cache,
      cycle: q.cycle,
      comment: q.comment,
      defaultAcl: q.default_acl,
      grants: q.grants.map((g) => ({ grantee: g.grantee, privilege: g.privilege, grantable: g.grantable })),
    })),
    defaultAcl: t.default_acl,
    grants: cat.grants.map((g) => ({ grantee: g.grantee, privilege: g.privilege, grantable: g.grantable })),
    columnComments: cat.columns.filter((c) => c.comment !== null).map((c) => ({ column: c.name, comment: c.comment! })),
    columnGrants: cat.columnGrants.map((g) => ({
      column: g.column_name,
      grantee: g.grantee,
      privilege: g.privilege,
      grantable: g.grantable,
    })),
    triggers: cat.triggers
      .filter((tr) => !tr.is_tool)
      .map((tr) => ({ name: tr.name, definition: tr.definition, enabled: triggerEnabled(tr.enabled) })),
    replicaIdentity: { kind: REPLICA[t.replident] ?? 'default', index: t.replident === 'i' ? cat.replicaIndex : null },
    rowSecurity: t.rls,
    forceRowSecurity: t.rls_forced,
    policies: cat.policies.map((p) => ({
      name: p.name,
      permissive: p.permissive,
      command: POLICY_COMMAND[p.cmd] ?? 'ALL',
      roles: p.roles,
      using: p.using_expr,
      withCheck: p.check_expr,
    })),
    fingerprint,
  };
}
