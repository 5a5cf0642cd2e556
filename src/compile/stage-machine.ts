import { literal } from '../model/quote.js';
import { ALL_STAGES, type StageName } from './stages.js';

/**
 * The stage machine, declared once: which state of the run (shadowpack.runs.stage) each stage may
 * start from and what it records. The guard function, the templates' own stage checks and their
 * UPDATEs of the stage, the runner's next stage and the "Requires" line are all derived from it.
 */

/** What shadowpack.runs.stage can say, in the order a run goes through them. */
export const RUN_STATES = [
  'setup-started',
  'setup',
  'backfill',
  'build',
  'catchup',
  'verified',
  'swap',
  'cleanup-started',
  'aborting',
  'reverted',
] as const;
export type RunStateName = (typeof RUN_STATES)[number];

/**
 * Which of the tool's triggers a stage needs intact: before the swap the capture on the table
 * (a missed write would be missing from the copy), after it the reverse capture on the rebuilt
 * table (a missed write would be missing from the old table a revert brings back).
 */
export type TriggerSide = 'capture' | 'reverse';

/** 'check' reads only; 'forward' moves the run on; 'abort' and 'revert' are the two ways back. */
export type StageKind = 'check' | 'forward' | 'abort' | 'revert';

/** The database a stage runs on. A plan that moves a table to another cluster adds 'target'. */
export type StageSide = 'source';

export interface StageRule {
  readonly stage: StageName;
  readonly kind: StageKind;
  readonly side: StageSide;
  /** The states it may start from; null: no run recorded. 'any': it only reads (preflight). */
  readonly from: readonly (RunStateName | null)[] | 'any';
  /** What it records when its work is done (or, for cleanup and abort, past its point of no return). */
  readonly records: RunStateName | null;
  /** What it records when its check fails (verify), if that differs. */
  readonly recordsOnFailure?: RunStateName;
  /** What it records first, in the same transaction (setup). */
  readonly recordsFirst?: RunStateName;
  /** It removes the run at the end: a run left in `records` was interrupted in this stage. */
  readonly removesRun?: boolean;
  /** A run interrupted in these states can only be finished by this stage. */
  readonly finishes?: readonly RunStateName[];
  /**
   * Its UPDATE of the stage says `AND stage IN (from)`: the guard ran in an earlier transaction, so
   * an abort may have come in between (the swap and revert check again under their lock, setup and
   * cleanup hold the table's lock since their own check).
   */
  readonly recordOnlyFrom?: boolean;
  /** Checked by the guard function (checkpoints: the stage's name, and `<name>-locked` under its lock). */
  readonly guard?: {
    readonly checkpoints: readonly string[];
    readonly checkFingerprint: boolean;
    readonly triggers: TriggerSide;
    /** Said when the stage already ran to the end (null: nothing to say, the state tells). */
    readonly doneHint: string | null;
    /** Said when the run is not at a state it may start from: what to do instead. */
    readonly notNowHint: string;
  };
}

const NEXT = 'go on with the next stage';
// Newcomer review finding 20: a refusal says what to do instead, and never suggests abort after the swap.
const REVERT_NOT_NOW =
  'Revert runs between the swap and cleanup. Before the swap, the abort stage removes the run and leaves the table as it was; once cleanup has started, only cleanup (run again) is left.';
const FORWARD_NOT_NOW = 'Run the stages in their order; shadowpack status --plan DIR names the next one.';
const SWAP_DONE =
  'the swap is done: go on with the cleanup stage (it validates the re-pointed foreign keys again), or revert';

