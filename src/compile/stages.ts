import type { RelationLock } from './step.js';

/** The stages of a plan, in forward order, then the two ways back. */
/** `verify` is in a plan only when it was asked for (`--verify-before-swap`). */
export const FORWARD_STAGES = [
  'preflight',
  'setup',
  'backfill',
  'build',
  'catchup',
  'verify',
  'swap',
  'cleanup',
] as const;
export const BACKWARD_STAGES = ['abort', 'revert'] as const;
export type ForwardStage = (typeof FORWARD_STAGES)[number];
export type BackwardStage = (typeof BACKWARD_STAGES)[number];
export type StageName = ForwardStage | BackwardStage;

export type HazardCode =
  | 'ACCESS_EXCLUSIVE_LOCK'
  | 'SHARE_ROW_EXCLUSIVE_LOCK'
  | 'NEEDS_DISK'
  | 'WAL_VOLUME'
  | 'FK_REVALIDATION'
  | 'TRUNCATE_BLOCKED'
  | 'WRITE_OVERHEAD'
  | 'REVERT_ENDS'
  | 'WAITS_FOR_OLD_SNAPSHOTS'
  | 'BACKFILL_ONE_TRANSACTION'
  | 'REFERENCING_KEY_NOT_WIDENED'
  | 'REVERT_UNAVAILABLE'
  | 'VIEWS_RECREATED'
  | 'FUNCTIONS_RECREATED'
  | 'PUBLICATION_MOVED'
  | 'LONG_SNAPSHOT'
  | 'STANDBY_SNAPSHOTS';

export const HAZARD_TEXT: { readonly [K in HazardCode]: string } = {
  ACCESS_EXCLUSIVE_LOCK:
    'takes ACCESS EXCLUSIVE on the table briefly; readers and writers wait at most one lock attempt',
  SHARE_ROW_EXCLUSIVE_LOCK: 'takes SHARE ROW EXCLUSIVE briefly (blocks writers, not readers) to create a trigger',
  NEEDS_DISK: 'needs free disk for a second copy of the table and its indexes',
  WAL_VOLUME: 'writes WAL about the size of the table and its indexes (replicas and archives must keep up)',
  FK_REVALIDATION:
    'foreign keys are re-pointed NOT VALID and validated afterwards, one per transaction, blocking no writer',
  TRUNCATE_BLOCKED: 'TRUNCATE of the table is refused until the run ends',
  WRITE_OVERHEAD: 'every write to the table also writes a change-log row until cleanup',
  REVERT_ENDS: 'after this stage the original table is gone; revert is no longer possible',
  WAITS_FOR_OLD_SNAPSHOTS:
    'waits (bounded) for sessions holding snapshots older than its last catch-up, and once it holds the lock gives it back and retries while a session holds a snapshot from before the lock in a transaction that goes on after its statement, or sits idle in a transaction with one (such a snapshot would read the table without the rows applied under the lock); a session of another role, whose state the running role cannot see without pg_read_all_stats, counts as soon as it holds any snapshot right after the lock. Not covered: a REPEATABLE READ or SERIALIZABLE transaction whose snapshot was taken while its statement queued behind the lock, or that began while the lock was held and reads the table only after the commit; it can miss the rows applied under the lock (at most about --swap-backlog keys; the lock report says how many)',
  STANDBY_SNAPSHOTS:
    'hot standbys: with hot_standby_feedback on, it first waits until every standby reports an xmin newer than its last catch-up (pg_stat_replication and pg_replication_slots show it to every role), but a standby transaction that takes its snapshot later, before the standby replays the commit, can still miss the rows applied under the lock; without hot_standby_feedback nothing is guaranteed: a standby REPEATABLE READ transaction that began before the swap replays can read the table empty or stale',
  BACKFILL_ONE_TRANSACTION:
    'to write rows in the requested order the backfill is one transaction: it holds one snapshot (vacuum waits) and an interruption starts the copy over',
  REFERENCING_KEY_NOT_WIDENED:
    'foreign key columns of other tables stay narrower than the widened key and overflow at the same point (plan them with --with-referencing)',
  REVERT_UNAVAILABLE:
    'the old shape cannot be computed from the new one, so writes after the swap cannot be carried back: revert is unavailable',
  VIEWS_RECREATED:
    "views over the table are re-created (CREATE OR REPLACE) in the swap transaction; they are locked too, so their readers wait like the table's",
  FUNCTIONS_RECREATED:
    'functions with BEGIN ATOMIC bodies that read the table are re-created (CREATE OR REPLACE) in the swap transaction',
  PUBLICATION_MOVED:
    'the table leaves and re-joins its publications in the swap transaction; changes are published under the same name, the copying is not',
  LONG_SNAPSHOT:
    'reads the whole table and the copy in one snapshot; vacuum cannot remove rows deleted meanwhile until it ends',
};

