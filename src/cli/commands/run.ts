import type { StageName } from '../../compile/stages.js';
import { lockReportText, type RunEvent } from '../../run/events.js';
import { run } from '../../run/runner.js';
import { connectionConfig, redact } from '../connection.js';
import { readPlanDir } from '../../planning/plan-dir.js';
import { progressPrinter, type WaitDeadline } from '../progress.js';
import { withOptionDefaults } from '../../compile/options.js';
import { nextStepLines } from '../next-steps.js';
import { errorEvent, eventEnvelope, stagesLine } from '../run-events.js';
import { UserError } from '../../model/errors.js';
import type { LoadedPlan } from '../../run/plan-check.js';
import { isBatchDir } from '../../batch/batch-dir.js';
import { DEFAULT_UNTIL } from '../default-until.js';

export interface RunArgs {
  readonly plan: string;
  readonly url?: string;
  readonly until?: StageName;
  readonly stage?: StageName;
  readonly expectHash?: string;
  readonly events?: boolean;
  /** Sessions for the parallel stages (backfill, build). */
  readonly jobs?: number;
  /** A batch only: tables at once. */
  readonly parallelTables?: number;
}

export async function runCommand(
  args: RunArgs,
  out: (line: string) => void,
  err: (text: string) => void,
  isTty: boolean,
): Promise<void> {
  const jobs = args.jobs ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64)
    throw new UserError('BAD_ARGUMENT', `--jobs must be a whole number from 1 to 64 (got ${String(args.jobs)})`);
  if (isBatchDir(args.plan)) return (await import('./run-batch.js')).runBatchCommand(args, out, err, isTty);
  if (args.parallelTables !== undefined)
    throw new UserError(
      'BAD_ARGUMENT',
      `--parallel-tables goes with a batch folder; ${args.plan} holds one table's plan`,
    );
  let plan: LoadedPlan | null = null;
  let stage: StageName | null = null;
  let onInterrupt: (() => void) | null = null;
  try {
    plan = readPlanDir(args.plan);
    checkStageInPlan(plan, args);
    const wrap = eventEnvelope(plan);
    const printer = args.events
      ? (e: object) => out(JSON.stringify(wrap(e)))
      : progressPrinter(err, isTty, Date.now, waitDeadline(plan));
    let page = '';
    let started = false;
    let copiedByThisRun = 0;
    const loadedPlan = plan;
    const show = (e: RunEvent) => {
      if (e.type === 'backfill') copiedByThisRun += e.rows;
      // Said once the runner is connected and about to act: a run that fails before (integrity,
      // connection) prints its one error line and nothing else.
      if (!started && !args.events) err(`${startLine(loadedPlan, args)}\n`);
      started = true;
      if (e.type === 'stage-start') stage = e.stage;
      if (e.type === 'stage-start' || e.type === 'stage-end') page = '';
      if (e.type === 'backfill') page = ` at page ${e.page} of ${e.pages}`;
      printer(e);
    };
    const loaded = plan;
    // Ctrl-C: one line saying where it stopped and how to go on, not a silent exit 130.
    onInterrupt = () => {
      err(`\n${interruptedText(loaded, args, stage, page)}\n`);
      process.exit(130);
    };
    process.once('SIGINT', onInterrupt);
    await runPlan(args, plan, show, out, () => copiedByThisRun);
  } catch (e) {
    // --events promises a failure event, not only a line on stderr (which the caller prints too).
    if (args.events) {
      const hint = e instanceof UserError && typeof e.details['hint'] === 'string' ? { hint: e.details['hint'] } : {};
      out(JSON.stringify(eventEnvelope(plan)({ ...errorEvent(e, stage), ...hint })));
    }
    throw e;
  } finally {
    if (onInterrupt !== null) process.off('SIGINT', onInterrupt);
  }
}

/**
 * `--until verify` / `--stage verify` on a plan planned without --verify-before-swap: refused
 * before connecting, rather than running to catch-up and saying "nothing left to do" (newcomer
 * review finding 33).
 */
export function checkStageInPlan(plan: LoadedPlan, args: Pick<RunArgs, 'plan' | 'until' | 'stage'>): void {
  const wanted = args.until ?? args.stage;
  if (wanted !== 'verify' || plan.manifest.stages.some((s) => s.name === 'verify')) return;
  const flag = args.until !== undefined ? '--until' : '--stage';
  throw new UserError(
    'BAD_ARGUMENT',
    `${flag} verify: ${args.plan} has no verify stage (planned without --verify-before-swap); stop before the swap with --until catchup and compare with shadowpack verify --plan ${args.plan}, or plan again with --verify-before-swap`,
  );
}

