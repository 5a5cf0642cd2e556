import { jsonAnswer } from '../machine-output.js';
import { resolveOptions, type PlanOptions } from '../../compile/options.js';
import { resolveTransform, type TransformArgs } from '../../compile/transform/spec.js';
import type pg from 'pg';
import { parseTableName } from '../../introspect/introspect.js';
import { withSchemaSuggestion } from '../../introspect/table-suggestions.js';
import { systemSchemaRefusal } from '../../introspect/refusals.js';
import { TOOL_SCHEMA } from '../../model/names.js';
import { UserError } from '../../model/errors.js';
import { planTable, writeTablePlan, type TablePlan } from '../../planning/plan-table.js';
import { connectClient } from '../../run/connect.js';
import { checkOutDir } from '../../planning/out-dir.js';
import { connectionConfig } from '../connection.js';

export interface PlanArgs {
  readonly table: string;
  readonly out: string;
  readonly url?: string;
  readonly force?: boolean;
  readonly json?: boolean;
  /** The role that will run the plan, when it is not the one planning. */
  readonly runAs?: string;
  readonly options: Partial<Record<keyof PlanOptions, unknown>>;
  readonly transform?: TransformArgs;
  /** --alter texts, in order (--alter-file lines already read). */
  readonly alter?: readonly string[];
  /** Look for rows that do not fit the target before writing the plan. */
  readonly checkData?: boolean;
  /** The command line as typed (password removed), for the approver's header. */
  readonly command?: string;
}

/** A run in progress belongs to the plan that started it: this plan will refuse to continue it. */
export function runningWarning(planned: TablePlan): string | null {
  const running = planned.running;
  if (running === null) return null;
  const { table, planId } = planned.plan.manifest;
  return `shadowpack: warning: a run on ${table.schema}.${table.name} is in progress (stage "${running.stage}", plan ${running.planId ?? '(not recorded)'}); this plan (${planId}) cannot run until that run is finished or aborted with its own plan`;
}

/** --table as schema.table; a bare name is refused with the schemas that hold such a table (finding 34). */
async function parseWithSuggestion(input: string, url: string | undefined): Promise<{ schema: string; table: string }> {
  try {
    return parseTableName(input);
  } catch (e) {
    const opened: pg.Client[] = [];
    const better = await withSchemaSuggestion(e, async () => {
      const c = await connectClient(connectionConfig(url));
      opened.push(c);
      return c;
    });
    for (const c of opened) await c.end().catch(() => undefined);
    throw better;
  }
}

export async function planCommand(
  args: PlanArgs,
  print: (line: string) => void,
  warn: (line: string) => void = () => undefined,
): Promise<void> {
  const { schema, table } = await parseWithSuggestion(args.table, args.url);
  const system = systemSchemaRefusal(schema, TOOL_SCHEMA);
  if (system !== null) throw new UserError('UNSUPPORTED_TABLE', `${schema}.${table}: ${system}`);
  const options = resolveOptions(args.options);
  const transform = resolveTransform(args.transform ?? {});
  // Before connecting: a bad --out is said in one line, with nothing read or written.
  checkOutDir(args.out, args.force ?? false);
  const client = await connectClient(connectionConfig(args.url));
  let planned: TablePlan;
  try {
    planned = await planTable(
      client,
      {
        schema,
        table,
        options,
        transform,
        alter: args.alter ?? [],
        ...(args.runAs !== undefined ? { runAs: args.runAs } : {}),
        checkData: args.checkData ?? false,
      },
      args.command !== undefined ? { command: args.command } : {},
    );
  } finally {
    await client.end().catch(() => undefined);
  }
  if (planned.dataChecked) print(`check-data: every row of ${schema}.${table} fits the new shape`);
  const children = writeTablePlan(args.out, planned, args.force ?? false);
  for (const p of [planned, ...planned.referencing.map((r) => r.plan)]) {
    const w = runningWarning(p);
    if (w !== null) warn(w);
  }
  const plan = planned.plan;
  if (args.json) {
    print(
      jsonAnswer({
        dir: args.out,
        planHash: plan.manifest.planHash,
        fingerprint: plan.manifest.fingerprint,
        stages: plan.manifest.stages.map((s) => ({ name: s.name, file: s.file, sha256: s.sha256 })),
        binding: plan.manifest.binding,
        referencing: children,
      }),
    );
  } else {
    print(`plan for ${schema}.${table} written to ${args.out} (plan hash ${plan.manifest.planHash})`);
    const e = plan.manifest.environment;
    print(
      `bound to database ${e.database} (${e.systemIdentifier !== null ? `cluster ${e.systemIdentifier}` : `OID ${e.databaseOid}`}) by ${args.out}/${plan.manifest.binding.file}`,
    );
    print(
      `review ${args.out}/README.md (or shadowpack show --plan ${args.out}), then run: shadowpack run --plan ${args.out} --expect-hash ${plan.manifest.planHash}`,
    );
    for (const c of children)
      print(`plan for ${c.table} (${c.columns.join(', ')} → bigint) written to ${c.dir}; run it after this one`);
  }
}
