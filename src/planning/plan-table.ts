import type { ClientBase } from 'pg';
import { compile, type Plan, type PlanManifest } from '../compile/compile.js';
import { withOptionDefaults } from '../compile/options.js';
import type { PlanProvenance } from '../compile/provenance.js';
import type { TemplateSet } from '../compile/render.js';
import { NO_TRANSFORM } from '../compile/transform/spec.js';
import { foreignKeyColumns } from '../introspect/foreign-key-columns.js';
import { systemSchemaRefusal } from '../introspect/refusals.js';
import { TOOL_SCHEMA } from '../model/names.js';
import { takenPartitionNames } from '../introspect/partition-range.js';
import { UserError } from '../model/errors.js';
import type { TableModel } from '../model/types.js';
import { checkData } from '../run/check-data.js';
import { readState, type RunState } from '../run/state.js';
import { TOOL_VERSION } from '../version.js';
import { gatherTable, type PlanRequest } from './gather.js';
import { writePlanDir } from './plan-dir.js';
import { loadTemplates } from './templates.js';

/** A plan for one table, not yet written, with what planning learned on the way. */
export interface TablePlan {
  readonly plan: Plan;
  /** --check-data was asked for and every row fits. */
  readonly dataChecked: boolean;
  /** A run on this table already in progress (it belongs to the plan that started it), if readable. */
  readonly running: RunState | null;
  /** --with-referencing: one plan per referencing table, converting its foreign key columns to bigint. */
  readonly referencing: readonly ReferencingTablePlan[];
}

export interface ReferencingTablePlan {
  readonly schema: string;
  readonly table: string;
  readonly columns: readonly string[];
  readonly plan: TablePlan;
}

/** What compiling needs besides the request; tests and the golden files pass their own. */
export interface PlanEnvironment {
  readonly templates?: TemplateSet;
  readonly toolVersion?: string;
  /** The `shadowpack plan …` command line (no password), for the approver's header. */
  readonly command?: string;
}

/**
 * Who plans, when, and through which host: for the approver's header. Read here, not in compile
 * (no clock there); kept out of the plan hash (see PlanProvenance).
 */