/**
 * A lock a stage's lock step takes up front (plan.json stages[].locks, the review's lock table): the
 * same relation lock a step declares (step.ts), and whether an application session can wait for it.
 */
export interface StageLock extends RelationLock {
  readonly blocksApplication: boolean;
}

export interface StageInfo {
  readonly name: StageName;
  readonly number: number;
  /** What follows the number in the file name: '' for most, 'b' for 04b-verify.sql. */
  readonly suffix: string;
  readonly file: string;
  readonly summary: string;
  /** 'one': the whole stage is one transaction; 'batches': it commits as it goes; 'several': a few separate ones. */
  readonly transaction: 'none' | 'one' | 'batches' | 'several';
  /** What it needs first, said in its header (from the stage machine, stage-machine.ts). */
  readonly requires: string;
  readonly offPath: boolean;
}

const INFO: {
  readonly [K in StageName]: Omit<StageInfo, 'name' | 'file' | 'suffix' | 'requires'> & { readonly suffix?: string };
} = {
  preflight: {
    number: 0,
    summary: 'read-only checks: server version, table fingerprint, privileges, leftovers',
    transaction: 'none',
    offPath: false,
  },
  setup: {
    number: 1,
    summary: 'create the copy, the change log, the functions, and the capture trigger on the table',
    transaction: 'one',
    offPath: false,
  },
  backfill: {
    number: 2,
    summary:
      'copy existing rows in committed batches of heap pages, leaving the rows written meanwhile to the catch-up',
    transaction: 'batches',
    offPath: false,
  },
  build: {
    number: 3,
    summary: 'build indexes and constraints on the copy (no CONCURRENTLY: nothing else writes it) and analyze it',
    transaction: 'several',
    offPath: false,
  },
  catchup: {
    number: 4,
    summary: 'apply the change log in rounds until it is small',
    transaction: 'batches',
    offPath: false,
  },
  verify: {
    number: 4,
    suffix: 'b',
    summary:
      'compare the table and the copy by checksums of key ranges (sp-range-md5-v1); the swap runs only after this passed',
    transaction: 'several',
    offPath: false,
  },
  swap: {
    number: 5,
    summary:
      'under a short ACCESS EXCLUSIVE lock: apply the rest of the log, rename, re-point foreign keys; then validate them',
    transaction: 'several',
    offPath: false,
  },
  cleanup: {
    number: 6,
    summary: 'stop syncing the old table, drop it and every tool object, analyze the table',
    transaction: 'several',
    offPath: false,
  },
  abort: {
    number: 90,
    summary: 'before the swap: remove the trigger and every tool object; the table is left exactly as it was',
    transaction: 'several',
    offPath: true,
  },
  revert: {
    number: 91,
    summary: 'after the swap, before cleanup: apply writes made since, swap back, drop the copy',
    transaction: 'several',
    offPath: true,
  },
};

export function stageInfo(name: StageName): Omit<StageInfo, 'requires'> {
  const info = INFO[name];
  const suffix = info.suffix ?? '';
  return { name, ...info, suffix, file: `${String(info.number).padStart(2, '0')}${suffix}-${name}.sql` };
}

export const ALL_STAGES: readonly StageName[] = [...FORWARD_STAGES, ...BACKWARD_STAGES];

/**
 * Stages that several sessions may run at once, dividing the work between them: the same script in
 * N psql sessions, or `run --jobs N`. Each takes the run's advisory lock shared and claims work items
 * that no other session holds, with locks that end with its transaction (backfill: page ranges,
 * row locks; build: indexes and constraints, advisory locks).
 */
export const PARALLEL_STAGES: ReadonlySet<StageName> = new Set<StageName>(['backfill', 'build']);

/** The stages of a plan made with these options, in order. */
export function planStages(options: { readonly verifyRanges: number }): readonly StageName[] {
  return ALL_STAGES.filter((s) => s !== 'verify' || options.verifyRanges > 0);
}
