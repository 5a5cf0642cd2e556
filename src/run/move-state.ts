import type pg from 'pg';
import { MOVE_STAGES, type MoveSide, type MoveStageName, type MoveStageRule } from '../compile/move/stages.js';
import { TOOL_SCHEMA } from '../model/names.js';
import { UserError } from '../model/errors.js';

/** The forward stages of a move in order (each may have a file per side); `--until` takes one of them. */
export const MOVE_FORWARD_STAGES: readonly MoveStageName[] = [
  ...new Set(MOVE_STAGES.filter((r) => r.kind === 'forward' || r.kind === 'check').map((r) => r.stage)),
];

/** A side's run as its state table records it (src/compile/move/stages.ts), or null: no run there. */
export interface MoveSideState {
  readonly stage: string;
  /** Every column of the state row, for status (numbers and snapshots as the server prints them). */
  readonly row: Readonly<Record<string, unknown>>;
  /** Target: one row per group table of the backfill table, when there is one. */
  readonly backfill: readonly Readonly<Record<string, unknown>>[];
}

export interface MoveStates {
  readonly source: MoveSideState | null;
  readonly target: MoveSideState | null;
}

/** Reads `shadowpack.move_<runId>` (and the target's `_backfill`) on one side; null when there is no run. */
export async function readMoveSide(client: pg.ClientBase, runId: string): Promise<MoveSideState | null> {
  const state = `move_${runId}`;
  const r = await client.query<{ state: string | null; backfill: string | null }>(
    `SELECT to_regclass(format('%I.%I', $1::text, $2::text))::text AS state, to_regclass(format('%I.%I', $1::text, $3::text))::text AS backfill`,
    [TOOL_SCHEMA, state, `${state}_backfill`],
  );
  const names = r.rows[0]!;
  if (names.state === null) return null;
  // A cleanup or abort on this side may drop the tables between the look-up and the read (the read waits for its
  // lock, then finds no table): no run there, as if the look-up had come a moment later.
  const gone = (e: unknown): null => {
    if (e instanceof Error && 'code' in e && e.code === '42P01') return null;
    throw e;
  };
  const rows = await client.query<Record<string, unknown>>(`SELECT * FROM ${names.state}`).catch(gone);
  if (rows === null) return null;
  if (rows.rows.length !== 1) {
    throw new UserError(
      'RUN_STATE',
      `${names.state} holds ${rows.rows.length} rows, not one; the run's state was changed by hand (abort the move with its plan)`,
    );
  }
  const row = rows.rows[0]!;
  const backfill =
    names.backfill === null
      ? []
      : ((await client.query<Record<string, unknown>>(`SELECT * FROM ${names.backfill} ORDER BY 1`).catch(gone))
          ?.rows ?? []);
  return { stage: String(row['stage']), row, backfill };
}

/** What to run next, from both sides' states. */
export type MoveNext =
  | { readonly kind: 'run'; readonly rule: MoveStageRule }
  /** No run on either side: preflight (both sides), then setup. */
  | { readonly kind: 'start' };

const stateOf = (states: MoveStates, side: MoveSide): string | null => states[side]?.stage ?? null;

function mayStart(rule: MoveStageRule, states: MoveStates): boolean {
  if (rule.from === 'any') return false;
  if (!rule.from.includes(stateOf(states, rule.side))) return false;
  return rule.needs === undefined || rule.needs.states.includes(stateOf(states, rule.needs.side) ?? '');
}

const rule = (stage: MoveStageName, side: MoveSide): MoveStageRule =>
  MOVE_STAGES.find((r) => r.stage === stage && r.side === side)!;

/**
 * The next stage file of a move, from the state of both sides (the stage machine of
 * src/compile/move/stages.ts decides). An interrupted abort is finished, never gone past: target first,
 * then source. Forward, the first stage (in plan order) that may start from its side's state, needs
 * the other side where it must be, and has not recorded its own state yet. When none has, a stage
 * that may run again from where it is and did not finish its cross-side step (catch-up ends by marking
 * the source ready for the fence in its own transaction) runs again: every stage is safe to re-run.
 */
export function nextMoveStage(states: MoveStates): MoveNext {
  const src = stateOf(states, 'source');
  const tgt = stateOf(states, 'target');
  if (tgt === 'aborting') return { kind: 'run', rule: rule('abort', 'target') };
  if (src === 'aborting' || src === 'target-aborted')
    return { kind: 'run', rule: rule('abort', tgt !== null ? 'target' : 'source') };
  if (src === null && tgt === null) return { kind: 'start' };
  if (src === null && tgt !== 'cutover' && tgt !== 'reverting' && tgt !== 'reverted') {
    // The source's capture is gone (aborted or cleaned up there) while the target still depends on it:
    // setting the source up again would miss every write in between.
    throw new UserError(
      'RUN_STATE',
      `the source has no run of this move, but the target is at "${tgt ?? ''}": the source part was aborted or cleaned up; remove the target's part with --stage abort (90-abort.target.sql) and plan the move again`,
    );
  }
  if (tgt === null && src !== 'setup' && src !== 'cutover' && src !== 'reverting' && src !== 'reverted') {
    throw new UserError(
      'RUN_STATE',
      `the target has no run of this move, but the source is at "${src ?? ''}": the target part was removed; undo the source part with --stage abort (90-abort.source.sql) and plan the move again`,
    );
  }
  // A revert under way (--reversible) goes on only with --stage revert; its next file is named here.
  if (revertUnderWay(states)) {
    const r = nextRevertStage(states);
    if (r !== null) return { kind: 'run', rule: r };
  }
  // setup.source only starts a move (both sides empty, above).
  const forward = MOVE_STAGES.filter((r) => r.kind === 'forward' && !(r.stage === 'setup' && r.side === 'source'));
  const fresh = forward.find((r) => mayStart(r, states) && r.records !== stateOf(states, r.side));
  if (fresh !== undefined) return { kind: 'run', rule: fresh };
  const again = [...forward].reverse().find((r) => mayStart(r, states));
  if (again !== undefined) return { kind: 'run', rule: again };
  throw new UserError(
    'RUN_STATE',
    `no stage of the move goes on from source "${src ?? 'no run'}" and target "${tgt ?? 'no run'}"; check shadowpack status, or abort (--stage abort) before cut-over`,
  );
}