/** The machine of a plan; the swap starts from a passed verify when the plan has one. */
export function stageMachine(options: { readonly verifyRanges: number }): readonly StageRule[] {
  const src = 'source' as const;
  const beforeSwap: RunStateName[] = ['setup-started', 'setup', 'backfill', 'build', 'catchup', 'verified'];
  return [
    { stage: 'preflight', kind: 'check', side: src, from: 'any', records: null },
    { stage: 'setup', kind: 'forward', side: src, from: [null], recordsFirst: 'setup-started', records: 'setup' },
    // Recorded by the backfill procedure (setup.sql.hbs), once, by the session that settles the log: from setup only.
    {
      stage: 'backfill',
      kind: 'forward',
      side: src,
      from: ['setup', 'backfill'],
      records: 'backfill',
      guard: {
        checkpoints: ['backfill'],
        checkFingerprint: true,
        triggers: 'capture',
        doneHint: NEXT,
        notNowHint: FORWARD_NOT_NOW,
      },
    },
    {
      stage: 'build',
      kind: 'forward',
      side: src,
      from: ['backfill', 'build'],
      records: 'build',
      recordOnlyFrom: true,
      guard: {
        checkpoints: ['build'],
        checkFingerprint: true,
        triggers: 'capture',
        doneHint: NEXT,
        notNowHint: FORWARD_NOT_NOW,
      },
    },
    {
      stage: 'catchup',
      kind: 'forward',
      side: src,
      from: ['build', 'catchup'],
      records: 'catchup',
      recordOnlyFrom: true,
      guard: {
        checkpoints: ['catchup'],
        checkFingerprint: true,
        triggers: 'capture',
        doneHint: NEXT,
        notNowHint: FORWARD_NOT_NOW,
      },
    },
    // Failing, it sends the run back to catchup: only a passed verify lets the swap run.
    {
      stage: 'verify',
      kind: 'forward',
      side: src,
      from: ['catchup', 'verified'],
      records: 'verified',
      recordsOnFailure: 'catchup',
      guard: {
        checkpoints: ['verify'],
        checkFingerprint: true,
        triggers: 'capture',
        doneHint: NEXT,
        notNowHint: FORWARD_NOT_NOW,
      },
    },
    {
      stage: 'swap',
      kind: 'forward',
      side: src,
      from: options.verifyRanges > 0 ? ['verified'] : ['catchup'],
      records: 'swap',
      guard: {
        checkpoints: ['swap', 'swap-locked'],
        checkFingerprint: true,
        triggers: 'capture',
        doneHint: SWAP_DONE,
        notNowHint: FORWARD_NOT_NOW,
      },
    },
    {
      stage: 'cleanup',
      kind: 'forward',
      side: src,
      from: ['swap', 'cleanup-started'],
      records: 'cleanup-started',
      removesRun: true,
    },
    // Before the swap, and to finish an abort or a revert that stopped halfway.
    {
      stage: 'abort',
      kind: 'abort',
      side: src,
      from: [null, ...beforeSwap, 'aborting', 'reverted'],
      records: 'aborting',
      removesRun: true,
      finishes: ['aborting', 'reverted'],
    },
    // Under the revert's lock nobody can change the triggers any more, so what it checks there holds until commit.
    {
      stage: 'revert',
      kind: 'revert',
      side: src,
      from: ['swap'],
      records: 'reverted',
      guard: {
        checkpoints: ['revert', 'revert-locked'],
        checkFingerprint: false,
        triggers: 'reverse',
        doneHint: null,
        notNowHint: REVERT_NOT_NOW,
      },
    },
  ];
}

export function stageRule(machine: readonly StageRule[], stage: StageName): StageRule {
  const rule = machine.find((r) => r.stage === stage);
  if (rule === undefined) throw new Error(`internal error: stage ${stage} is not in the stage machine`);
  return rule;
}

function startStates(rule: StageRule): readonly (RunStateName | null)[] {
  return rule.from === 'any' ? [null, ...RUN_STATES] : rule.from;
}

/** The forward states in the order a run records them. */
const FORWARD_STATES: readonly RunStateName[] = RUN_STATES.filter((s) => s !== 'aborting' && s !== 'reverted');

/**
 * The states in which a stage already ran to the end: every later forward state, and the one it
 * records when it cannot start from it (the swap). A psql user re-running the file after an
 * interruption is told to go on rather than that it cannot run.
 */
export function doneStates(rule: StageRule): readonly RunStateName[] {
  if (rule.kind !== 'forward' || rule.records === null) return [];
  const from = startStates(rule);
  const at = FORWARD_STATES.indexOf(rule.records);
  return FORWARD_STATES.filter((s, i) => i > at || (i === at && !from.includes(s)));
}

/**
 * The stage that comes next on the forward path for a run in `state` (null: none recorded), among
 * the stages of this plan. A stage that removes the run resumes itself when interrupted; a run an
 * abort or a revert left halfway goes only to the stage that finishes it, never forward.
 */
export function nextStage(
  machine: readonly StageRule[],
  stages: readonly StageName[],
  state: string | null,
): StageName {
  const inPlan = machine.filter((r) => stages.includes(r.stage));
  const s = state as RunStateName | null;
  const resumed = inPlan.find(
    (r) => (s !== null && r.recordsFirst === s) || (r.removesRun === true && r.kind === 'forward' && r.records === s),
  );
  if (resumed !== undefined) return resumed.stage;
  const forward = inPlan.find((r) => {
    if (r.kind !== 'forward' && r.kind !== 'check') return false;
    if (r.from === 'any') return s === null;
    return r.from.includes(s) && r.records !== s;
  });
  if (forward !== undefined) return forward.stage;
  const finisher = inPlan.find((r) => s !== null && r.finishes?.includes(s));
  if (finisher !== undefined) return finisher.stage;
  throw new Error(`no stage of this plan goes on from "${String(state)}"`);
}

