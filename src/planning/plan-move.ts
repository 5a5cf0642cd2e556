import { readFileSync, readdirSync, mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientBase } from 'pg';
import { compileMove, type MovePlan, type MoveTemplateSet } from '../compile/move/compile-move.js';
import {
  MOVE_DEFAULTS,
  moveRoles,
  moveTablespaces,
  usesOutsideGroup,
  type MoveInput,
  type MoveOptions,
} from '../compile/move/context.js';
import { ident, qualified } from '../model/quote.js';
import { MOVE_STAGES, moveTemplateKey, type MoveSideFacts } from '../compile/move/stages.js';
import { introspect } from '../introspect/introspect.js';
import {
  moveColumnTypes,
  moveTypeAsDefined,
  moveSequences,
  moveServerFacts,
  moveTargetConflicts,
  moveTableFunctions,
  moveTriggerFunctions,
  type MoveSequence,
  type MoveUserType,
} from '../introspect/move-facts.js';
import { systemSchemaRefusal } from '../introspect/refusals.js';
import { UserError } from '../model/errors.js';
import { TOOL_SCHEMA } from '../model/names.js';
import type { TableModel } from '../model/types.js';
import { TOOL_VERSION } from '../version.js';
import { checkOutDir } from './out-dir.js';
import { sumsText } from './plan-dir.js';
import { templatesDir } from './templates.js';

export interface MoveRequest {
  readonly tables: readonly { readonly schema: string; readonly table: string }[];
  /** Add the tables the FK closure needs instead of refusing. */
  readonly withFkClosure?: boolean;
  readonly options?: Partial<MoveOptions>;
  /**
   * diff --plan: the plan the databases give now, to compare with an approved one. A move under way has made its
   * tables on the target already, so that refusal is left out; every other one stands.
   */
  readonly compareOnly?: boolean;
  /** --fdw-auth cert: client certificate and key, paths on the target host. */
  readonly fdwCert?: { readonly sslcert: string; readonly sslkey: string };
}

export function loadMoveTemplates(dir: string = templatesDir()): MoveTemplateSet {
  const stages: Record<string, string> = {};
  for (const r of MOVE_STAGES)
    stages[moveTemplateKey(r)] = readFileSync(join(dir, 'move', `${moveTemplateKey(r)}.sql.hbs`), 'utf8');
  const partials: Record<string, string> = {};
  for (const base of [join(dir, 'partials'), join(dir, 'move', 'partials')]) {
    for (const f of readdirSync(base).sort())
      if (f.endsWith('.hbs')) partials[f.slice(0, -'.hbs'.length)] = readFileSync(join(base, f), 'utf8');
  }
  return {
    stages,
    partials,
    binding: readFileSync(join(dir, 'binding.sql.hbs'), 'utf8'),
    fdwBinding: readFileSync(join(dir, 'move', 'fdw-binding.sql.hbs'), 'utf8'),
    revertBinding: readFileSync(join(dir, 'move', 'revert-binding.sql.hbs'), 'utf8'),
  };
}

function endpoint(client: ClientBase): { host: string | null; port: number | null } {
  const c = client as ClientBase & { host?: unknown; port?: unknown };
  return {
    host: typeof c.host === 'string' && c.host !== '' ? c.host : null,
    port: typeof c.port === 'number' ? c.port : null,
  };
}

const key = (schema: string, name: string): string => `${schema}.${name}`;

/**
 * The group of tables to move, closed under foreign keys in both directions: refused with the
 * missing members named, unless withFkClosure adds them.
 */