/** A revert has begun and not yet made the source live and told the target. */
export function revertUnderWay(states: MoveStates): boolean {
  const src = stateOf(states, 'source');
  const tgt = stateOf(states, 'target');
  return src === 'reverting' || tgt === 'reverting' || tgt === 'revert-fenced';
}

/**
 * Whether 08-cleanup.target.sql, then 08-cleanup.source.sql, give up the revert under way (the target live again,
 * the source keeping its fence), as the files decide: before the target's fence always; once it is fenced
 * (`revert-fenced`) only while the source is not live yet (stages.ts: cleanup.target's `revertGivenUp` tell,
 * the stage it moves the source from and to). False once the revert made the source live: 93-revert.source.sql
 * then only has to tell the target, and cleanup refuses until it has.
 */
export function revertMayBeGivenUp(states: MoveStates): boolean {
  if (!revertUnderWay(states)) return false;
  if (stateOf(states, 'target') !== 'revert-fenced') return true;
  const tell = rule('cleanup', 'target').tells!['revertGivenUp']!;
  return [...tell.from, tell.records].includes(stateOf(states, 'source') ?? '');
}

/** What a move's cleanup ends: the move (the target live), a finished revert, or a revert given up. */
export type MoveCleanupEnd = 'moved' | 'reverted' | 'revert-given-up';

/**
 * What a cleanup that starts from these states ends: a revert under way is given up (the target stays live, as
 * after the move); after a revert (either side 'reverted', the other cleaned up or told) the revert; else the move.
 */
export function cleanupEnds(states: MoveStates): MoveCleanupEnd {
  if (revertUnderWay(states)) return 'revert-given-up';
  return stateOf(states, 'source') === 'reverted' || stateOf(states, 'target') === 'reverted' ? 'reverted' : 'moved';
}

/**
 * The next file of a revert (`run --stage revert`, a plan made with --reversible), from both sides' states:
 * the first revert file that may start from its side's state, finds the other side where it needs it, and
 * has not recorded its own state yet; or the last one again when it made the source live but did not tell
 * the target (it is safe to run again). Null: nothing of the revert goes on from here.
 */
export function nextRevertStage(states: MoveStates): MoveStageRule | null {
  const rules = MOVE_STAGES.filter((r) => r.kind === 'revert');
  const fresh = rules.find((r) => mayStart(r, states) && r.records !== stateOf(states, r.side));
  if (fresh !== undefined) return fresh;
  const last = rules.at(-1)!;
  const told = Object.values(last.tells ?? {}).map((t) => t.records);
  const other = stateOf(states, last.side === 'source' ? 'target' : 'source');
  return mayStart(last, states) && !told.includes(other ?? '') ? last : null;
}

/**
 * --reversible: the keys the target's change logs hold (what a revert would carry back, less what its rounds
 * applied and pruned), or null when the target has no such log (no cut-over yet, or cleaned up).
 */
export async function readRevertBacklog(target: pg.ClientBase, runId: string, tables: number): Promise<number | null> {
  let total: number | null = null;
  for (let n = 1; n <= tables; n++) {
    const r = await target.query<{ name: string | null }>(
      `SELECT to_regclass(format('%I.%I', $1::text, $2::text))::text AS name`,
      [TOOL_SCHEMA, `mlog_${runId}_${n}`],
    );
    const name = r.rows[0]!.name;
    if (name === null) continue;
    const c = await target.query<{ n: string }>(`SELECT count(*) AS n FROM ${name}`);
    total = (total ?? 0) + Number(c.rows[0]!.n);
  }
  return total;
}

/** Both sides' states, read on the two connections. */
export async function readMoveStates(source: pg.ClientBase, target: pg.ClientBase, runId: string): Promise<MoveStates> {
  const [s, t] = await Promise.all([readMoveSide(source, runId), readMoveSide(target, runId)]);
  return { source: s, target: t };
}

/** The fence trigger a move leaves on the source's tables for good (named in src/compile/move/context.ts). */
export const moveFenceTrigger = (runId: string): string => `shadowpack_mfence_${runId}`;

/**
 * Whether this move already ran to the end: neither side has a run, and the tables on this side still carry
 * its fence (cleanup keeps it: on the source after a move, on the target after a revert). Without this, both
 * sides empty would look like a move not started.
 */
export async function moveFinished(source: pg.ClientBase, runId: string): Promise<boolean> {
  const r = await source.query<{ fenced: boolean }>(
    'SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgname = $1) AS fenced',
    [moveFenceTrigger(runId)],
  );
  return r.rows[0]!.fenced;
}
