import { MOVE_STAGES, type MoveStageName } from '../../compile/move/stages.js';
import { lockReportText } from '../../run/events.js';
import { readMovePlanDir, type LoadedMovePlan } from '../../run/move-plan.js';
import { runMove, type MoveRunEvent } from '../../run/move-runner.js';
import { MOVE_FORWARD_STAGES, nextMoveStage, type MoveCleanupEnd, type MoveStates } from '../../run/move-state.js';
import { UserError } from '../../model/errors.js';
import { connectionConfig, redact } from '../connection.js';
import { errorEvent, eventEnvelope, stagesLine } from '../run-events.js';
import { resolveConnection } from '../../run/connection-config.js';
import { progressPrinter } from '../progress.js';
import { shellWord } from '../next-steps.js';

/** The last line of a run that cleaned a move up, by what the cleanup ended. */
const CLEANED_UP: { readonly [E in MoveCleanupEnd]: string } = {
  moved: 'moved; cleaned up on both sides',
  reverted: "reverted; cleaned up on both sides (the target's tables keep refusing writes)",
  'revert-given-up':
    "the revert is given up: the target is live, the source's tables keep refusing writes; cleaned up on both sides",
};

/** Where a plain `run` of a move stops: after the cut-over; the cleanups drop the FDW objects and the capture. */
export const MOVE_DEFAULT_UNTIL: MoveStageName = 'cutover';

export interface MoveRunArgs {
  readonly plan: string;
  /** The source (else DATABASE_URL and the PG* variables, as for a rebuild). */
  readonly url?: string;
  readonly targetUrl?: string;
  readonly until?: string;
  readonly stage?: string;
  readonly expectHash?: string;
  readonly events?: boolean;
  /** Not for move plans yet: refused rather than ignored. */
  readonly jobs?: number;
  readonly parallelTables?: number;
}

/** The target's connection: only from --target-url (the PG* variables would name the source). */
export function targetConnection(targetUrl: string | undefined, plan: string) {
  if (targetUrl === undefined) {
    throw new UserError(
      'BAD_ARGUMENT',
      `${plan} is a move plan: its stages run on two clusters; give the target with --target-url (and the source with --url, DATABASE_URL or the PG* variables)`,
    );
  }
  return resolveConnection(targetUrl);
}

function moveStageArg(value: string | undefined, what: '--until' | '--stage'): MoveStageName | undefined {
  if (value === undefined) return undefined;
  const names: readonly string[] =
    what === '--until' ? MOVE_FORWARD_STAGES : [...new Set(MOVE_STAGES.map((r) => r.stage))];
  if (!names.includes(value))
    throw new UserError('BAD_ARGUMENT', `${what} of a move plan takes one of ${names.join(', ')}, not ${value}`);
  return value as MoveStageName;
}

/** `shadowpack run --plan DIR --target-url URL` for a move plan: every stage on its side. */
export async function runMoveCommand(
  args: MoveRunArgs,
  out: (line: string) => void,
  err: (text: string) => void,
  isTty: boolean,
): Promise<void> {
  let plan: LoadedMovePlan | null = null;
  let stage: string | null = null;
  try {
    if (args.jobs !== undefined || args.parallelTables !== undefined) {
      throw new UserError(
        'BAD_ARGUMENT',
        `${args.jobs !== undefined ? '--jobs' : '--parallel-tables'} does not apply to a move plan yet: its backfill runs in one session; leave it out`,
      );
    }
    plan = readMovePlanDir(args.plan);
    const target = targetConnection(args.targetUrl, args.plan);
    const until = moveStageArg(args.until, '--until');
    const only = moveStageArg(args.stage, '--stage');
    const wrap = eventEnvelope(plan);
    const printer = args.events ? (e: object) => out(JSON.stringify(wrap(e))) : progressPrinter(err, isTty);
    const show = (e: MoveRunEvent) => {
      if (e.type === 'stage-start') stage = e.stage;
      printer(e);
    };
    const summary = await runMove({
      plan,
      source: connectionConfig(args.url),
      target,
      env: process.env,
      ...(only !== undefined ? { stage: only } : { until: until ?? MOVE_DEFAULT_UNTIL }),
      ...(args.expectHash !== undefined ? { expectHash: args.expectHash } : {}),
      onEvent: show,
    });
    if (args.events) {
      out(
        JSON.stringify(
          wrap({
            type: 'summary',
            stages: summary.stages,
            finished: summary.finished,
            cleanedUp: summary.cleanedUp,
            source: summary.states.source?.stage ?? null,
            target: summary.states.target?.stage ?? null,
            locks: summary.locks,
          }),
        ),
      );
      return;
    }
    out(stagesLine(summary.stages));
    for (const r of summary.locks) out(`lock ${lockReportText(r)}`);
    const group = plan.manifest.tables.map((t) => `${t.schema}.${t.name}`).join(', ');
    if (summary.finished)
      out(`${group}: ${only === 'abort' ? 'move aborted' : CLEANED_UP[summary.cleanedUp ?? 'moved']}`);
    else if (only === 'revert' && summary.states.source?.stage === 'reverted')
      out(`${group}: reverted; the source is live again and the target's tables refuse writes`);
    else out(moveNextLine(summary.states, args));
  } catch (e) {
    if (args.events) {
      out(JSON.stringify(eventEnvelope(plan)(errorEvent(e, stage))));
    }
    throw e;
  }
}

/** The command that goes on from here (URLs without their passwords). */
export function moveNextLine(states: MoveStates, args: Pick<MoveRunArgs, 'plan' | 'url' | 'targetUrl'>): string {
  const base = `shadowpack run --plan ${shellWord(args.plan)}${args.url !== undefined ? ` --url ${shellWord(redact(args.url))}` : ''}${args.targetUrl !== undefined ? ` --target-url ${shellWord(redact(args.targetUrl))}` : ''}`;
  const next = nextMoveStage(states);
  if (next.kind === 'start') return `next: preflight and setup (${base})`;
  const r = next.rule;
  const until =
    r.kind === 'revert' ? ' --stage revert' : r.stage === 'cleanup' ? ' --until cleanup' : ` --until ${r.stage}`;
  return `next: ${r.file} (${r.stage} on the ${r.side}): ${base}${until}`;
}