/** Before anything runs: which plan, on which database and cluster, and where it will stop (newcomer review finding 30). */
function startLine(plan: LoadedPlan, args: RunArgs): string {
  const m = plan.manifest;
  const e = m.environment;
  const where = `database ${e.database}${e.systemIdentifier !== null ? `, cluster ${e.systemIdentifier}` : ''}`;
  const what =
    args.stage !== undefined
      ? `stage ${args.stage}`
      : `up to ${args.until ?? DEFAULT_UNTIL}${(args.until ?? DEFAULT_UNTIL) === 'swap' ? ' (the revert window stays open)' : ''}`;
  return `plan ${m.planHash} for ${m.table.schema}.${m.table.name}, bound to ${where}: ${what}`;
}

/**
 * What was committed stays (every stage commits in steps and is safe to run again), so the line
 * says how to resume, and how to give up: abort before the swap, revert after it.
 */
export function interruptedText(plan: LoadedPlan, args: RunArgs, stage: StageName | null, page: string): string {
  const base = `shadowpack run --plan ${args.plan}${args.url !== undefined ? ` --url '${redact(args.url)}'` : ''}`;
  const afterSwap = stage === 'swap' || stage === 'cleanup';
  const where = stage === null ? 'before the first stage started' : `in stage ${stage}${page}`;
  const giveUp = afterSwap
    ? `${base} --stage revert to go back to the old table (until cleanup has run)`
    : `${base} --stage abort to remove everything the run made`;
  return `shadowpack: interrupted ${where}; what was committed stays. To resume: ${base}${args.expectHash !== undefined ? ` --expect-hash ${args.expectHash}` : ''}; to give up: ${giveUp}`;
}

/** The bound of the waits the plan's options limit, to print beside them. */
function waitDeadline(plan: LoadedPlan): WaitDeadline {
  const o = withOptionDefaults(plan.manifest.options);
  return (message) => {
    if (message.startsWith('old snapshots')) return o.snapshotWaitSeconds;
    if (message.startsWith('release of the swap')) return o.holdWaitSeconds;
    if (message.startsWith('another session')) return o.advisoryWaitSeconds;
    return null;
  };
}

async function runPlan(
  args: RunArgs,
  plan: LoadedPlan,
  show: (e: RunEvent) => void,
  out: (line: string) => void,
  copiedByThisRun: () => number,
): Promise<void> {
  const summary = await run({
    plan,
    connection: connectionConfig(args.url),
    ...(args.stage !== undefined ? { stage: args.stage } : { until: args.until ?? DEFAULT_UNTIL }),
    ...(args.expectHash !== undefined ? { expectHash: args.expectHash } : {}),
    jobs: args.jobs ?? 1,
    onEvent: show,
  });
  if (args.events) {
    out(JSON.stringify(eventEnvelope(plan)({ type: 'summary', ...summary })));
    return;
  }
  out(stagesLine(summary.stages));
  const seen = summary.lastSeen;
  const backfill = summary.stages.find((s) => s.stage === 'backfill');
  if (seen && backfill && seen.rowsCopied > 0) out(backfillLine(copiedByThisRun(), seen.rowsCopied, backfill.ms));
  if (seen?.swapLockMs != null && summary.stages.some((s) => s.stage === 'swap'))
    out(
      `swap: ACCESS EXCLUSIVE held ${seen.swapLockMs} ms, taken at attempt ${seen.swapAttempts}; ${seen.rowsApplied} log entries applied in ${seen.catchupRounds} rounds`,
    );
  for (const r of summary.locks) out(`lock ${lockReportText(r)}`);
  if (summary.finished) out(`${plan.manifest.table.schema}.${plan.manifest.table.name}: done`);
  else for (const line of nextStepLines(plan.manifest, summary.state, args.plan, args.url)) out(line);
}

/**
 * The backfill's rate over this run's rows and time: after a resume the run's total counts rows an
 * earlier run copied, which made the rate too high (newcomer review finding 31). `thisRun` is what
 * this run's progress reports added up; when they say nothing useful the total stands for both.
 */
export function backfillLine(thisRun: number, total: number, ms: number): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const resumed = thisRun > 0 && thisRun < total;
  const rate = `${n(Math.round(((resumed ? thisRun : total) * 1000) / Math.max(1, ms)))} rows/s over the whole stage`;
  return resumed
    ? `backfill: ${n(total)} rows in all, ${n(thisRun)} of them copied by this run in ${ms} ms (${rate})`
    : `backfill: ${n(total)} rows in ${ms} ms (${rate})`;
}
