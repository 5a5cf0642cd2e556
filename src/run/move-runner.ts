import type pg from 'pg';
import type { DatabaseError } from 'pg';
import {
  MOVE_BINDING_FILES,
  MOVE_STAGES,
  type MoveSide,
  type MoveStageName,
  type MoveStageRule,
} from '../compile/move/stages.js';
import { UserError } from '../model/errors.js';
import { connectClient, type ConnectionConfig } from './connect.js';
import { noticeEvent, type LockReport, type RunEventOf } from './events.js';
import { scriptParts, type ScriptPart } from './includes.js';
import { moveMetaCommands } from './move-meta.js';
import { copyIn } from './copy-in.js';
import { checkMovePlanIntegrity, type LoadedMovePlan } from './move-plan.js';
import {
  MOVE_FORWARD_STAGES,
  moveFenceTrigger,
  moveFinished,
  nextMoveStage,
  nextRevertStage,
  readMoveSide,
  cleanupEnds,
  revertMayBeGivenUp,
  revertUnderWay,
  type MoveCleanupEnd,
  type MoveStates,
} from './move-state.js';
import { splitSql, type SqlStatement } from '../model/split-sql.js';

/** A stage file named by stage and side, as events and summaries name it: `setup.target`. */
export type MoveStageLabel = `${MoveStageName}.${MoveSide}`;
export type MoveRunEvent = RunEventOf<MoveStageLabel>;

export interface MoveRunRequest {
  readonly plan: LoadedMovePlan;
  readonly source: ConnectionConfig;
  readonly target: ConnectionConfig;
  /** Run forward stages up to and including this one (both sides' files of it); cleanup when omitted. */
  readonly until?: MoveStageName;
  /** Run exactly this stage: its files in plan order (abort: target, then source). */
  readonly stage?: MoveStageName;
  readonly expectHash?: string;
  /** Where `\getenv` reads (SHADOWPACK_FDW_PASSWORD for the user mapping); none when omitted. */
  readonly env?: NodeJS.ProcessEnv;
  readonly onEvent: (event: MoveRunEvent) => void;
}

export interface MoveRunSummary {
  readonly stages: readonly { readonly stage: MoveStageLabel; readonly ms: number }[];
  /** Both sides after the last stage that ran. */
  readonly states: MoveStates;
  /** Cleanup (or an abort) went through on both sides. */
  readonly finished: boolean;
  /** What the cleanup this run finished ended (null: none did): the move, a revert, or a revert given up. */
  readonly cleanedUp: MoveCleanupEnd | null;
  readonly locks: readonly LockReport[];
}

const labelOf = (rule: MoveStageRule): MoveStageLabel => `${rule.stage}.${rule.side}`;

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, column: offset - before.lastIndexOf('\n') };
}

/** A failed statement: the side, file, line, column, code, detail, hint (as the rebuild's runner says it). */
function stageError(
  plan: LoadedMovePlan,
  side: MoveSide,
  part: ScriptPart,
  st: SqlStatement,
  err: DatabaseError,
): UserError {
  const pos = err.position ? Number(err.position) - 1 : 0;
  const { line, column } = lineAndColumn(part.fileText, part.base + st.offset + Math.max(0, pos));
  const parts = [`${plan.dir}/${part.file}:${line}:${column} (on the ${side}): ${err.message}`];
  if (err.code) parts.push(`(SQLSTATE ${err.code})`);
  if (err.detail) parts.push(`detail: ${err.detail}`);
  if (err.hint) parts.push(`hint: ${err.hint}`);
  return new UserError(
    'STAGE_FAILED',
    parts.join(' '),
    { file: part.file, line, column, sqlstate: err.code, side },
    { cause: err },
  );
}

/** A statement to send: from the file (as psql sends it), or the COPY of a `\copy` line with its data. */
export interface MoveStatement {
  readonly part: ScriptPart;
  readonly st: SqlStatement;
  /** COPY … FROM STDIN data (the FDW password of 02-setup.target.sql): sent as CopyData, never as text. */
  readonly copyData?: string;
}

/**
 * The statements of a stage file with its side's binding spliced in where it says \ir, as psql runs them;
 * the `\getenv`/`\if` block of 02-setup.target.sql becomes the COPY its `\copy` line sends, with the value as
 * its data (move-meta.ts).
 */
