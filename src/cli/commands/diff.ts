import { jsonAnswer } from '../machine-output.js';
import { withOptionDefaults } from '../../compile/options.js';
import { UserError } from '../../model/errors.js';
import { diffPlans, type PlanSide } from '../../planning/diff-plans.js';
import { readPlanDir } from '../../planning/plan-dir.js';
import { planTable } from '../../planning/plan-table.js';
import { connectClient } from '../../run/connect.js';
import { connectionConfig } from '../connection.js';

export interface DiffArgs {
  readonly a?: string;
  readonly b?: string;
  readonly plan?: string;
  readonly url?: string;
  readonly json?: boolean;
}

async function livePlan(dir: string, url: string | undefined): Promise<[PlanSide, PlanSide]> {
  const approved = readPlanDir(dir);
  const client = await connectClient(connectionConfig(url));
  try {
    const m = approved.manifest;
    const now = (await planTable(client, { schema: m.table.schema, table: m.table.name, options: withOptionDefaults(m.options), transform: m.transform.spec, compareOnly: true })).plan;
    return [{ label: dir, manifest: approved.manifest, files: approved.files }, { label: 'live', manifest: now.manifest, files: now.files }];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Returns the exit code: 0 identical SQL, 1 different. Errors are thrown (exit 2). */
export async function diffCommand(args: DiffArgs, out: (line: string) => void): Promise<number> {
  let sides: [PlanSide, PlanSide];
  if (args.plan !== undefined) {
    if (args.a !== undefined || args.b !== undefined) throw new UserError('BAD_ARGUMENT', 'give either two plan folders or --plan DIR with --url, not both');
    sides = await livePlan(args.plan, args.url);
  } else {
    if (args.a === undefined || args.b === undefined) throw new UserError('BAD_ARGUMENT', 'give two plan folders (shadowpack diff A B), or --plan DIR to compare with the live database');
    const a = readPlanDir(args.a);
    const b = readPlanDir(args.b);
    sides = [{ label: args.a, manifest: a.manifest, files: a.files }, { label: args.b, manifest: b.manifest, files: b.files }];
  }
  const r = diffPlans(sides[0], sides[1]);
  if (args.json) {
    out(jsonAnswer(r));
    return r.identical ? 0 : 1;
  }
  out(r.identical ? 'SQL identical' : `SQL differs in ${r.scripts.length} script(s)`);
  if (r.model.length) {
    out('');
    out('table differences:');
    for (const line of r.model) out(`  ${line}`);
  }
  if (r.options.length) {
    out('');
    out('option differences:');
    for (const line of r.options) out(`  ${line}`);
  }
  if (r.environment.length) {
    out('');
    out('environment (never part of the SQL):');
    for (const line of r.environment) out(`  ${line}`);
  }
  for (const s of r.scripts) out('\n' + s.diff);
  return r.identical ? 0 : 1;
}