async function readGroup(source: ClientBase, request: MoveRequest): Promise<TableModel[]> {
  const models = new Map<string, TableModel>();
  const queue = request.tables.map((t) => ({ schema: t.schema, name: t.table }));
  const missing = new Set<string>();
  while (queue.length > 0) {
    const t = queue.shift()!;
    const k = key(t.schema, t.name);
    if (models.has(k)) continue;
    const system = systemSchemaRefusal(t.schema, TOOL_SCHEMA);
    if (system !== null) throw new UserError('UNSUPPORTED_TABLE', `${k}: ${system}`);
    const { model } = await introspect(source, t.schema, t.name);
    models.set(k, model);
    const neighbours = [
      ...model.constraints.filter((c) => c.kind === 'foreign-key' && c.references !== null).map((c) => c.references!),
      ...model.referencedBy.map((r) => ({ schema: r.tableSchema, name: r.tableName })),
    ];
    for (const n of neighbours) {
      const nk = key(n.schema, n.name);
      if (models.has(nk)) continue;
      if (request.withFkClosure === true || request.tables.some((r) => key(r.schema, r.table) === nk)) queue.push(n);
      else missing.add(nk);
    }
  }
  if (missing.size > 0) {
    const list = [...missing].sort();
    throw new UserError(
      'UNSUPPORTED_TABLE',
      `the group is not closed under foreign keys: ${list.join(', ')} ${list.length === 1 ? 'is' : 'are'} bound to it by a foreign key and must move too; add --table ${list.join(' --table ')}, or --with-fk-closure`,
      { code: 'FK_GROUP_INCOMPLETE', missing: list },
    );
  }
  return [...models.values()];
}

/**
 * A sequence the group draws from that a table outside the group draws from too (a column default): after the
 * cut-over the target's copy and the source's would hand out values apart. Refused unless
 * --split-shared-sequences says that is intended; the message names the sequence and the other tables.
 */
function sharedSequenceRefusal(
  sequences: readonly MoveSequence[],
  tables: readonly TableModel[],
  options: MoveOptions,
): string | null {
  if (options.splitSharedSequences === true) return null;
  const found = new Map<string, Set<string>>();
  for (const s of sequences) {
    const outside = usesOutsideGroup(s, { tables });
    if (outside.length === 0) continue;
    const k = `${s.schema}.${s.name}`;
    found.set(k, new Set([...(found.get(k) ?? []), ...outside]));
  }
  if (found.size === 0) return null;
  const list = [...found].sort(([a], [b]) => (a < b ? -1 : 1));
  const others = [...new Set(list.flatMap(([, o]) => [...o]))].sort();
  return `sequence ${list.map(([k, o]) => `${k} also feeds ${[...o].sort().join(', ')} (a column default)`).join('; sequence ')}, outside the group: after the cut-over that table would keep drawing from the source's copy and the group from the target's; add --table ${others.join(' --table ')} to move ${others.length === 1 ? 'it' : 'them'} too, or --split-shared-sequences to accept two copies`;
}

/** How the target's type of the same name differs from the source's, or null when it has none or the same. */
function typeDifference(source: MoveUserType, target: MoveUserType | 'other' | null): string | null {
  if (target === null) return null;
  if (target === 'other' || target.kind !== source.kind)
    return `not a${source.kind === 'enum' ? 'n' : ''} ${source.kind} there, as on the source`;
  const a = source as unknown as Record<string, unknown>;
  const b = target as unknown as Record<string, unknown>;
  const norm = (v: unknown): string => JSON.stringify(v, (_, x: unknown) => (x === undefined ? null : (x as unknown)));
  const fields = Object.keys(a).filter((k) => k !== 'schema' && k !== 'name' && norm(a[k]) !== norm(b[k]));
  if (fields.length === 0) return null;
  return `a ${source.kind} with other ${fields.join(', ')}: ${fields.map((k) => `${norm(b[k])} there, ${norm(a[k])} on the source`).join('; ')}`;
}

/**
 * Plans a move of a table group from `source` to `target` (two open connections): reads both
 * catalogs, refuses what cannot move, compiles (pure). Writes nothing; writeMovePlan writes the folder.
 */
export async function planMove(
  source: ClientBase,
  target: ClientBase,
  request: MoveRequest,
  env: { readonly templates?: MoveTemplateSet; readonly toolVersion?: string } = {},
): Promise<MovePlan> {
  const input = await gatherMove(source, target, request);
  return compileMove(input, env.templates ?? loadMoveTemplates(), env.toolVersion ?? TOOL_VERSION);
}