export function moveStageStatements(
  plan: LoadedMovePlan,
  rule: MoveStageRule,
  env: NodeJS.ProcessEnv = {},
): MoveStatement[] {
  const script = plan.files.get(rule.file);
  if (script === undefined) throw new UserError('PLAN_INVALID', `the plan has no ${rule.file}`);
  const binding = MOVE_BINDING_FILES[rule.side];
  // Only its own side's binding may be included: a source script can never pull in the target's checks.
  const includable = new Map([[binding, plan.files.get(binding)!]]);
  const { text, injections } = moveMetaCommands(rule.file, script, env);
  const statements: MoveStatement[] = scriptParts(rule.file, text, includable).flatMap((part) =>
    splitSql(part.text).map((st) => ({ part, st })),
  );
  for (const inj of [...injections].reverse()) {
    // Before the first statement of the file itself that starts after the line psql would have run.
    const at = statements.findIndex(({ part, st }) => part.file === rule.file && part.base + st.offset > inj.offset);
    const index = at < 0 ? statements.length : at;
    const part = statements[index]?.part ?? statements.at(-1)!.part;
    const st: SqlStatement = { text: inj.copy, line: 0, offset: inj.offset - part.base, leadingComments: [] };
    statements.splice(index, 0, { part, st, copyData: inj.data });
  }
  return statements;
}

function configOf(req: MoveRunRequest, side: MoveSide): ConnectionConfig {
  return side === 'source' ? req.source : req.target;
}

