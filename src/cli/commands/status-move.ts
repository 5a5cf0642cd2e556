import { connectClient } from '../../run/connect.js';
import { readMovePlanDir } from '../../run/move-plan.js';
import {
  moveFinished,
  nextMoveStage,
  readMoveSide,
  readRevertBacklog,
  revertMayBeGivenUp,
  type MoveSideState,
} from '../../run/move-state.js';
import { jsonAnswer } from '../machine-output.js';
import { connectionConfig } from '../connection.js';
import { targetConnection } from './run-move.js';
import { readMoveControl } from '../../run/move-control.js';
import { describeMoveControl } from './control-move.js';
import { MOVE_STAGES } from '../../compile/move/stages.js';

/** The cleanup files, in the order they run: during a revert they give it up (the target live, the source fenced). */
const CLEANUP_FILES = MOVE_STAGES.filter((r) => r.stage === 'cleanup').map((r) => r.file);

function describe(side: 'source' | 'target', s: MoveSideState | null): string {
  return s === null ? `${side}: no run` : `${side}: "${s.stage}"`;
}

/** `status --plan DIR --target-url URL` for a move plan: both sides' stage and what runs next. */
export async function statusMoveCommand(
  args: { plan: string; url?: string; targetUrl?: string; json?: boolean },
  out: (line: string) => void,
): Promise<void> {
  const plan = readMovePlanDir(args.plan);
  const targetConfig = targetConnection(args.targetUrl, args.plan);
  const source = await connectClient(connectionConfig(args.url));
  try {
    const target = await connectClient(targetConfig);
    try {
      const runId = plan.manifest.runId;
      const states = { source: await readMoveSide(source, runId), target: await readMoveSide(target, runId) };
      const next = nextMoveStage(states);
      const done = next.kind === 'start' && (await moveFinished(source, runId));
      const reverted = next.kind === 'start' && !done && (await moveFinished(target, runId));
      const control = await readMoveControl(target, runId);
      const reversible = plan.manifest.options.reversible === true;
      const revertBacklog = reversible ? await readRevertBacklog(target, runId, plan.manifest.tables.length) : null;
      // A revert under way can go on, or (the source not live yet) be given up by the cleanups.
      const giveUp = next.kind === 'run' && next.rule.kind === 'revert' && revertMayBeGivenUp(states);
      const giveUpText = giveUp
        ? `; or give the revert up (the target live again, the source keeping its fence): cleanup (${CLEANUP_FILES.join(', then ')}; run --stage cleanup)`
        : '';
      const nextText = done
        ? 'nothing (the move is done: the source keeps its fence)'
        : reverted
          ? 'nothing (the move was reverted: the target keeps its fence)'
          : next.kind === 'start'
            ? 'preflight'
            : `${next.rule.stage} on the ${next.rule.side} (${next.rule.file})${giveUpText}`;
      if (args.json) {
        out(
          jsonAnswer({
            kind: 'move',
            runId,
            planId: plan.manifest.planId,
            tables: plan.manifest.tables,
            source: states.source,
            target: states.target,
            control,
            revertBacklog,
            next: done
              ? 'done'
              : reverted
                ? 'reverted'
                : next.kind === 'start'
                  ? { stage: 'preflight' }
                  : {
                      stage: next.rule.stage,
                      side: next.rule.side,
                      file: next.rule.file,
                      ...(giveUp ? { orGiveUp: { stage: 'cleanup', files: CLEANUP_FILES } } : {}),
                    },
          }),
        );
        return;
      }
      const group = plan.manifest.tables.map((t) => `${t.schema}.${t.name}`).join(', ');
      out(
        `move of ${group} (run ${runId}): ${describe('source', states.source)}, ${describe('target', states.target)}; next: ${nextText}`,
      );
      const row = states.target?.row;
      if (row !== undefined) {
        const field = (k: string) => (row[k] === undefined || row[k] === null ? '-' : String(row[k]));
        out(
          `  target: ${field('rounds')} rounds, ${field('rows_applied')} rows applied, last applied source snapshot ${field('applied_snapshot')}`,
        );
      }
      const srow = states.source?.row;
      if (srow !== undefined && srow['revert_rounds'] !== undefined) {
        out(
          `  revert: ${String(srow['revert_rounds'])} rounds, ${String(srow['revert_rows'])} keys brought back to the source, last applied target snapshot ${srow['revert_snapshot'] === null ? '-' : String(srow['revert_snapshot'])}`,
        );
      }
      if (revertBacklog !== null)
        out(
          `  revert backlog: ${revertBacklog} keys logged on the target since the cut-over (or the last revert round)`,
        );
      if (control !== null)
        out(`  control: ${describeMoveControl(control, plan.manifest.options.holdCutover === true)}`);
      for (const b of states.target?.backfill ?? []) {
        out(
          `  backfill of table ${String(b['tbl'])}: page ${String(b['next_page'])} of ${String(b['end_page'])}${b['done'] === true ? ' (done)' : ''}`,
        );
      }
    } finally {
      await target.end().catch(() => undefined);
    }
  } finally {
    await source.end().catch(() => undefined);
  }
}
