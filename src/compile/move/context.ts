import { createHash } from 'node:crypto';
import type { MoveSequence, MoveUserType } from '../../model/move-types.js';
import { signatureSql } from '../../model/signature.js';
import { TOOL_SCHEMA } from '../../model/names.js';
import { commentText, ident, literal, qualified } from '../../model/quote.js';
import type { TableModel } from '../../model/types.js';
import { aclSteps, columnAclSteps } from '../privilege-steps.js';
import { columnSettingSteps, reloptionList, statisticsSteps } from '../steps.js';
import type { MoveSideFacts } from './stages.js';
import { MOVE_FDW_SESSION_OPTIONS, moveHashSelect, type MoveHashShape } from './verify-sql.js';

/** What a move plan is made from (all read before compiling; compile itself is pure). */
export interface MoveInput {
  /** The group, any order: sorted here by qualified name. */
  readonly tables: readonly TableModel[];
  /** The user-defined types the columns need, in dependency order (created on the target when missing). */
  readonly types: readonly MoveUserType[];
  readonly sequences: readonly MoveSequence[];
  /** Functions the group's user triggers call (regprocedure text); the move does not copy functions. */
  readonly triggerFunctions?: readonly string[];
  /** Functions the types call (domain CHECKs and defaults, range subtype_diff), regprocedure text; not copied either. */
  readonly typeFunctions?: readonly string[];
  /** Functions the tables' defaults, generated columns, checks, indexes, statistics and policies call; not copied either. */
  readonly tableFunctions?: readonly string[];
  readonly source: MoveSideFacts;
  readonly target: MoveSideFacts;
  /** The source role the target's user mapping logs in as. */
  readonly fdwUser: string;
  /** --reversible: the target role the source's user mapping logs in as for a revert (binding.source.sql). */
  readonly revertFdwUser?: string;
  /** --fdw-auth cert: the client certificate and key, paths on the target host (binding.target.sql). */
  readonly fdwCert?: { readonly sslcert: string; readonly sslkey: string };
  readonly options: MoveOptions;
}

/**
 * How the target's user mapping logs in to the source (docs/cross-cluster-usage.md): scram-passthrough
 * reuses the SCRAM keys of the session running the target stages (target PostgreSQL 18+), cert a client
 * certificate on the target host, pgpass the target server's own ~/.pgpass (both superuser only), password a
 * password read from SHADOWPACK_FDW_PASSWORD at run time and kept in pg_user_mapping until cleanup or abort.
 */
export const FDW_AUTH_MODES = ['scram-passthrough', 'cert', 'pgpass', 'password'] as const;
export type FdwAuth = (typeof FDW_AUTH_MODES)[number];

export interface MoveOptions {
  readonly fdwAuth: FdwAuth;
  /** postgres_fdw fetch_size of the foreign tables. */
  readonly fetchSize: number;
  /** Heap pages per backfill batch. */
  readonly batchPages: number;
  /** Catch-up ends when a round finds at most this many logged keys. */
  readonly catchupTarget: number;
  readonly maxRounds: number;
  /** Added to every synced sequence beyond the highest used value. */
  readonly sequenceMargin: number;
  readonly lockTimeoutMs: number;
  readonly lockAttempts: number;
  /** Rows/s ceiling of the backfill and the catch-up rounds, 0 for none (changeable: shadowpack control). */
  readonly maxRowsPerSecond: number;
  /** The catch-up ends only once `shadowpack control --release-cutover` says so (rounds go on meanwhile). */
  readonly holdCutover: boolean;
  /** How long one catch-up stage waits for that release before it stops, resumable. */
  readonly holdWaitSeconds: number;
  /**
   * --reversible: from the cut-over until 08-cleanup.target.sql the target captures every write to the group
   * (the source's change-log layout and capture trigger) and refuses TRUNCATE, so the move can be taken back
   * after the cut-over. Absent (not false) in plans made without it, so their plan id and files are unchanged.
   */
  readonly reversible?: boolean;
  /**
   * --split-shared-sequences: a sequence the group shares (through a column default) with a table outside the
   * group is created on the target too, so after the cut-over each cluster hands out values from its own copy
   * (hazard SEQUENCE_SHARED). Without it plan refuses such a group. Absent (not false) unless given.
   */
  readonly splitSharedSequences?: boolean;
}

export const MOVE_DEFAULTS: MoveOptions = {
  fdwAuth: 'password',
  fetchSize: 10000,
  batchPages: 1000,
  catchupTarget: 1000,
  maxRounds: 100,
  sequenceMargin: 10000,
  lockTimeoutMs: 1000,
  lockAttempts: 30,
  maxRowsPerSecond: 0,
  holdCutover: false,
  holdWaitSeconds: 600,
};

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

