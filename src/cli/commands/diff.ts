import { jsonAnswer } from '../machine-output.js';
import { UserError } from '../../model/errors.js';
import { diffPlans, type PlanSide } from '../../planning/diff-plans.js';
import { printPlanDiff } from '../print-diff.js';
import { isBatchDir } from '../../batch/batch-dir.js';
import { diffBatchCommand } from './diff-batch.js';
import { readPlanDir } from '../../planning/plan-dir.js';
import { planNow } from '../../planning/plan-table.js';
import { diffOperands } from '../diff-operands.js';
import { connectClient } from '../../run/connect.js';
import { connectionConfig } from '../connection.js';
import { isMovePlanDir } from '../../run/move-plan.js';
import { diffMoveCommand, diffMoveLiveCommand } from './diff-move.js';

export interface DiffArgs {
  readonly a?: string;
  readonly b?: string;
  readonly plan?: string;
  readonly url?: string;
  /** diff --plan of a move plan: the target cluster. */
  readonly targetUrl?: string;
  readonly json?: boolean;
}

/** The plan the live database gives now for an approved plan's request (diff --plan). */
export async function livePlan(dir: string, url: string | undefined): Promise<[PlanSide, PlanSide]> {
  const approved = readPlanDir(dir);
  const client = await connectClient(connectionConfig(url));
  try {
    const now = await planNow(client, approved.manifest);
    return [
      { label: dir, manifest: approved.manifest, files: approved.files },
      { label: 'live', manifest: now.manifest, files: now.files },
    ];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Returns the exit code: 0 identical SQL, 1 different. Errors are thrown (exit 2). */
export async function diffCommand(args: DiffArgs, out: (line: string) => void): Promise<number> {
  // Two folders are compared as files: a --url would be silently ignored (newcomer review finding 36).
  if (args.plan === undefined && (args.url !== undefined || args.targetUrl !== undefined))
    throw new UserError(
      'BAD_ARGUMENT',
      `two plan folders are compared without connecting: drop --url, or compare one plan with a live database: shadowpack diff --plan ${args.a ?? 'DIR'} --url …`,
    );
  const batch =
    args.plan !== undefined
      ? isBatchDir(args.plan)
      : args.a !== undefined && args.b !== undefined && (isBatchDir(args.a) || isBatchDir(args.b));
  if (batch && args.a !== undefined && args.b !== undefined && isBatchDir(args.a) !== isBatchDir(args.b)) {
    throw new UserError(
      'BAD_ARGUMENT',
      `${isBatchDir(args.a) ? args.a : args.b} is a batch and ${isBatchDir(args.a) ? args.b : args.a} one table's plan: compare a batch with a batch, or the table's folder inside the batch with the plan`,
    );
  }
  if (batch) return diffBatchCommand(args, out);
  const move = [args.plan, args.a, args.b].filter((d): d is string => d !== undefined && isMovePlanDir(d));
  if (move.length > 0) {
    const operands = diffOperands(args, 'give two move plan folders (shadowpack diff A B)');
    if ('live' in operands)
      return diffMoveLiveCommand(
        {
          plan: operands.live,
          ...(args.url !== undefined ? { url: args.url } : {}),
          ...(args.targetUrl !== undefined ? { targetUrl: args.targetUrl } : {}),
          ...(args.json ? { json: true } : {}),
        },
        out,
      );
    if (move.length === 1)
      throw new UserError(
        'BAD_ARGUMENT',
        `${move[0]} is a move plan and ${move[0] === operands.a ? operands.b : operands.a} is not: compare a move plan with a move plan`,
      );
    return diffMoveCommand({ a: operands.a, b: operands.b, ...(args.json ? { json: true } : {}) }, out);
  }
  let sides: [PlanSide, PlanSide];
  const operands = diffOperands(
    args,
    'give two plan folders (shadowpack diff A B), or --plan DIR to compare with the live database',
  );
  if ('live' in operands) {
    sides = await livePlan(operands.live, args.url);
  } else {
    const a = readPlanDir(operands.a);
    const b = readPlanDir(operands.b);
    sides = [
      { label: operands.a, manifest: a.manifest, files: a.files },
      { label: operands.b, manifest: b.manifest, files: b.files },
    ];
  }
  const [ta, tb] = [sides[0].manifest.table, sides[1].manifest.table];
  if (ta.schema !== tb.schema || ta.name !== tb.name) {
    throw new UserError(
      'BAD_ARGUMENT',
      `${sides[0].label} rebuilds ${ta.schema}.${ta.name} and ${sides[1].label} ${tb.schema}.${tb.name}: diff compares two plans of one table (staging against production, or a plan against the live database)`,
    );
  }
  const r = diffPlans(sides[0], sides[1]);
  if (args.json) {
    out(jsonAnswer(r));
    return r.identical ? 0 : 1;
  }
  printPlanDiff(r, out);
  return r.identical ? 0 : 1;
}