async function provenanceOf(client: ClientBase, request: PlanRequest, env: PlanEnvironment): Promise<PlanProvenance> {
  const role = (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
  // node-postgres keeps the host and port it connected to on the client.
  const c = client as ClientBase & { host?: unknown; port?: unknown };
  return {
    plannedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    role,
    runAs: request.runAs ?? null,
    host: typeof c.host === 'string' && c.host !== '' ? c.host : null,
    port: typeof c.port === 'number' ? c.port : null,
    command: env.command ?? null,
  };
}

/**
 * Plans one table: reads every catalog fact once (gatherTable), compiles (pure), then checks
 * the compiled plan against the database (partition names free, rows fitting). Writes nothing;
 * writeTablePlan writes the folder. The one planning path of plan, diff --plan, demo and batches.
 */
export async function planTable(
  client: ClientBase,
  request: PlanRequest,
  env: PlanEnvironment = {},
): Promise<TablePlan> {
  const { schema, table } = request;
  const system = systemSchemaRefusal(schema, TOOL_SCHEMA);
  if (system !== null) throw new UserError('UNSUPPORTED_TABLE', `${schema}.${table}: ${system}`);
  const templates = env.templates ?? loadTemplates();
  const toolVersion = env.toolVersion ?? TOOL_VERSION;
  const g = await gatherTable(client, request);
  const provenance = request.compareOnly ? undefined : await provenanceOf(client, request, env);
  const plan = compile({
    model: g.model,
    facts: g.facts,
    options: request.options,
    templates,
    toolVersion,
    transform: g.transform,
    ...(provenance !== undefined ? { provenance } : {}),
  });
  if (request.compareOnly) return { plan, dataChecked: false, running: null, referencing: [] };
  const partitions = plan.manifest.transform.partitions ?? [];
  if (partitions.length > 0) {
    const taken = await takenPartitionNames(
      client,
      schema,
      partitions.map((p) => p.name),
    );
    if (taken.length > 0)
      throw new UserError(
        'UNSUPPORTED_TABLE',
        `--partition-by: ${schema} already has ${taken.join(', ')}, a name the new partitions need; rename or drop it, then plan again (no plan was written)`,
      );
  }
  if (request.checkData) {
    const bad = await checkData(client, g.model, g.transform, request.options);
    if (bad.length > 0) {
      const list = bad.map((b) => `key ${b.key}: ${b.error}`).join('; ');
      throw new UserError(
        'DATA_DOES_NOT_FIT',
        `${bad.length}${bad.length >= 10 ? ' or more' : ''} row(s) of ${schema}.${table} do not fit the new shape (${list}); fix them or the --alter, then plan again (no plan was written)`,
      );
    }
  }
  // Best effort: a planning role (with --run-as) may not read the tool's schema; the stages check anyway.
  const running = await readState(client, plan.manifest).catch(() => null);
  const referencing = g.transform.withReferencing
    ? await planReferencing(client, g.model, request, {
        templates,
        toolVersion,
        ...(env.command !== undefined ? { command: env.command } : {}),
      })
    : [];
  return { plan, dataChecked: request.checkData === true, running, referencing };
}

/**
 * --with-referencing: one plan per table whose foreign keys point at the widened key, converting
 * those key columns to bigint, through the same path (and checks) as any plan. Columns already
 * bigint need nothing.
 */
async function planReferencing(
  client: ClientBase,
  parent: TableModel,
  request: PlanRequest,
  env: PlanEnvironment,
): Promise<ReferencingTablePlan[]> {
  const byTable = new Map<string, { schema: string; table: string; columns: Set<string> }>();
  for (const fk of parent.referencedBy) {
    const key = JSON.stringify([fk.tableSchema, fk.tableName]);
    const entry = byTable.get(key) ?? { schema: fk.tableSchema, table: fk.tableName, columns: new Set<string>() };
    for (const c of await foreignKeyColumns(client, fk.tableSchema, fk.tableName, fk.name)) {
      if (c.type === 'integer' || c.type === 'smallint') entry.columns.add(c.name);
    }
    byTable.set(key, entry);
  }
  const planned: ReferencingTablePlan[] = [];
  for (const { schema, table, columns } of [...byTable.values()].sort((a, b) =>
    a.schema + '.' + a.table < b.schema + '.' + b.table ? -1 : 1,
  )) {
    if (columns.size === 0) continue;
    const bigintColumns = [...columns].sort();
    const child = await planTable(
      client,
      {
        schema,
        table,
        options: request.options,
        transform: { ...NO_TRANSFORM, bigintColumns },
        ...(request.runAs !== undefined ? { runAs: request.runAs } : {}),
      },
      env,
    );
    planned.push({ schema, table, columns: bigintColumns, plan: child });
  }
  return planned;
}

/** Where --with-referencing writes a referencing table's plan: next to the main one. */
export function referencingDir(out: string, schema: string, table: string): string {
  return `${out}-${schema}.${table}`;
}

/** Writes the plan folder, and one folder per referencing plan; returns those folders. */
export function writeTablePlan(
  out: string,
  planned: TablePlan,
  force: boolean,
): { readonly table: string; readonly dir: string; readonly columns: readonly string[] }[] {
  writePlanDir(out, planned.plan, force);
  return planned.referencing.map((r) => {
    const dir = referencingDir(out, r.schema, r.table);
    writePlanDir(dir, r.plan.plan, force);
    return { table: `${r.schema}.${r.table}`, dir, columns: r.columns };
  });
}

/**
 * The plan the live database gives now for what an approved plan asked (`diff --plan`): the same
 * table, options and transform, compiled to compare, never to run.
 */
export async function planNow(client: ClientBase, approved: PlanManifest): Promise<Plan> {
  return (
    await planTable(client, {
      schema: approved.table.schema,
      table: approved.table.name,
      options: withOptionDefaults(approved.options),
      transform: approved.transform.spec,
      compareOnly: true,
    })
  ).plan;
}