export function moveRunId(tables: readonly { schema: string; name: string }[]): string {
  return sha(
    'move\u0000' +
      tables
        .map((t) => `${t.schema}\u0000${t.name}`)
        .sort()
        .join('\u0001'),
  ).slice(0, 12);
}

export function sortedGroup(tables: readonly TableModel[]): TableModel[] {
  return [...tables].sort((a, b) => (qualified(a.schema, a.name) < qualified(b.schema, b.name) ? -1 : 1));
}

const tool = (name: string): string => qualified(TOOL_SCHEMA, name);
const join = (xs: readonly string[], sep = ', '): string => xs.join(sep);

/** The column clause of the target table: its defaults, identity and generation as on the source. */
function columnDefinition(m: TableModel, c: TableModel['columns'][number]): string {
  const parts = [ident(c.name), c.type];
  if (c.collation !== null) parts.push(`COLLATE ${c.collation}`);
  const id = m.identities.find((i) => i.column === c.name);
  if (c.generated !== null) parts.push(`GENERATED ALWAYS AS (${c.generated}) STORED`);
  else if (c.identity !== '' && id !== undefined) {
    parts.push(
      `GENERATED ${c.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY (SEQUENCE NAME ${qualified(id.schema, id.name)} START ${id.start} INCREMENT ${id.increment} MINVALUE ${id.min} MAXVALUE ${id.max} CACHE ${id.cache}${id.cycle ? ' CYCLE' : ''})`,
    );
  } else if (c.default !== null) parts.push(`DEFAULT ${c.default}`);
  if (c.notNull) parts.push('NOT NULL');
  return parts.join(' ');
}

function stmt(sql: string): string {
  return sql.endsWith(';') ? sql : sql + ';';
}

/** The tables outside the group whose defaults also draw from this sequence. */
export function usesOutsideGroup(s: MoveSequence, input: Pick<MoveInput, 'tables'>): string[] {
  const group = new Set(input.tables.map((m) => `${m.schema}.${m.name}`));
  return s.usedElsewhere.filter((t) => !group.has(t));
}

/** What verify hashes of a table (recorded in plan.json). */
export function moveHashShape(m: TableModel): MoveHashShape {
  return {
    schema: m.schema,
    name: m.name,
    key: m.key.columns,
    columns: m.columns.map((c) => ({ name: c.name, type: c.type })),
  };
}

/**
 * Tablespaces the target must have: the tables' and their indexes' own (the database default is none). A move
 * puts each table and index in the tablespace of the same name; there is no mapping to another name, so the
 * target's catalog describes them as the source's does.
 */
export function moveTablespaces(tables: readonly TableModel[]): string[] {
  const spaces = new Set<string>();
  for (const m of tables) {
    if (m.tablespace !== null) spaces.add(m.tablespace);
    for (const x of m.indexes) if (x.tablespace !== null) spaces.add(x.tablespace);
  }
  return [...spaces].sort();
}

/** Roles the target must have: owners, grantees, policy roles. */
export function moveRoles(tables: readonly TableModel[]): string[] {
  const roles = new Set<string>();
  for (const m of tables) {
    roles.add(m.owner);
    for (const g of m.grants) roles.add(g.grantee);
    for (const g of m.columnGrants) roles.add(g.grantee);
    for (const p of m.policies) for (const r of p.roles) roles.add(r);
    for (const st of m.extendedStatistics) roles.add(st.owner);
  }
  roles.delete('PUBLIC');
  return [...roles].sort();
}

/** The statements that create a type on the target (a domain's checks one by one: NOT VALID needs ALTER DOMAIN). */
function createTypeSql(e: MoveUserType): string[] {
  const q = qualified(e.schema, e.name);
  switch (e.kind) {
    case 'enum':
      return [`CREATE TYPE ${q} AS ENUM (${join(e.labels.map(literal))});`];
    case 'composite':
      return [
        `CREATE TYPE ${q} AS (${join(e.attributes.map((a) => `${ident(a.name)} ${a.type}${a.collation != null ? ` COLLATE ${a.collation}` : ''}`))});`,
      ];
    case 'domain':
      return [
        `CREATE DOMAIN ${q} AS ${e.base}${e.collation !== null ? ` COLLATE ${e.collation}` : ''}${e.default !== null ? ` DEFAULT ${e.default}` : ''}${e.notNull ? ' NOT NULL' : ''};`,
        ...e.constraints
          .filter((c) => c.validated)
          .map((c) => `ALTER DOMAIN ${q} ADD CONSTRAINT ${ident(c.name)} ${c.definition};`),
      ];
    case 'range':
      return [
        `CREATE TYPE ${q} AS RANGE (${join([
          `SUBTYPE = ${e.subtype}`,
          ...(e.subtypeOpclass !== null ? [`SUBTYPE_OPCLASS = ${e.subtypeOpclass}`] : []),
          ...(e.collation !== null ? [`COLLATION = ${e.collation}`] : []),
          ...(e.subtypeDiff !== null ? [`SUBTYPE_DIFF = ${e.subtypeDiff}`] : []),
          `MULTIRANGE_TYPE_NAME = ${qualified(e.multirangeSchema, e.multirangeName)}`,
        ])});`,
      ];
  }
}

