import { readMovePlanDir } from '../../run/move-plan.js';
import { connectClient } from '../../run/connect.js';
import { updateMoveControl, type MoveControlState } from '../../run/move-control.js';
import { UserError } from '../../model/errors.js';
import { jsonAnswer } from '../machine-output.js';
import { controlChange, type ControlArgs } from './control.js';
import { targetConnection } from './run-move.js';

/** The control row of a move in one line; the cut-over's hold is named only for a plan made with --hold-cutover. */
export function describeMoveControl(c: MoveControlState, holdCutover: boolean): string {
  const parts = [
    c.paused ? 'paused' : 'running',
    `batch ${c.batchPages} pages`,
    c.maxRowsPerSecond === 0 ? 'no rows/s ceiling' : `at most ${c.maxRowsPerSecond} rows/s`,
    ...(holdCutover ? [c.cutoverReleased ? 'cut-over released' : 'cut-over held'] : []),
  ];
  return (
    parts.join(', ') + (c.waitingFor === null ? '' : `; waiting for: ${c.waitingFor} (since ${c.waitingSince ?? '?'})`)
  );
}

/**
 * `control --plan DIR --target-url URL` on a move plan: the backfill and the catch-up run on the target and read
 * its control row between batches and rounds; `--release-cutover` lets a catch-up held by --hold-cutover end.
 */
export async function controlMoveCommand(args: ControlArgs, out: (line: string) => void): Promise<void> {
  const plan = readMovePlanDir(args.plan);
  if (args.releaseSwap)
    throw new UserError(
      'BAD_ARGUMENT',
      `--release-swap: ${args.plan} is a move plan, which has no swap; its hold before the fence is released with --release-cutover`,
    );
  const change = { ...controlChange(args), ...(args.releaseCutover ? { cutoverReleased: true } : {}) };
  if (Object.keys(change).length === 0)
    throw new UserError(
      'BAD_ARGUMENT',
      'nothing to change: give --pause, --resume, --batch-pages N, --max-rows-per-second N or --release-cutover',
    );
  const holdCutover = plan.manifest.options.holdCutover === true;
  if (args.releaseCutover && !holdCutover)
    throw new UserError(
      'BAD_ARGUMENT',
      `--release-cutover: ${args.plan} was planned without --hold-cutover, so its catch-up never waits for a release; there is nothing to release (plan with --hold-cutover to hold the cut-over)`,
    );
  const client = await connectClient(targetConnection(args.targetUrl, args.plan));
  try {
    const now = await updateMoveControl(client, plan.manifest.runId, change);
    const group = plan.manifest.tables.map((t) => `${t.schema}.${t.name}`).join(', ');
    out(
      args.json
        ? jsonAnswer({ kind: 'move', tables: group, runId: plan.manifest.runId, control: now })
        : `${group}: ${describeMoveControl(now, holdCutover)}`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
