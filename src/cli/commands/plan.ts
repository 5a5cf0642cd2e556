import { connectClient } from '../../run/connect.js';
import { compile } from '../../compile/compile.js';
import { resolveOptions, type PlanOptions } from '../../compile/options.js';
import { resolveTransform, type TransformArgs } from '../../compile/transform/spec.js';
import { parseAlterActions } from '../../compile/transform/parse-alter.js';
import { checkData } from '../../run/check-data.js';
import { readState } from '../../run/state.js';
import { partitionDataRange, takenPartitionNames } from '../../introspect/partition-range.js';
import { UserError } from '../../model/errors.js';
import { introspect, parseTableName } from '../../introspect/introspect.js';
import { writeReferencingPlans } from '../referencing-plans.js';
import { missingPrivileges, privilegeError } from '../../introspect/privileges.js';
import { qualified } from '../../model/quote.js';
import { checkControlOptions } from '../../introspect/control-checks.js';
import { TOOL_VERSION } from '../../version.js';
import { connectionConfig } from '../connection.js';
import { writePlanDir } from '../plan-dir.js';
import { loadTemplates } from '../templates.js';

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
}

export async function planCommand(args: PlanArgs, print: (line: string) => void, warn: (line: string) => void = () => undefined): Promise<void> {
  const { schema, table } = parseTableName(args.table);
  const options = resolveOptions(args.options);
  const given = resolveTransform(args.transform ?? {});
  const client = await connectClient(connectionConfig(args.url));
  try {
    // Checked first, before anything is written, so a run cannot fail halfway for want of a privilege
    // (and so a role that cannot even read the table learns what it lacks).
    const missing = await missingPrivileges(client, schema, table, args.runAs);
    if (missing.length > 0) {
      const role = args.runAs ?? (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
      throw privilegeError(role, qualified(schema, table), missing);
    }
    const t = await introspect(client, schema, table);
    await checkControlOptions(client, options);
    // The bounds come from the data as it is now, recorded in the plan (a re-plan on other data gives other partitions).
    const partition = given.partition === null ? null : { ...given.partition, dataRange: await partitionDataRange(client, t.model, given.partition) };
    const transform = { ...given, partition, alter: await parseAlterActions(args.alter ?? [], t.model) };
    const plan = compile({ model: t.model, facts: t.facts, options, templates: loadTemplates(), toolVersion: TOOL_VERSION, transform });
    const partitions = plan.manifest.transform.partitions ?? [];
    if (partitions.length > 0) {
      const taken = await takenPartitionNames(client, schema, partitions.map((p) => p.name));
      if (taken.length > 0) throw new UserError('UNSUPPORTED_TABLE', `--partition-by: ${schema} already has ${taken.join(', ')}, a name the new partitions need; rename or drop it, then plan again (no plan was written)`);
    }
    if (args.checkData) {
      const bad = await checkData(client, t.model, transform, options);
      if (bad.length > 0) {
        const list = bad.map((b) => `key ${b.key}: ${b.error}`).join('; ');
        throw new UserError('DATA_DOES_NOT_FIT', `${bad.length}${bad.length >= 10 ? ' or more' : ''} row(s) of ${schema}.${table} do not fit the new shape (${list}); fix them or the --alter, then plan again (no plan was written)`);
      }
      print(`check-data: every row of ${schema}.${table} fits the new shape`);
    }
    writePlanDir(args.out, plan, args.force ?? false);
    // A run in progress belongs to the plan that started it: this plan will refuse to continue it.
    // Best effort: a planning role (with --run-as) may not read the tool's schema; the stages check anyway.
    const running = await readState(client, plan.manifest).catch(() => null);
    if (running !== null) {
      warn(`shadowpack: warning: a run on ${schema}.${table} is in progress (stage "${running.stage}", plan ${running.planId ?? '(not recorded)'}); this plan (${plan.manifest.planId}) cannot run until that run is finished or aborted with its own plan`);
    }
    const children = transform.withReferencing ? await writeReferencingPlans(client, t.model, options, args.out, args.force ?? false) : [];
    if (args.json) {
      print(JSON.stringify({ dir: args.out, planHash: plan.manifest.planHash, fingerprint: plan.manifest.fingerprint, stages: plan.manifest.stages.map((s) => ({ name: s.name, file: s.file, sha256: s.sha256 })), binding: plan.manifest.binding, referencing: children }));
    } else {
      print(`plan for ${schema}.${table} written to ${args.out} (plan hash ${plan.manifest.planHash})`);
      const e = plan.manifest.environment;
      print(`bound to database ${e.database} (${e.systemIdentifier !== null ? `cluster ${e.systemIdentifier}` : `OID ${e.databaseOid}`}) by ${args.out}/${plan.manifest.binding.file}`);
      print(`review ${args.out}/README.md, then run: shadowpack run --plan ${args.out}`);
      for (const c of children) print(`plan for ${c.table} (${c.columns.join(', ')} → bigint) written to ${c.dir}; run it after this one`);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}
