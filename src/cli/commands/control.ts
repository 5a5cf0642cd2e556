import { jsonAnswer } from '../machine-output.js';
import { connectClient } from '../../run/connect.js';
import { liveControl, updateControl, type ControlChange, type ControlState } from '../../run/control.js';
import { runningSessions } from '../../run/running.js';
import { withOptionDefaults } from '../../compile/options.js';
import { UserError } from '../../model/errors.js';
import { optionValueError } from '../../compile/option-errors.js';
import { connectionConfig } from '../connection.js';
import { readPlanDir } from '../../planning/plan-dir.js';

export interface ControlArgs {
  readonly plan: string;
  readonly url?: string;
  readonly json?: boolean;
  readonly pause?: boolean;
  readonly resume?: boolean;
  readonly batchPages?: number;
  readonly maxRowsPerSecond?: number;
  readonly releaseSwap?: boolean;
  /** A move plan: the target cluster, where its backfill and catch-up run. */
  readonly targetUrl?: string;
  /** A move plan made with --hold-cutover: let the catch-up end, so the fence and the cut-over may follow. */
  readonly releaseCutover?: boolean;
}

/** The same rule, code and words as plan's options (BAD_OPTION, named by the flag). */
function wholeNumber(flag: string, value: number, lo: number, hi: number): number {
  if (!Number.isInteger(value) || value < lo || value > hi) {
    throw new UserError(
      'BAD_OPTION',
      optionValueError(
        flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()),
        value,
        `a whole number from ${lo} to ${hi}`,
      ),
    );
  }
  return value;
}

/** The arguments as a change to the control row; bad or contradictory ones are refused before connecting. */
export function controlChange(args: ControlArgs): ControlChange {
  if (args.pause && args.resume) throw new UserError('BAD_ARGUMENT', 'give --pause or --resume, not both');
  return {
    ...(args.pause ? { paused: true } : {}),
    ...(args.resume ? { paused: false } : {}),
    ...(args.batchPages !== undefined
      ? { batchPages: wholeNumber('--batch-pages', args.batchPages, 1, 10_000_000) }
      : {}),
    ...(args.maxRowsPerSecond !== undefined
      ? { maxRowsPerSecond: wholeNumber('--max-rows-per-second', args.maxRowsPerSecond, 0, 1_000_000_000) }
      : {}),
    ...(args.releaseSwap ? { swapReleased: true } : {}),
  };
}

/** The control row in one line; the swap's hold is named only for a plan made with --hold-swap (finding 18). */
export function describeControl(c: ControlState, holdSwap: boolean): string {
  const parts = [
    c.paused ? 'paused' : 'running',
    `batch ${c.batchPages} pages`,
    c.maxRowsPerSecond === 0 ? 'no rows/s ceiling' : `at most ${c.maxRowsPerSecond} rows/s`,
    ...(holdSwap ? [c.swapReleased ? 'swap released' : 'swap held'] : []),
  ];
  return (
    parts.join(', ') + (c.waitingFor === null ? '' : `; waiting for: ${c.waitingFor} (since ${c.waitingSince ?? '?'})`)
  );
}

export async function controlCommand(args: ControlArgs, out: (line: string) => void): Promise<void> {
  if (args.releaseCutover || args.targetUrl !== undefined)
    throw new UserError(
      'BAD_ARGUMENT',
      `${args.releaseCutover ? '--release-cutover' : '--target-url'} goes with a move plan, and ${args.plan} rebuilds a table in one database${args.releaseCutover ? ' (its hold is --release-swap)' : ''}: drop it`,
    );
  const plan = readPlanDir(args.plan);
  const change = controlChange(args);
  if (Object.keys(change).length === 0) {
    throw new UserError(
      'BAD_ARGUMENT',
      'nothing to change: give --pause, --resume, --batch-pages N, --max-rows-per-second N or --release-swap',
    );
  }
  const holdSwap = withOptionDefaults(plan.manifest.options).holdSwap;
  if (args.releaseSwap && !holdSwap) {
    throw new UserError(
      'BAD_ARGUMENT',
      `--release-swap: ${args.plan} was planned without --hold-swap, so its swap never waits for a release; there is nothing to release (plan with --hold-swap to hold a swap)`,
    );
  }
  const client = await connectClient(connectionConfig(args.url));
  try {
    const now = liveControl(
      await updateControl(client, plan.manifest, change),
      (await runningSessions(client, plan.manifest)).length > 0,
    );
    out(
      args.json
        ? jsonAnswer({ table: plan.manifest.table, runId: plan.manifest.runId, control: now })
        : `${plan.manifest.table.schema}.${plan.manifest.table.name}: ${describeControl(now, holdSwap)}`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
