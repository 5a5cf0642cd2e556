import { unifiedDiff } from '../../compile/text-diff.js';
import { canonicalJson } from '../../model/normalise.js';
import { UserError } from '../../model/errors.js';
import { readMovePlanDir, type LoadedMovePlan } from '../../run/move-plan.js';
import { jsonAnswer } from '../machine-output.js';
import { planMove } from '../../planning/plan-move.js';
import { connectClient } from '../../run/connect.js';
import { connectionConfig } from '../connection.js';
import { targetConnection } from './run-move.js';

/** What differs between two move plans: the SQL of each file, and what plan.json says beside it. */
export interface MoveDiff {
  readonly identical: boolean;
  readonly a: { readonly label: string; readonly planHash: string };
  readonly b: { readonly label: string; readonly planHash: string };
  /** plan.json fields (group, sides, options) that differ, one line each. */
  readonly manifest: readonly string[];
  readonly scripts: readonly { readonly file: string; readonly diff: string }[];
}

function sqlFiles(p: LoadedMovePlan): string[] {
  return [...p.manifest.stages.map((s) => s.file), ...Object.values(p.manifest.bindings).map((b) => b.file)];
}

export function diffMovePlans(a: LoadedMovePlan, b: LoadedMovePlan, labelA: string, labelB: string): MoveDiff {
  const manifest: string[] = [];
  const field = (name: string, x: unknown, y: unknown) => {
    const [jx, jy] = [canonicalJson(x), canonicalJson(y)];
    if (jx !== jy) manifest.push(`${name}: ${jx} in A, ${jy} in B`);
  };
  const group = (p: LoadedMovePlan) => p.manifest.tables.map((t) => `${t.schema}.${t.name}`);
  field('tables', group(a), group(b));
  field('source', a.manifest.source, b.manifest.source);
  field('target', a.manifest.target, b.manifest.target);
  field('options', a.manifest.options, b.manifest.options);
  field(
    'stages',
    a.manifest.stages.map((s) => `${s.file} ${s.side}`),
    b.manifest.stages.map((s) => `${s.file} ${s.side}`),
  );
  const files = [...new Set([...sqlFiles(a), ...sqlFiles(b)])].sort();
  const scripts: { file: string; diff: string }[] = [];
  for (const f of files) {
    const [x, y] = [a.files.get(f) ?? '', b.files.get(f) ?? ''];
    if (x !== y) scripts.push({ file: f, diff: unifiedDiff(x, y, `${labelA}/${f}`, `${labelB}/${f}`) });
  }
  return {
    identical: scripts.length === 0,
    a: { label: labelA, planHash: a.manifest.planHash },
    b: { label: labelB, planHash: b.manifest.planHash },
    manifest,
    scripts,
  };
}

/**
 * `diff A B` of two move plans (issue 15): exit 0 when every SQL file is the same, 1 otherwise. Both plans
 * must move the same group (what moves where is otherwise a different plan, not a changed one).
 */
export function diffMoveCommand(args: { a: string; b: string; json?: boolean }, out: (line: string) => void): number {
  const [a, b] = [readMovePlanDir(args.a), readMovePlanDir(args.b)];
  const group = (p: LoadedMovePlan) => p.manifest.tables.map((t) => `${t.schema}.${t.name}`).join(', ');
  if (group(a) !== group(b)) {
    throw new UserError(
      'BAD_ARGUMENT',
      `${args.a} moves ${group(a)} and ${args.b} ${group(b)}: diff compares two plans of one move (staging against production)`,
    );
  }
  return printMoveDiff(diffMovePlans(a, b, args.a, args.b), args.json === true, out);
}

/**
 * `diff --plan DIR --url SOURCE --target-url TARGET` of a move plan: the approved plan against the one both live
 * databases give now for the same group and options (A: the folder, B: `live`); exit 0 same SQL, 1 different.
 */
export async function diffMoveLiveCommand(
  args: { plan: string; url?: string; targetUrl?: string; json?: boolean },
  out: (line: string) => void,
): Promise<number> {
  const approved = readMovePlanDir(args.plan);
  const targetConfig = targetConnection(args.targetUrl, args.plan);
  const source = await connectClient(connectionConfig(args.url));
  try {
    const target = await connectClient(targetConfig);
    try {
      const m = approved.manifest;
      const now = await planMove(source, target, {
        tables: m.tables.map((t) => ({ schema: t.schema, table: t.name })),
        options: m.options,
        compareOnly: true,
      });
      const live: LoadedMovePlan = { dir: 'live', manifest: now.manifest, files: now.files };
      return printMoveDiff(diffMovePlans(approved, live, args.plan, 'live'), args.json === true, out);
    } finally {
      await target.end().catch(() => undefined);
    }
  } finally {
    await source.end().catch(() => undefined);
  }
}

function printMoveDiff(r: MoveDiff, json: boolean, out: (line: string) => void): number {
  if (json) {
    out(jsonAnswer(r));
    return r.identical ? 0 : 1;
  }
  out(r.identical ? 'SQL identical' : `SQL differs in ${r.scripts.length} file(s)`);
  out(`A: ${r.a.label} (${r.a.planHash})`);
  out(`B: ${r.b.label} (${r.b.planHash})`);
  if (r.identical && r.a.planHash !== r.b.planHash)
    out(
      'the plan hashes differ although the SQL is the same: plan.json differs (below), so each has its own hash to approve',
    );
  if (r.manifest.length > 0) {
    out('');
    out('plan.json differences:');
    for (const line of r.manifest) out(`  ${line}`);
  }
  for (const s of r.scripts) out('\n' + s.diff);
  return r.identical ? 0 : 1;
}