/** Whether the server can install postgres_fdw (the contrib package is there). */
async function fdwAvailable(client: ClientBase): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>(
    "SELECT EXISTS (SELECT FROM pg_catalog.pg_available_extensions WHERE name = 'postgres_fdw') AS ok",
  );
  return r.rows[0]!.ok;
}

/** Every catalog fact of both sides a move plan is compiled from, with the refusals; what follows is pure. */
export async function gatherMove(source: ClientBase, target: ClientBase, request: MoveRequest): Promise<MoveInput> {
  const options: MoveOptions = { ...MOVE_DEFAULTS, ...(request.options ?? {}) };
  const src = await moveServerFacts(source);
  const tgt = await moveServerFacts(target);
  if (src.serverVersionNum < 140000 || src.serverVersionNum >= 190000)
    throw new UserError(
      'UNSUPPORTED_SERVER',
      `the source runs PostgreSQL ${src.serverVersion}; moves support sources of PostgreSQL 14 to 18`,
    );
  if (tgt.serverVersionNum < src.serverVersionNum)
    throw new UserError(
      'UNSUPPORTED_SERVER',
      `the target runs PostgreSQL ${tgt.serverVersion}, older than the source's ${src.serverVersion}; moves never downgrade: choose a target of the same or a newer version`,
    );
  if (options.fdwAuth === 'scram-passthrough' && tgt.serverVersionNum < 180000)
    throw new UserError(
      'UNSUPPORTED_SERVER',
      `--fdw-auth scram-passthrough needs a target of PostgreSQL 18 or newer (use_scram_passthrough), the target runs ${tgt.serverVersion}; plan with --fdw-auth password (or cert or pgpass, as a superuser)`,
    );
  if (options.reversible === true && (options.fdwAuth === 'scram-passthrough' || options.fdwAuth === 'cert'))
    throw new UserError(
      'BAD_ARGUMENT',
      `--reversible with --fdw-auth ${options.fdwAuth} is not supported yet: a revert's user mapping on the source logs in to the target the same way, and only password and pgpass are built for it; plan with --fdw-auth password or pgpass`,
    );
  if (options.reversible === true && !(await fdwAvailable(source)))
    throw new UserError(
      'UNSUPPORTED_SERVER',
      'postgres_fdw is not available on the source, which a revert (--reversible) pulls through; install the PostgreSQL contrib package there, or plan without --reversible',
    );
  if (options.fdwAuth === 'cert' && request.fdwCert === undefined)
    throw new UserError('BAD_ARGUMENT', '--fdw-auth cert needs --fdw-sslcert PATH and --fdw-sslkey PATH');
  if (tgt.encoding !== src.encoding)
    throw new UserError(
      'UNSUPPORTED_SERVER',
      `the target database's encoding is ${tgt.encoding}, the source's ${src.encoding}; create the target database WITH ENCODING '${src.encoding}'`,
    );
  if (tgt.inRecovery) throw new UserError('UNSUPPORTED_SERVER', 'the target is a standby; move to a primary');
  if (src.inRecovery) throw new UserError('UNSUPPORTED_SERVER', 'the source is a standby; plan against the primary');
  if (src.systemIdentifier !== null && src.systemIdentifier === tgt.systemIdentifier && src.database === tgt.database)
    throw new UserError(
      'BAD_ARGUMENT',
      "--target-url names the source database itself; give the other cluster's database",
    );
  const tables = await readGroup(source, request);
  // In dependency order: each table's list is, and a type seen again keeps its first place.
  const types: MoveUserType[] = [];
  const typeFunctions = new Set<string>();
  const uncreatable = new Map<string, { display: string; why: string }>();
  const sequences: MoveSequence[] = [];
  const refusals: string[] = [];
  for (const m of tables) {
    const found = await moveColumnTypes(source, m.schema, m.name);
    for (const e of found.types) if (!types.some((x) => x.schema === e.schema && x.name === e.name)) types.push(e);
    for (const f of found.functions) typeFunctions.add(f);
    for (const u of found.uncreatable) uncreatable.set(u.type, u);
    refusals.push(...found.unsupported.map((u) => `${m.schema}.${m.name}: ${u}`));
    sequences.push(...(await moveSequences(source, m.schema, m.name)));
  }
  if (refusals.length > 0) throw new UserError('UNSUPPORTED_OBJECT', `cannot move: ${refusals.join('; ')}`);
  const shared = sharedSequenceRefusal(sequences, tables, options);
  if (shared !== null) throw new UserError('UNSUPPORTED_OBJECT', shared, { code: 'SEQUENCE_SHARED' });
  // One query at a time: a pg client queues concurrent queries today, but pg 9 will refuse them.
  const found: string[] = [];
  for (const m of tables) found.push(...(await moveTriggerFunctions(source, m.schema, m.name, TOOL_SCHEMA)));
  const triggerFunctions = [...new Set(found)].sort();
  const missingOnTarget = async (fs: Iterable<string>): Promise<string[]> => {
    const missing: string[] = [];
    for (const f of fs)
      if (
        (await target.query<{ ok: boolean }>('SELECT to_regprocedure($1) IS NOT NULL AS ok', [f])).rows[0]!.ok !== true
      )
        missing.push(f);
    return missing;
  };
  const missingFunctions = await missingOnTarget(triggerFunctions);
  if (missingFunctions.length > 0)
    throw new UserError(
      'UNSUPPORTED_OBJECT',
      `the group's triggers call ${missingFunctions.join(', ')}, which the target does not have; create ${missingFunctions.length === 1 ? 'it' : 'them'} there first (a move copies tables, not functions), then plan again`,
    );
  const missingTypeFunctions = await missingOnTarget([...typeFunctions].sort());
  if (missingTypeFunctions.length > 0)
    throw new UserError(
      'UNSUPPORTED_OBJECT',
      `the types of the group's columns (domain checks or defaults, range subtype_diff) call ${missingTypeFunctions.join(', ')}, which the target does not have; create ${missingTypeFunctions.length === 1 ? 'it' : 'them'} there first (a move creates the types, not functions), then plan again`,
    );
  const differing: string[] = [];
  for (const e of types) {
    const there = await moveTypeAsDefined(target, qualified(e.schema, e.name));
    const why = typeDifference(e, there);
    if (why !== null) differing.push(`${e.schema}.${e.name} (${why})`);
  }
  if (differing.length > 0)
    throw new UserError(
      'UNSUPPORTED_OBJECT',
      `the target already has ${differing.join(', ')}; a move uses a type the target has as it is, so the columns would differ: make ${differing.length === 1 ? 'it' : 'them'} equal to the source's on the target, or drop ${differing.length === 1 ? 'it' : 'them'} there (the move then creates ${differing.length === 1 ? 'it' : 'them'}), then plan again`,
    );
  const called: string[] = [];
  for (const m of tables) called.push(...(await moveTableFunctions(source, m.schema, m.name)));
  const tableFunctions = [...new Set(called)].sort();
  const missingTableFunctions = await missingOnTarget(tableFunctions);
  if (missingTableFunctions.length > 0)
    throw new UserError(
      'UNSUPPORTED_OBJECT',
      `the group's column defaults, generated columns, checks, indexes, statistics or policies call ${missingTableFunctions.join(', ')}, which the target does not have; create ${missingTableFunctions.length === 1 ? 'it' : 'them'} there first (a move copies tables, not functions), then plan again`,
    );
  const notCreatable: string[] = [];
  for (const [q, u] of [...uncreatable].sort(([a], [b]) => (a < b ? -1 : 1)))
    if ((await target.query<{ ok: boolean }>('SELECT to_regtype($1) IS NOT NULL AS ok', [q])).rows[0]!.ok !== true)
      notCreatable.push(`${u.display} (${u.why})`);
  if (notCreatable.length > 0)
    throw new UserError(
      'UNSUPPORTED_OBJECT',
      `the group's columns use ${notCreatable.join(', ')}, which a move cannot create; create ${notCreatable.length === 1 ? 'it' : 'them'} on the target first with the same definition, then plan again`,
    );
  const schemas = [
    ...new Set([
      ...tables.flatMap((m) => [m.schema, ...m.extendedStatistics.map((st) => st.schema)]),
      ...sequences.map((q) => q.schema),
      ...types.flatMap((e) => (e.kind === 'range' ? [e.schema, e.multirangeSchema] : [e.schema])),
    ]),
  ].sort();
  const conflicts = await moveTargetConflicts(
    target,
    tables.map((m) => ({ schema: m.schema, name: m.name })),
    schemas,
    moveRoles(tables),
  );
  if (conflicts.missingSchemas.length > 0)
    throw new UserError(
      'UNSUPPORTED_SERVER',
      `the target has no schema ${conflicts.missingSchemas.join(', ')}; create it there first (CREATE SCHEMA ${conflicts.missingSchemas.map((x) => ident(x)).join('; CREATE SCHEMA ')};), then plan again`,
    );
  if (conflicts.missingRoles.length > 0)
    throw new UserError(
      'UNSUPPORTED_SERVER',
      `the target has no role ${conflicts.missingRoles.join(', ')} (owner, grantee or policy role of the group); create it there first (CREATE ROLE ${conflicts.missingRoles.map((x) => ident(x)).join('; CREATE ROLE ')}; no password is copied), then plan again`,
    );
  if (conflicts.existingTables.length > 0 && request.compareOnly !== true)
    throw new UserError(
      'UNSUPPORTED_TABLE',
      `the target already has ${conflicts.existingTables.join(', ')}; a move creates its tables itself and adopts none, not even an empty one of the same definition: drop or rename them on the target (an empty one loses nothing; check a non-empty one holds nothing you need), then plan again`,
    );
  const spaces = moveTablespaces(tables);
  const missingSpaces = (
    await target.query<{ s: string }>(
      'SELECT s FROM unnest($1::text[]) AS s WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_tablespace WHERE spcname = s) ORDER BY s',
      [spaces],
    )
  ).rows.map((r) => r.s);
  if (missingSpaces.length > 0)
    throw new UserError(
      'UNSUPPORTED_SERVER',
      `the group's tables or indexes live in tablespace ${missingSpaces.join(', ')}, which the target does not have; create ${missingSpaces.length === 1 ? 'it' : 'them'} there first (CREATE TABLESPACE ${missingSpaces.map((x) => ident(x)).join(" LOCATION '…'; CREATE TABLESPACE ")} LOCATION '…';), then plan again`,
    );
  if (!conflicts.fdwAvailable)
    throw new UserError(
      'UNSUPPORTED_SERVER',
      'postgres_fdw is not available on the target; install the PostgreSQL contrib package there',
    );
  const s = endpoint(source);
  const t = endpoint(target);
  const facts = (f: typeof src, e: { host: string | null; port: number | null }): MoveSideFacts => ({
    host: e.host,
    port: e.port,
    database: f.database,
    databaseOid: f.databaseOid,
    systemIdentifier: f.systemIdentifier,
    serverVersionNum: f.serverVersionNum,
    encoding: f.encoding,
  });
  return {
    tables,
    types,
    sequences,
    triggerFunctions,
    ...(typeFunctions.size > 0 ? { typeFunctions: [...typeFunctions].sort() } : {}),
    ...(tableFunctions.length > 0 ? { tableFunctions } : {}),
    source: facts(src, s),
    target: facts(tgt, t),
    fdwUser: src.user,
    ...(options.reversible === true ? { revertFdwUser: tgt.user } : {}),
    ...(options.fdwAuth === 'cert' && request.fdwCert !== undefined ? { fdwCert: request.fdwCert } : {}),
    options,
  };
}

/** Writes plan.json, both bindings, the stage scripts, README.md and SHA256SUMS. */
export function writeMovePlan(dir: string, plan: MovePlan, force: boolean): void {
  checkOutDir(dir, force);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  for (const [name, text] of plan.files) writeFileSync(join(dir, name), text);
  const manifest = JSON.stringify(plan.manifest, null, 2) + '\n';
  writeFileSync(join(dir, 'plan.json'), manifest);
  writeFileSync(join(dir, 'SHA256SUMS'), sumsText(new Map([...plan.files, ['plan.json', manifest]])));
}