/** The guard function's rules, one per checkpoint, as its template gets them. */
export interface GuardRule {
  readonly stage: string;
  readonly allowed: string;
  readonly allowedText: string;
  readonly checkFingerprint: boolean;
  readonly triggers: TriggerSide;
  readonly done: string | null;
  readonly doneHint: string;
  /** The hint when the run is not at a stage this one may start from (a literal). */
  readonly notNowHint: string;
}

const sqlList = (states: readonly (string | null)[]): string => states.map((s) => literal(String(s))).join(', ');

export function guardRules(machine: readonly StageRule[]): GuardRule[] {
  return machine.flatMap((rule) => {
    const g = rule.guard;
    if (g === undefined) return [];
    const from = startStates(rule).filter((s): s is RunStateName => s !== null);
    const done = doneStates(rule);
    return g.checkpoints.map((stage) => ({
      stage,
      allowed: sqlList(from),
      allowedText: from.join(', '),
      checkFingerprint: g.checkFingerprint,
      triggers: g.triggers,
      done: done.length === 0 ? null : sqlList(done),
      doneHint: literal(g.doneHint ?? ''),
      notNowHint: literal(g.notNowHint),
    }));
  });
}

/** The states only the stages that finish them may start from (the guard refuses them first). */
export function interruptedStates(machine: readonly StageRule[]): readonly RunStateName[] {
  return machine.flatMap((r) => r.finishes ?? []);
}

/** What a stage needs, for the "Requires:" line: the stage that records the state it starts from. */
export function requiresText(machine: readonly StageRule[], stage: StageName): string {
  const rule = stageRule(machine, stage);
  if (rule.from === 'any') return 'nothing';
  if (rule.kind === 'abort') {
    const refused = RUN_STATES.filter((s) => !(rule.from as readonly (RunStateName | null)[]).includes(s));
    return `any stage before ${recordedBy(machine, refused[0]!).stage}`;
  }
  const first = rule.from[0];
  if (first === undefined || first === null) return 'no run on this table';
  const by = recordedBy(machine, first);
  return by.recordsOnFailure !== undefined ? `${by.stage}, passed` : by.stage;
}

function recordedBy(machine: readonly StageRule[], state: RunStateName): StageRule {
  const rule = machine.find((r) => r.records === state);
  if (rule === undefined) throw new Error(`internal error: no stage records "${state}"`);
  return rule;
}

/** What a stage's template renders its stage check and its UPDATE of the stage from. */
export interface StageRecord {
  /** The state it records, as a literal. */
  readonly state: string;
  /** On failure (verify), as a literal, or ''. */
  readonly failureState: string;
  /** The first state it records (setup), as a literal, or ''. */
  readonly firstState: string;
  /** `'a', 'b'` for `AND stage IN (…)` in its UPDATE, or '' when the UPDATE needs none. */
  readonly onlyFrom: string;
  /** The states it may start from, as literals. */
  readonly from: string;
  /** The run states it refuses (the complement of `from`), as literals. */
  readonly refused: string;
}

export function stageRecord(machine: readonly StageRule[], stage: StageName): StageRecord {
  const rule = stageRule(machine, stage);
  const from = startStates(rule).filter((s): s is RunStateName => s !== null);
  return {
    state: rule.records === null ? '' : literal(rule.records),
    failureState: rule.recordsOnFailure === undefined ? '' : literal(rule.recordsOnFailure),
    firstState: rule.recordsFirst === undefined ? '' : literal(rule.recordsFirst),
    onlyFrom: rule.recordOnlyFrom === true ? sqlList(from) : '',
    from: sqlList(from),
    refused: sqlList(RUN_STATES.filter((s) => !from.includes(s))),
  };
}

/** Every stage of the machine is a stage of the tool, once. */
export function checkMachine(machine: readonly StageRule[]): void {
  const names = machine.map((r) => r.stage);
  if (names.length !== ALL_STAGES.length || ALL_STAGES.some((s) => !names.includes(s)))
    throw new Error('internal error: the stage machine does not list every stage once');
}
