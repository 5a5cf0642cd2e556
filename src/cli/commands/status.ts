import { jsonAnswer } from '../machine-output.js';
import { connectClient } from '../../run/connect.js';
import { lockReportText } from '../../run/events.js';
import { nextForwardStage } from '../../run/runner.js';
import { readFinished, readState } from '../../run/state.js';
import { liveControl, readControl } from '../../run/control.js';
import { withOptionDefaults } from '../../compile/options.js';
import { runningSessions } from '../../run/running.js';
import { describeControl } from './control.js';
import { connectionConfig } from '../connection.js';
import { readPlanDir } from '../../planning/plan-dir.js';
import { isBatchDir } from '../../batch/batch-dir.js';
import { statusBatchCommand } from './status-batch.js';

export async function statusCommand(
  args: { plan: string; url?: string; json?: boolean },
  out: (line: string) => void,
): Promise<void> {
  if (isBatchDir(args.plan)) return statusBatchCommand(args, out);
  const plan = readPlanDir(args.plan);
  const client = await connectClient(connectionConfig(args.url));
  try {
    const state = await readState(client, plan.manifest);
    const next = nextForwardStage(
      state,
      plan.manifest.stages.some((s) => s.name === 'verify'),
    );
    // "stage" is the last one that committed; a session holding the run's lock is running the next one.
    const running = state === null ? [] : await runningSessions(client, plan.manifest);
    const recorded = state === null ? null : await readControl(client, plan.manifest);
    const control = recorded === null ? null : liveControl(recorded, running.length > 0);
    if (args.json) {
      const finished = state === null ? await readFinished(client, plan.manifest) : null;
      out(
        jsonAnswer({
          table: plan.manifest.table,
          runId: plan.manifest.runId,
          planId: plan.manifest.planId ?? null,
          state,
          control,
          next: finished?.outcome === 'cleaned' ? 'done' : next,
          finished,
        }),
      );
      return;
    }
    const t = `${plan.manifest.table.schema}.${plan.manifest.table.name}`;
    if (state === null) {
      const finished = await readFinished(client, plan.manifest);
      if (finished?.outcome === 'cleaned') {
        out(
          `${t}: plan ${plan.manifest.planId} already rebuilt it (cleaned up at ${finished.endedAt} by ${finished.endedBy}); a plan runs once: make a new plan to rebuild again`,
        );
      } else if (finished !== null) {
        out(
          `${t}: no run in progress (next: preflight); this plan's last run ended ${finished.outcome} at ${finished.endedAt} by ${finished.endedBy}`,
        );
      } else {
        out(`${t}: no run in progress (next: preflight)`);
      }
      return;
    }
    const own = state.planId === null || state.planId === plan.manifest.planId;
    const now =
      running.length === 0
        ? `nothing running now; next: ${next}`
        : `running now: ${next} (pid ${running.map((r) => r.pid).join(', ')}, since ${running[0]!.since ?? '?'}), unless that session is an abort or a revert`;
    out(
      `${t}: last stage done "${state.stage}"; ${now}${own ? '' : ` (with the plan that started the run, not this one)`}`,
    );
    out(
      `  run of plan ${state.planId ?? '(not recorded: started by an earlier shadowpack)'}${own ? '' : `; this is plan ${plan.manifest.planId ?? '(no plan id)'}: it will not continue that run (finish or abort it with its own plan)`}, started ${state.createdAt}, last change ${state.updatedAt}`,
    );
    out(`  backfill: page ${state.backfillNext} of ${state.backfillEnd}, ${state.rowsCopied} rows copied`);
    out(
      `  change log: ${state.backlog ?? '-'} entries waiting, ${state.rowsApplied} applied in ${state.catchupRounds} rounds`,
    );
    if (control !== null)
      out(`  control: ${describeControl(control, withOptionDefaults(plan.manifest.options).holdSwap)}`);
    if (state.swapLockMs !== null)
      out(
        `  swap: lock held ${state.swapLockMs} ms after ${state.swapAttempts} attempt(s); revert backlog ${state.reverseBacklog ?? '-'}`,
      );
    for (const r of state.locks) out(`  lock ${lockReportText(r)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