/** Runs one stage file on its side in a fresh session, statement by statement, as psql -f would. */
async function runStageFile(req: MoveRunRequest, rule: MoveStageRule): Promise<number> {
  const label = labelOf(rule);
  const statements = moveStageStatements(req.plan, rule, req.env);
  req.onEvent({ type: 'stage-start', stage: label, file: rule.file });
  const started = Date.now();
  const client = await connectClient(configOf(req, rule.side));
  client.on('notice', (n) => req.onEvent(noticeEvent(label, n.message ?? '')));
  try {
    for (const { part, st, copyData } of statements) {
      try {
        if (copyData !== undefined) await copyIn(client, st.text, copyData);
        else await client.query(st.text);
      } catch (e) {
        // The server ending the session (terminate, shutdown, crash) or a lost connection: not the statement's fault.
        const code = e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
        const ended = code !== undefined && /^(57P0[1-3]|08)/.test(code);
        const severity = e instanceof Error && 'severity' in e ? e.severity : undefined;
        if (severity !== undefined && !ended) throw stageError(req.plan, rule.side, part, st, e as DatabaseError);
        if (e instanceof Error) {
          // The server's own sessions end with FATAL; an ERROR with such a code is postgres_fdw reporting that
          // its session on the other side ended (that server restarted or terminated it): this side is fine.
          const other: MoveSide = rule.side === 'source' ? 'target' : 'source';
          const link = severity === 'ERROR';
          const why = e.message.split('\n')[0]!.trim();
          throw new UserError(
            'CONNECTION_FAILED',
            link
              ? `the ${rule.side} lost its connection to the ${other} during ${rule.file} (${why}); the stage is safe to resume: run the same command again once the ${other} is back`
              : `lost the connection to the ${rule.side} during ${rule.file} (${why}); the stage is safe to resume: run the same command again once the server is back`,
            { stage: label },
            { cause: e },
          );
        }
        throw e;
      }
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  const ms = Date.now() - started;
  req.onEvent({ type: 'stage-end', stage: label, ms });
  return ms;
}

async function withSides<T>(req: MoveRunRequest, fn: (source: pg.Client, target: pg.Client) => Promise<T>): Promise<T> {
  const source = await connectClient(req.source);
  try {
    const target = await connectClient(req.target);
    try {
      return await fn(source, target);
    } finally {
      await target.end().catch(() => undefined);
    }
  } finally {
    await source.end().catch(() => undefined);
  }
}

/** Both sides' states, each read on its own side. */
export async function currentMoveStates(req: Pick<MoveRunRequest, 'plan' | 'source' | 'target'>): Promise<MoveStates> {
  return withSides(req as MoveRunRequest, async (s, t) => ({
    source: await readMoveSide(s, req.plan.manifest.runId),
    target: await readMoveSide(t, req.plan.manifest.runId),
  }));
}

const key = (s: MoveStates): string => `${s.source?.stage ?? '-'}/${s.target?.stage ?? '-'}`;

/** Neither side has a run: refuses when this move already ran to its end (moved, or reverted). */
async function refuseEnded(req: MoveRunRequest): Promise<void> {
  const runId = req.plan.manifest.runId;
  if (await withSides(req, (s) => moveFinished(s, runId))) {
    throw new UserError(
      'RUN_STATE',
      `this move is done: neither side has a run left and the source's tables carry its fence (trigger ${moveFenceTrigger(runId)}); a plan runs once: the moved tables are on the target`,
    );
  }
  if (await withSides(req, (_, t) => moveFinished(t, runId))) {
    throw new UserError(
      'RUN_STATE',
      `this move was reverted: neither side has a run left and the target's tables carry its fence (trigger ${moveFenceTrigger(runId)}); a plan runs once: the tables are on the source`,
    );
  }
}

/**
 * A revert file that refused (its own RAISE, SQLSTATE P0001) while the revert may still be given up: the error
 * names the runner's way to do that beside the file's hint, which names the psql files.
 */
async function namingGiveUp(req: MoveRunRequest, e: unknown): Promise<unknown> {
  if (!(e instanceof UserError) || e.code !== 'STAGE_FAILED' || e.details['sqlstate'] !== 'P0001') return e;
  const states = await currentMoveStates(req).catch(() => null);
  if (states === null || !revertMayBeGivenUp(states)) return e;
  return new UserError(
    'STAGE_FAILED',
    `${e.message}${e.message.endsWith('.') ? ' With' : '; with'} the runner: --stage cleanup gives the revert up (the source is not live yet), --stage revert tries again`,
    e.details,
    { cause: e },
  );
}

/**
 * `--stage cleanup`: 08-cleanup.target.sql, then 08-cleanup.source.sql, each only on a side that still has a run
 * (an interrupted cleanup goes on). During a revert this gives it up as the files do with psql (the target live
 * again, the source keeping its fence); once the revert made the source live it refuses before anything runs.
 */
async function cleanupStage(
  req: MoveRunRequest,
  runRule: (r: MoveStageRule) => Promise<void>,
): Promise<{ states: MoveStates; finished: boolean; cleanedUp: MoveCleanupEnd | null }> {
  const states = await currentMoveStates(req);
  const src = states.source?.stage ?? 'no run';
  const tgt = states.target?.stage ?? 'no run';
  if (states.source === null && states.target === null) {
    await refuseEnded(req);
    throw new UserError('RUN_STATE', 'neither side has a run of this move: there is nothing to clean up');
  }
  if (revertUnderWay(states) && !revertMayBeGivenUp(states))
    throw new UserError(
      'RUN_STATE',
      `the revert made the source live (source "${src}", target "${tgt}"), so it cannot be given up: finish it with --stage revert (it only tells the target), then --stage cleanup`,
    );
  for (const r of MOVE_STAGES.filter(
    (x) => x.stage === 'cleanup' && req.plan.manifest.stages.some((s) => s.file === x.file),
  )) {
    // A side with no run was cleaned up already (the other one still has its run, checked above).
    if (states[r.side] === null) continue;
    await runRule(r);
  }
  const after = await currentMoveStates(req);
  const finished = after.source === null && after.target === null;
  return { states: after, finished, cleanedUp: finished ? cleanupEnds(states) : null };
}

/**
 * Executes a move plan: checks every file against plan.json, then runs each stage file on its side.
 * Where to start comes from both clusters' state, so a second `run` after a crash continues the first.
 */
export async function runMove(request: MoveRunRequest): Promise<MoveRunSummary> {
  checkMovePlanIntegrity(request.plan, request.expectHash);
  const locks: LockReport[] = [];
  const req: MoveRunRequest = {
    ...request,
    onEvent: (e) => {
      if (e.type === 'lock-report') locks.push(e.report);
      request.onEvent(e);
    },
  };
  const stages: { stage: MoveStageLabel; ms: number }[] = [];
  const inPlan = (r: MoveStageRule): boolean => req.plan.manifest.stages.some((s) => s.file === r.file);
  const runRule = async (r: MoveStageRule): Promise<void> => {
    if (!inPlan(r))
      throw new UserError(
        'PLAN_INVALID',
        `the plan has no ${r.file}, which the move needs next; make the plan again with this version`,
      );
    stages.push({ stage: labelOf(r), ms: await runStageFile(req, r) });
  };

  if (req.stage === 'revert') {
    if (!req.plan.manifest.stages.some((s) => s.stage === 'revert'))
      throw new UserError(
        'BAD_ARGUMENT',
        `${req.plan.dir} was planned without --reversible, so its target captures nothing after the cut-over and there is no revert: going back is a move in the other direction (plan one from the target)`,
      );
    let states = await currentMoveStates(req);
    for (let r = nextRevertStage(states); r !== null; r = nextRevertStage(states)) {
      await runRule(r).catch(async (e: unknown) => {
        throw await namingGiveUp(req, e);
      });
      const after = await currentMoveStates(req);
      if (key(after) === key(states))
        throw new UserError(
          'RUN_STATE',
          `${stages.at(-1)!.stage} ended without recording progress (source "${after.source?.stage ?? 'no run'}", target "${after.target?.stage ?? 'no run'}"); see the notices above`,
        );
      states = after;
    }
    if (stages.length === 0 && !(states.source?.stage === 'reverted' && states.target?.stage === 'reverted'))
      throw new UserError(
        'RUN_STATE',
        `no revert goes on from source "${states.source?.stage ?? 'no run'}" and target "${states.target?.stage ?? 'no run'}": a revert starts after the cut-over (both at "cutover") and before 08-cleanup.target.sql ends the revert window`,
      );
    return { stages, states, finished: false, cleanedUp: null, locks };
  }

  if (req.stage === 'cleanup') return { stages, ...(await cleanupStage(req, runRule)), locks };

  if (req.stage !== undefined) {
    for (const r of MOVE_STAGES.filter((x) => x.stage === req.stage && inPlan(x))) await runRule(r);
    const states = await currentMoveStates(req);
    return {
      stages,
      states,
      finished: req.stage === 'abort' && states.source === null && states.target === null,
      cleanedUp: null,
      locks,
    };
  }

  const until = req.until ?? 'cleanup';
  const untilIndex = MOVE_FORWARD_STAGES.indexOf(until);
  if (untilIndex < 0)
    throw new UserError(
      'BAD_ARGUMENT',
      `--until takes a forward stage of a move (${MOVE_FORWARD_STAGES.join(', ')}), not ${until}`,
    );
  const rule = (stage: MoveStageName, side: MoveSide): MoveStageRule =>
    MOVE_STAGES.find((r) => r.stage === stage && r.side === side)!;
  let states = await currentMoveStates(req);
  let ended: 'cleanup' | 'abort' | null = null;
  let cleanedUp: MoveCleanupEnd | null = null;
  for (;;) {
    const next = nextMoveStage(states);
    if (next.kind === 'start') {
      // Nothing on either side: a new move, unless this invocation just finished one.
      if (ended !== null) return { stages, states, finished: true, cleanedUp, locks };
      await refuseEnded(req);
      await runRule(rule('preflight', 'source'));
      await runRule(rule('preflight', 'target'));
      if (untilIndex === 0) break;
      await runRule(rule('setup', 'source'));
    } else {
      const r = next.rule;
      if (r.kind === 'revert')
        throw new UserError(
          'RUN_STATE',
          `a revert of this move is under way (source "${states.source?.stage ?? 'no run'}", target "${states.target?.stage ?? 'no run'}"): go on with --stage revert (next: ${r.file} on the ${r.side})${revertMayBeGivenUp(states) ? ', or give it up with --stage cleanup (the source is not live yet: the target stays or becomes live, the source keeps its fence)' : ''}`,
        );
      if (r.kind === 'abort') {
        // An interrupted abort is finished, never gone past.
        await runRule(r);
        ended = 'abort';
      } else {
        if (MOVE_FORWARD_STAGES.indexOf(r.stage) > untilIndex) break;
        if (r.stage === 'cleanup') cleanedUp ??= cleanupEnds(states);
        await runRule(r);
        if (r.stage === 'cleanup') ended = 'cleanup';
      }
    }
    const after = await currentMoveStates(req);
    if (key(after) === key(states)) {
      throw new UserError(
        'RUN_STATE',
        `${stages.at(-1)!.stage} ended without recording progress (source "${after.source?.stage ?? 'no run'}", target "${after.target?.stage ?? 'no run'}"); see the notices above`,
      );
    }
    states = after;
    if (ended === 'cleanup' && states.source === null && states.target === null)
      return { stages, states, finished: true, cleanedUp, locks };
  }
  return { stages, states, finished: false, cleanedUp: null, locks };
}
