import { connectClient } from '../../run/connect.js';
import { compile } from '../../compile/compile.js';
import { withOptionDefaults } from '../../compile/options.js';
import { describeModelDiff } from '../../compile/model-diff.js';
import { unifiedDiff } from '../../compile/text-diff.js';
import type { PlanManifest } from '../../compile/compile.js';
import { UserError } from '../../model/errors.js';
import { introspect } from '../../introspect/introspect.js';
import { TOOL_VERSION } from '../../version.js';
import { connectionConfig } from '../connection.js';
import { readPlanDir } from '../plan-dir.js';
import { loadTemplates } from '../templates.js';

interface Side {
  readonly label: string;
  readonly manifest: PlanManifest;
  readonly files: ReadonlyMap<string, string>;
}

export interface DiffResult {
  readonly identical: boolean;
  readonly model: readonly string[];
  readonly options: readonly string[];
  readonly environment: readonly string[];
  readonly scripts: readonly { readonly file: string; readonly diff: string }[];
}

/** The keys of two flat records whose values differ, as "key: x in A, y in B", sorted. */
function changedFields(a: object, b: object): string[] {
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return Object.keys({ ...ra, ...rb })
    .sort()
    .filter((k) => ra[k] !== rb[k])
    .map((k) => `${k}: ${String(ra[k])} in A, ${String(rb[k])} in B`);
}

/** Compares two plans: SQL first decides; models, options and environment explain. */
export function diffPlans(a: Side, b: Side): DiffResult {
  const files = [...new Set([...a.manifest.stages.map((s) => s.file), ...b.manifest.stages.map((s) => s.file)])].sort();
  const scripts = files
    .filter((f) => a.files.get(f) !== b.files.get(f))
    .map((f) => ({ file: f, diff: unifiedDiff(a.files.get(f) ?? '', b.files.get(f) ?? '', `${a.label}/${f}`, `${b.label}/${f}`) }));
  const options = changedFields(withOptionDefaults(a.manifest.options), withOptionDefaults(b.manifest.options)).map((k) => `option ${k}`);
  const environment = changedFields(a.manifest.environment, b.manifest.environment);
  // binding.sql names the database on purpose: it is the environment, never a SQL difference.
  const bindingA = a.manifest.binding;
  const bindingB = b.manifest.binding;
  if (bindingA?.sha256 !== bindingB?.sha256) {
    environment.push(`${bindingA?.file ?? bindingB?.file ?? 'binding.sql'}: written for each database (sha256 ${bindingA?.sha256 ?? 'none'} in A, ${bindingB?.sha256 ?? 'none'} in B)`);
  }
  if (a.manifest.tool.version !== b.manifest.tool.version) options.unshift(`shadowpack ${a.manifest.tool.version} in A, ${b.manifest.tool.version} in B`);
  return { identical: scripts.length === 0, model: describeModelDiff(a.manifest.model, b.manifest.model), options, environment, scripts };
}

export interface DiffArgs {
  readonly a?: string;
  readonly b?: string;
  readonly plan?: string;
  readonly url?: string;
  readonly json?: boolean;
}

async function livePlan(dir: string, url: string | undefined): Promise<[Side, Side]> {
  const approved = readPlanDir(dir);
  const client = await connectClient(connectionConfig(url));
  try {
    const t = await introspect(client, approved.manifest.table.schema, approved.manifest.table.name);
    const now = compile({ model: t.model, facts: t.facts, options: withOptionDefaults(approved.manifest.options), templates: loadTemplates(), toolVersion: TOOL_VERSION, transform: approved.manifest.transform.spec });
    return [{ label: dir, manifest: approved.manifest, files: approved.files }, { label: 'live', manifest: now.manifest, files: now.files }];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Returns the exit code: 0 identical SQL, 1 different. Errors are thrown (exit 2). */
export async function diffCommand(args: DiffArgs, out: (line: string) => void): Promise<number> {
  let sides: [Side, Side];
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
    out(JSON.stringify(r));
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