/** Everything the move templates render from; every decision is taken here. */
export function moveContext(input: MoveInput, runId: string) {
  const tables = sortedGroup(input.tables);
  const fschema = `shadowpack_src_${runId}`;
  const ft = (name: string): string => qualified(fschema, name);
  const server = `shadowpack_${runId}`;
  const displayAll = tables.map((m) => `${m.schema}.${m.name}`).join(', ');
  const t = tables.map((m, i) => {
    const n = i + 1;
    const q = qualified(m.schema, m.name);
    const display = `${m.schema}.${m.name}`;
    const cols = m.columns.filter((c) => c.generated === null);
    const key = m.key.columns;
    const colType = (name: string): string => m.columns.find((c) => c.name === name)!.type;
    const fks = m.constraints.filter((c) => c.kind === 'foreign-key');
    const built = m.constraints.filter((c) => c.kind !== 'foreign-key');
    // The table's storage parameters, its TOAST table's too (toast.…), values quoted.
    const storageParameters = reloptionList([...m.reloptions, ...m.toastReloptions.map((o) => `toast.${o}`)]);
    const constraintIndexes = new Set(m.indexes.filter((x) => x.constraint !== null).map((x) => x.name));
    // An index in a tablespace of its own is built there (pg_get_indexdef and pg_get_constraintdef leave it out).
    const inSpace = (space: string | null | undefined, sql: string): string[] =>
      space == null ? [sql] : [`SET default_tablespace = ${literal(space)};`, sql, "SET default_tablespace = '';"];
    const build: string[] = [
      ...built
        .filter((c) => c.kind === 'primary-key' || c.kind === 'unique' || c.kind === 'exclusion')
        .flatMap((c) =>
          inSpace(
            m.indexes.find((x) => x.constraint === c.name)?.tablespace,
            `ALTER TABLE ${q} ADD CONSTRAINT ${ident(c.name)} ${c.definition};`,
          ),
        ),
      ...m.indexes
        .filter((x) => !constraintIndexes.has(x.name))
        .flatMap((x) =>
          inSpace(
            x.tablespace,
            `CREATE ${x.unique ? 'UNIQUE ' : ''}INDEX ${ident(x.name)} ON ${q} USING ${x.method} ${x.body};`,
          ),
        ),
      ...built
        .filter((c) => c.kind === 'check')
        .map((c) => `ALTER TABLE ${q} ADD CONSTRAINT ${ident(c.name)} ${c.definition};`),
      ...(m.replicaIdentity.kind === 'full'
        ? [`ALTER TABLE ${q} REPLICA IDENTITY FULL;`]
        : m.replicaIdentity.kind === 'nothing'
          ? [`ALTER TABLE ${q} REPLICA IDENTITY NOTHING;`]
          : m.replicaIdentity.kind === 'index' && m.replicaIdentity.index !== null
            ? [`ALTER TABLE ${q} REPLICA IDENTITY USING INDEX ${ident(m.replicaIdentity.index)};`]
            : []),
      ...(storageParameters !== '' ? [`ALTER TABLE ${q} SET (${storageParameters});`] : []),
      // Extended statistics under their own names, before the ANALYZE that computes them.
      ...statisticsSteps(m, q, (st) => qualified(st.schema, st.name)).map((x) => stmt(x.sql)),
      `ANALYZE ${q};`,
    ];
    const comments: string[] = [
      ...(m.comment !== null ? [`COMMENT ON TABLE ${q} IS ${literal(m.comment)};`] : []),
      ...m.columnComments.map((c) => `COMMENT ON COLUMN ${q}.${ident(c.column)} IS ${literal(c.comment)};`),
      ...m.constraints
        .filter((c) => c.comment !== null)
        .map((c) => `COMMENT ON CONSTRAINT ${ident(c.name)} ON ${q} IS ${literal(c.comment!)};`),
      ...m.indexes
        .filter((x) => x.comment !== null)
        .map((x) => `COMMENT ON INDEX ${qualified(m.schema, x.name)} IS ${literal(x.comment!)};`),
      ...m.extendedStatistics
        .filter((st) => st.comment !== null)
        .map((st) => `COMMENT ON STATISTICS ${qualified(st.schema, st.name)} IS ${literal(st.comment!)};`),
    ];
    const enabled: Record<string, string> = {
      O: '',
      D: 'DISABLE TRIGGER',
      R: 'ENABLE REPLICA TRIGGER',
      A: 'ENABLE ALWAYS TRIGGER',
    };
    const cutover: string[] = [
      ...fks.map(
        (c) => `ALTER TABLE ${q} ADD CONSTRAINT ${ident(c.name)} ${c.definition}${c.validated ? ' NOT VALID' : ''};`,
      ),
      ...m.triggers.flatMap((tr) => [
        stmt(tr.definition),
        ...(enabled[tr.enabled] !== '' ? [`ALTER TABLE ${q} ${enabled[tr.enabled]} ${ident(tr.name)};`] : []),
      ]),
      `ALTER TABLE ${q} OWNER TO ${ident(m.owner)};`,
      ...aclSteps(
        { kind: 'TABLE', object: q, owner: m.owner, defaultAcl: m.defaultAcl, grants: m.grants },
        display,
      ).map((s) => stmt(s.sql)),
      ...columnAclSteps(q, m.columnGrants).map((s) => stmt(s.sql)),
      ...comments,
      ...m.policies.map(
        (p) =>
          `CREATE POLICY ${ident(p.name)} ON ${q} AS ${p.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${p.command} TO ${p.roles.map((r) => (r === 'PUBLIC' ? 'PUBLIC' : ident(r))).join(', ')}${p.using !== null ? ` USING (${p.using})` : ''}${p.withCheck !== null ? ` WITH CHECK (${p.withCheck})` : ''};`,
      ),
      ...(m.rowSecurity ? [`ALTER TABLE ${q} ENABLE ROW LEVEL SECURITY;`] : []),
      ...(m.forceRowSecurity ? [`ALTER TABLE ${q} FORCE ROW LEVEL SECURITY;`] : []),
    ];
    return {
      n,
      qIdent: q,
      display,
      displayText: commentText(display),
      displayLiteral: literal(display),
      fingerprintLiteral: literal(m.fingerprint),
      signatureSql: signatureSql(m.schema, m.name, TOOL_SCHEMA),
      regclassLiteral: literal(q),
      logTableIdent: tool(`mlog_${runId}_${n}`),
      logKeyDefs: join(key.map((k) => `${ident(k)} ${colType(k)} NOT NULL`)),
      logKeyList: join(key.map(ident)),
      keyListOld: join(key.map((k) => `OLD.${ident(k)}`)),
      keyListNew: join(key.map((k) => `NEW.${ident(k)}`)),
      logKeyDefsSql: join(key.map((k) => `${ident(k)} ${colType(k)} NOT NULL`)),
      logKeyListSql: join(key.map(ident)),
      // What the capture-function partial reads (the source's capture at setup; --reversible: the target's at the cut-over).
      // The changed view (what a round reads: each logged key with its row) on the source, and with
      // --reversible on the target too.
      viewSelectSql: join([
        ...key.map((k, j) => `d.${ident(k)} AS k_${j + 1}`),
        ...cols.map((_, j) => `r.c_${j + 1}`),
        '(r.found IS NOT NULL) AS present',
      ]),
      viewJoinSql: join(
        key.map((k) => `s.${ident(k)} = d.${ident(k)}`),
        ' AND ',
      ),
      // --reversible: the table's columns as the target has them at the cut-over (a revert refuses once they changed).
      columnsSigSql: `(SELECT array_agg(a.attname::text || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) FROM pg_catalog.pg_attribute a WHERE a.attrelid = ${literal(q)}::regclass AND a.attnum > 0 AND NOT a.attisdropped)::text`,
      ftChangedColsSql: join(
        [
          ...key.map((k, j) => `k_${j + 1} ${colType(k)}`),
          ...cols.map((c, j) => `c_${j + 1} ${c.type}`),
          'present boolean',
        ],
        ',\n      ',
      ),
      insertColsSql: join(cols.map((c) => ident(c.name))),
      changedColsSql: join(cols.map((_, j) => `c_${j + 1}`)),
      deleteJoinSql: join(
        key.map((k, j) => `t.${ident(k)} = d.k_${j + 1}`),
        ' AND ',
      ),
      revFtChangedIdent: qualified(`shadowpack_tgt_${runId}`, `changed_${n}`),
      revFtLogIdent: qualified(`shadowpack_tgt_${runId}`, `log_${n}`),
      revFtChangedTableLiteral: literal(qualified(`shadowpack_tgt_${runId}`, `changed_${n}`)),
      revFtLogTableLiteral: literal(qualified(`shadowpack_tgt_${runId}`, `log_${n}`)),
      captureSql: {
        keyListOld: join(key.map((k) => `OLD.${ident(k)}`)),
        keyListNew: join(key.map((k) => `NEW.${ident(k)}`)),
      },
      captureFnIdent: tool(`mcapture_${runId}_${n}`),
      changedViewIdent: tool(`mchanged_${runId}_${n}`),
      hashViewIdent: tool(`mhash_${runId}_${n}`),
      hashNameLiteral: literal(`mhash_${runId}_${n}`),
      hashSelectSql: moveHashSelect(moveHashShape(m)),
      ftHashIdent: ft(`hash_${n}`),
      viewSelect: join([
        ...key.map((k, j) => `d.${ident(k)} AS k_${j + 1}`),
        ...cols.map((_, j) => `r.c_${j + 1}`),
        '(r.found IS NOT NULL) AS present',
      ]),
      // The row of one logged key, found through the key's index (setup.source.sql.hbs says why).
      viewRowSql: join([...cols.map((c) => `s.${ident(c.name)}`), 'true']),
      viewRowNamesSql: join([...cols.map((_, j) => `c_${j + 1}`), 'found']),
      viewJoin: join(
        key.map((k) => `s.${ident(k)} = d.${ident(k)}`),
        ' AND ',
      ),
      ftTableIdent: ft(`t_${n}`),
      ftTableCols: join(
        cols.map((c) => `${ident(c.name)} ${c.type}`),
        ',\n  ',
      ),
      ftChangedIdent: ft(`changed_${n}`),
      ftChangedCols: join(
        [
          ...key.map((k, j) => `k_${j + 1} ${colType(k)}`),
          ...cols.map((c, j) => `c_${j + 1} ${c.type}`),
          'present boolean',
        ],
        ',\n  ',
      ),
      ftLogIdent: ft(`log_${n}`),
      schemaLiteral: literal(m.schema),
      nameLiteral: literal(m.name),
      changedNameLiteral: literal(`mchanged_${runId}_${n}`),
      logNameLiteral: literal(`mlog_${runId}_${n}`),
      insertCols: join(cols.map((c) => ident(c.name))),
      changedCols: join(cols.map((_, j) => `c_${j + 1}`)),
      deleteJoin: join(
        key.map((k, j) => `t.${ident(k)} = d.k_${j + 1}`),
        ' AND ',
      ),
      createColumns: join(
        m.columns.map((c) => columnDefinition(m, c)),
        ',\n  ',
      ),
      buildSql: build,
      cutoverSql: cutover,
      validateSql: fks.filter((c) => c.validated).map((c) => `ALTER TABLE ${q} VALIDATE CONSTRAINT ${ident(c.name)};`),
      endPage: `end_page_${n}`,
      filenode: `filenode_${n}`,
      fp: `fingerprint_${n}`,
      ownerLiteral: literal(m.owner),
      reloptions: storageParameters !== '' ? `WITH (${storageParameters})` : '',
      tablespaceSql: m.tablespace !== null ? ` TABLESPACE ${ident(m.tablespace)}` : '',
      // Storage and compression before the first row arrives; statistics targets and planner options too.
      columnSql: columnSettingSteps(m, q).map((x) => x.sql),
    };
  });
  // One entry per sequence; its highest used value is the max over every group column it feeds.
  const seqNames = [...new Set(input.sequences.map((s) => `${s.schema}\u0000${s.name}`))].sort();
  const sequences = seqNames.map((key, i) => {
    const uses = input.sequences.filter((s) => `${s.schema}\u0000${s.name}` === key);
    const s = uses[0]!;
    return {
      n: i + 1,
      qIdent: qualified(s.schema, s.name),
      display: `${s.schema}.${s.name}`,
      displayText: commentText(`${s.schema}.${s.name}`),
      displayLiteral: literal(`${s.schema}.${s.name}`),
      qLiteral: literal(qualified(s.schema, s.name)),
      kind: s.kind,
      // Owned and identity sequences go with their table.
      dropSeparately: s.kind === 'default',
      // Identity sequences come with their column (CREATE TABLE); the others are created before the tables.
      create:
        s.kind === 'identity'
          ? ''
          : `CREATE SEQUENCE ${qualified(s.schema, s.name)} AS ${s.type} INCREMENT ${s.increment} MINVALUE ${s.min} MAXVALUE ${s.max} START ${s.start} CACHE ${s.cache}${s.cycle ? ' CYCLE' : ''};`,
      ownedBy:
        s.kind === 'owned'
          ? `ALTER SEQUENCE ${qualified(s.schema, s.name)} OWNED BY ${qualified(s.tableSchema, s.tableName)}.${ident(s.column)};`
          : '',
      maxUsed: `greatest(${uses.map((u) => `(SELECT max(${ident(u.column)})::numeric FROM ${qualified(u.tableSchema, u.tableName)})`).join(', ')})`,
      max: s.max,
      // A descending sequence (INCREMENT < 0) is set below every used value, by the margin, toward its minimum.
      descending: BigInt(s.increment) < 0n,
      minUsed: `least(${uses.map((u) => `(SELECT min(${ident(u.column)})::numeric FROM ${qualified(u.tableSchema, u.tableName)})`).join(', ')})`,
      min: s.min,
      sourceRead: `SELECT last_value, is_called FROM ${qualified(s.schema, s.name)}`,
      sourceReadSql: `SELECT last_value, is_called FROM ${qualified(s.schema, s.name)}`,
      nSql: String(i + 1),
      maxSql: String(s.max),
      minSql: String(s.min),
      minUsedSql: `least(${uses.map((u) => `(SELECT min(${ident(u.column)})::numeric FROM ${qualified(u.tableSchema, u.tableName)})`).join(', ')})`,
      kindText: commentText(s.kind),
      maxUsedSql: `greatest(${uses.map((u) => `(SELECT max(${ident(u.column)})::numeric FROM ${qualified(u.tableSchema, u.tableName)})`).join(', ')})`,
    };
  });
  const enumsCtx = input.types.flatMap((e) =>
    e.kind === 'enum'
      ? [
          {
            qLiteral: literal(qualified(e.schema, e.name)),
            labelsArray: `ARRAY[${join(e.labels.map(literal))}]::text[]`,
          },
        ]
      : [],
  );
  // What a domain holds that ALTER DOMAIN changes (NOT NULL, default, checks with NOT VALID), as the plan read it: a
  // domain changed between the plan and setup would be created on the target as planned, so setup and every round
  // compare the source's with it (after setup, types_fp covers the rest). Same text as the introspection's, read
  // with search_path = pg_catalog as every stage sets it.
  const domainsCtx = input.types.flatMap((e) =>
    e.kind === 'domain'
      ? [
          {
            displayLiteral: literal(`${e.schema}.${e.name}`),
            defSql: `SELECT pg_catalog.format('%s|%s|%s', CASE WHEN t.typnotnull THEN 'NOT NULL' END, pg_catalog.pg_get_expr(t.typdefaultbin, 0),
            (SELECT pg_catalog.string_agg(n.conname::pg_catalog.text || ' ' || pg_catalog.pg_get_constraintdef(n.oid), E'\\n' ORDER BY n.conname)
               FROM pg_catalog.pg_constraint n WHERE n.contypid = t.oid AND n.contype = 'c'))
       FROM pg_catalog.pg_type t WHERE t.oid = ${literal(qualified(e.schema, e.name))}::pg_catalog.regtype`,
            defLiteral: literal(
              `${e.notNull ? 'NOT NULL' : ''}|${e.default ?? ''}|${e.constraints.map((c) => `${c.name} ${c.definition}`).join('\n')}`,
            ),
          },
        ]
      : [],
  );
  // NOT VALID domain checks: rows on the source may break them, so the cut-over adds them after the last round.
  const notValidCtx = input.types.flatMap((e) => {
    if (e.kind !== 'domain') return [];
    const sql = e.constraints
      .filter((c) => !c.validated)
      .map((c) => `ALTER DOMAIN ${qualified(e.schema, e.name)} ADD CONSTRAINT ${ident(c.name)} ${c.definition};`);
    return sql.length > 0 ? [{ qLiteral: literal(qualified(e.schema, e.name)), sql }] : [];
  });
  const typesCtx = input.types.map((e) => ({
    qLiteral: literal(qualified(e.schema, e.name)),
    displayLiteral: literal(`${e.schema}.${e.name}`),
    createSql: createTypeSql(e),
    ...(e.kind === 'enum' ? { labelsArray: `ARRAY[${join(e.labels.map(literal))}]::text[]` } : {}),
  }));
  // Every type the columns need (nested ones too) as the source has them: name and schema (a type renamed
  // there keeps its planned name here), a composite's attributes, a domain's base, NOT NULL, collation, default
  // and constraints (with their names and whether they are validated). Recorded by setup, compared by every
  // round, the backfill's batches and the fence: the target's copies were made from the plan, so a domain given a
  // check, a default or NOT NULL there would be different here after the cut-over, and one that lost a check or
  // NOT NULL would let rows through that the copy here rejects. Oids, not type names (format_type's text depends
  // on search_path); the expressions are deparsed with search_path = pg_catalog, as every stage and
  // postgres_fdw's remote sessions set it. Enum labels are compared with the plan's (ddl_ok).
  const typesSignatureSql =
    input.types.length === 0
      ? ''
      : `SELECT pg_catalog.string_agg(pg_catalog.format('%s %s %s|%s|%s %s %s %s|%s|%s', t.oid, t.typnamespace, t.typname,
            (SELECT pg_catalog.string_agg(a.attname::pg_catalog.text || ' ' || a.atttypid::pg_catalog.text || ' ' || a.atttypmod::pg_catalog.text, ', ' ORDER BY a.attnum)
               FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
            t.typbasetype, t.typtypmod, t.typnotnull, t.typcollation, pg_catalog.pg_get_expr(t.typdefaultbin, 0),
            (SELECT pg_catalog.string_agg(pg_catalog.format('%s %s %s', n.conname, n.convalidated, pg_catalog.pg_get_constraintdef(n.oid)), ', ' ORDER BY n.conname)
               FROM pg_catalog.pg_constraint n WHERE n.contypid = t.oid)), E'\\n' ORDER BY t.oid)
       FROM pg_catalog.pg_type t WHERE t.oid IN (${join(input.types.map((c) => `${literal(qualified(c.schema, c.name))}::pg_catalog.regtype`))})`;
  return {
    runId,
    runLiteral: literal(runId),
    hasTypes: input.types.length > 0,
    typesSignatureSql,
    groupText: commentText(displayAll),
    groupLiteral: literal(displayAll),
    targetText: commentText(
      `${input.target.host ?? 'local socket'}:${input.target.port ?? 5432}/${input.target.database}`,
    ),
    targetLiteral: literal(
      `${input.target.host ?? 'local socket'}:${input.target.port ?? 5432}/${input.target.database}`,
    ),
    sourceLiteral: literal(
      `${input.source.host ?? 'local socket'}:${input.source.port ?? 5432}/${input.source.database}`,
    ),
    // --reversible: what the source pulls a revert through (created by 91-revert.source.sql, dropped by cleanup).
    revServerIdent: ident(`shadowpack_rev_${runId}`),
    revServerLiteral: literal(`shadowpack_rev_${runId}`),
    revFschemaIdent: ident(`shadowpack_tgt_${runId}`),
    revFtStateIdent: qualified(`shadowpack_tgt_${runId}`, 'move_state'),
    revFtSnapIdent: qualified(`shadowpack_tgt_${runId}`, 'snap'),
    revFtSeqIdent: qualified(`shadowpack_tgt_${runId}`, 'seq'),
    // For the catalog checks that let 91-revert.source.sql run again without re-creating (or naming) them.
    revFschemaLiteral: literal(ident(`shadowpack_tgt_${runId}`)),
    revFtStateTableLiteral: literal(qualified(`shadowpack_tgt_${runId}`, 'move_state')),
    revFtSnapTableLiteral: literal(qualified(`shadowpack_tgt_${runId}`, 'snap')),
    revFtSeqTableLiteral: literal(qualified(`shadowpack_tgt_${runId}`, 'seq')),
    revRoundFnIdent: tool(`mrevround_${runId}`),
    revPruneFnIdent: tool(`mrevprune_${runId}`),
    revSeqSyncFnIdent: tool(`mrevseq_${runId}`),
    revCatchupProcIdent: tool(`mrevcatchup_${runId}`),
    toolSchemaIdent: ident(TOOL_SCHEMA),
    toolSchemaLiteral: literal(TOOL_SCHEMA),
    stateIdent: tool(`move_${runId}`),
    stateNameLiteral: literal(`move_${runId}`),
    stateTableLiteral: literal(tool(`move_${runId}`)),
    snapNameLiteral: literal(`msnap_${runId}`),
    seqNameLiteral: literal(`mseq_${runId}`),
    schemasLiteral: [
      ...new Set([
        ...tables.flatMap((m) => [m.schema, ...m.extendedStatistics.map((st) => st.schema)]),
        ...input.sequences.map((s) => s.schema),
        ...input.types.flatMap((e) => (e.kind === 'range' ? [e.schema, e.multirangeSchema] : [e.schema])),
      ]),
    ]
      .sort()
      .map(literal),
    rolesLiteral: moveRoles(tables).map(literal),
    tablespacesLiteral: moveTablespaces(tables).map(literal),
    backfillStateIdent: tool(`move_${runId}_backfill`),
    controlIdent: tool(`move_${runId}_control`),
    controlText: commentText(`${TOOL_SCHEMA}.move_${runId}_control`),
    throttleProcIdent: tool(`mthrottle_${runId}`),
    snapViewIdent: tool(`msnap_${runId}`),
    seqViewIdent: tool(`mseq_${runId}`),
    fenceFnIdent: tool(`mfence_${runId}`),
    fenceOkFnIdent: tool(`mfenceok_${runId}`),
    truncFnIdent: tool(`mtrunc_${runId}`),
    denyFnIdent: tool(`mdeny_${runId}`),
    roundFnIdent: tool(`mround_${runId}`),
    pruneFnIdent: tool(`mprune_${runId}`),
    seqSyncFnIdent: tool(`mseqsync_${runId}`),
    backfillProcIdent: tool(`mbackfill_${runId}`),
    catchupProcIdent: tool(`mcatchup_${runId}`),
    captureTriggerIdent: ident(`shadowpack_mcapture_${runId}`),
    truncTriggerIdent: ident(`shadowpack_mtrunc_${runId}`),
    captureTriggerLiteral: literal(`shadowpack_mcapture_${runId}`),
    truncTriggerLiteral: literal(`shadowpack_mtrunc_${runId}`),
    // A capture and a TRUNCATE guard trigger per table.
    toolTriggerCountSql: String(tables.length * 2),
    fenceTriggerIdent: ident(`shadowpack_mfence_${runId}`),
    fenceTriggerLiteral: literal(`shadowpack_mfence_${runId}`),
    // Its row-level twin: a logical replication apply worker fires row triggers only, never statement triggers.
    fenceRowTriggerIdent: ident(`shadowpack_mfencerow_${runId}`),
    fenceRowTriggerLiteral: literal(`shadowpack_mfencerow_${runId}`),
    // Two fence triggers per table once a side is fenced (the source by 06, the target by 92): statement and row.
    fenceTriggerCountSql: String(tables.length * 2),
    denyTriggerIdent: ident(`shadowpack_mdeny_${runId}`),
    denyRowTriggerIdent: ident(`shadowpack_mdenyrow_${runId}`),
    denyTriggerLiteral: literal(`shadowpack_mdeny_${runId}`),
    denyRowTriggerLiteral: literal(`shadowpack_mdenyrow_${runId}`),
    // The target's guard until the cut-over: a statement and a row trigger per table.
    denyTriggerCountSql: String(tables.length * 2),
    serverIdent: ident(server),
    serverLiteral: literal(server),
    fschemaIdent: ident(fschema),
    fschemaLiteral: literal(fschema),
    ftSnapIdent: ft('snap'),
    ftSeqIdent: ft('seq'),
    ftStateIdent: ft('move_state'),
    fdwUserLiteral: literal(input.fdwUser),
    sourceVersion: input.source.serverVersionNum,
    sourceEncodingLiteral: literal(input.source.encoding),
    appNameLiteral: literal(`shadowpack:${runId}`),
    fdwSessionOptionsLiteral: literal(MOVE_FDW_SESSION_OPTIONS),
    auth: {
      [input.options.fdwAuth === 'scram-passthrough' ? 'scram' : input.options.fdwAuth]: true,
      modeLiteral: literal(input.options.fdwAuth),
    },
    options: input.options,
    tables: t,
    sequences,
    hasSequences: sequences.length > 0,
    triggerFunctions: (input.triggerFunctions ?? []).map((f) => ({ signatureLiteral: literal(f) })),
    typeFunctions: (input.typeFunctions ?? []).map((f) => ({ signatureLiteral: literal(f) })),
    tableFunctions: (input.tableFunctions ?? []).map((f) => ({ signatureLiteral: literal(f) })),
    enums: enumsCtx,
    domains: domainsCtx,
    types: typesCtx,
    notValidDomainChecks: notValidCtx,
  };
}

export type MoveContext = ReturnType<typeof moveContext>;
