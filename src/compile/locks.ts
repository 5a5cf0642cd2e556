import { ident, literal, qualified } from '../model/quote.js';
import type { CommonContext } from './context.js';
import type { HazardCode, StageLock, StageName } from './stages.js';
import { accessExclusive, type LockMode, type RelationLock } from './step.js';

/** What the lock partial takes for one stage, and what the reviewer is told about it. */
export interface LockSpec {
  /** Stable name of the locking step in lock reports (setup-trigger, swap, revert, cleanup, abort). */
  readonly step: string;
  readonly description: string;
  /** PL/pgSQL statements run inside one retried attempt. */
  readonly statements: readonly string[];
  readonly shown: readonly StageLock[];
  /** SQL condition on pg_locks `l`: a granted lock that conflicts with what we take. */
  readonly conflicts: string;
  /**
   * Swap and revert: once the lock is taken, look for sessions whose snapshot could read the table
   * without what this transaction applies; if any, release the lock and try again later.
   */
  readonly checksSnapshots: boolean;
  /**
   * Swap and revert: the log applied under the lock. An attempt is made only while it holds at most
   * --swap-backlog entries, checked again under the lock; past that the step stops, so that the stage
   * catches up outside its transaction and tries again, whatever the number of attempts.
   */
  readonly appliedLog: string | null;
}

const NONE: LockSpec = {
  step: 'none',
  description: 'no lock',
  statements: [],
  shown: [],
  conflicts: 'false',
  checksSnapshots: false,
  appliedLog: null,
};

/** Lock modes that conflict with each mode we take (PostgreSQL's conflict table). */
const CONFLICTS: { readonly [M in LockMode]?: readonly string[] } = {
  'ACCESS EXCLUSIVE': [
    'AccessShareLock',
    'RowShareLock',
    'RowExclusiveLock',
    'ShareUpdateExclusiveLock',
    'ShareLock',
    'ShareRowExclusiveLock',
    'ExclusiveLock',
    'AccessExclusiveLock',
  ],
  'SHARE ROW EXCLUSIVE': [
    'RowExclusiveLock',
    'ShareUpdateExclusiveLock',
    'ShareLock',
    'ShareRowExclusiveLock',
    'ExclusiveLock',
    'AccessExclusiveLock',
  ],
};

export function conflictCondition(locks: readonly RelationLock[]): string {
  if (locks.length === 0) return 'false';
  return (
    locks
      // A partitioned table (the copy made with --partition-by, live after the swap) is locked with its
      // partitions, so a lock held on one partition conflicts too.
      .map(
        (l) =>
          `(l.relation IN (SELECT to_regclass(${literal(l.relation)}) UNION SELECT relid FROM pg_partition_tree(to_regclass(${literal(l.relation)}))) AND l.mode IN (${(CONFLICTS[l.mode] ?? []).map(literal).join(', ')}))`,
      )
      .join('\n            OR ')
  );
}

/**
 * Without ONLY: a partitioned table is locked with its partitions. A session writing straight into a
 * partition locks only that partition (a DELETE never touches the parent), so ONLY let it write, and its
 * capture trigger log, past the apply under the revert's lock: the write was lost. A source table is never
 * partitioned nor a parent (refused), so for it this is the same lock.
 */
function lockStatement(rel: string, mode: string): string {
  return `LOCK TABLE ${rel} IN ${mode} MODE;`;
}

function triggersExist(c: CommonContext, triggers: string[]): string {
  return `EXISTS (SELECT FROM pg_trigger WHERE tgrelid = to_regclass(${literal(c.src)}) AND tgname IN (${triggers.map(literal).join(', ')}))`;
}

/** Only if one of our triggers is still on the table; else there is nothing to drop. */
function ifTriggers(c: CommonContext, triggers: string[], statement: string): string {
  return `IF ${triggersExist(c, triggers)} THEN ${statement} END IF;`;
}

/** A lock step whose statements, review entries and conflict check all come from one list. */
function plainLock(step: string, description: string, locks: readonly StageLock[]): LockSpec {
  return {
    step,
    description,
    statements: locks.map((l) => lockStatement(l.relation, l.mode)),
    shown: locks,
    conflicts: conflictCondition(locks),
    checksSnapshots: false,
    appliedLog: null,
  };
}

/**
 * Views re-created at the swap are locked first: their readers lock the view,
 * then the table, so taking them in that order too means a reader never holds
 * one while waiting for the other. LOCK TABLE on a view would also lock every
 * table the view reads; a no-op ALTER VIEW … OWNER TO (its own owner) locks
 * the view alone.
 */
function withViewLocks(spec: LockSpec, c: CommonContext): LockSpec {
  const views = c.model.dependents.views;
  if (views.length === 0) return spec;
  const locks: StageLock[] = views.map((v) => ({
    ...accessExclusive(qualified(v.schema, v.name)),
    blocksApplication: true,
  }));
  return {
    ...spec,
    description: `ACCESS EXCLUSIVE on ${views.length} view${views.length === 1 ? '' : 's'} over the table, then ${spec.description}`,
    statements: [
      ...views.map((v) => `ALTER VIEW ${qualified(v.schema, v.name)} OWNER TO ${ident(v.owner)};`),
      ...spec.statements,
    ],
    shown: [...locks, ...spec.shown],
    conflicts: `${conflictCondition(locks)}\n            OR ${spec.conflicts}`,
  };
}

/**
 * The table's sequences (serial and identity), locked after the tables, in the order a writer takes
 * them (its INSERT locks the table, then nextval the sequence). The swap and revert change them
 * (ALTER SEQUENCE … OWNED BY, an identity's rename or DROP IDENTITY), and nextval() holds ROW
 * EXCLUSIVE on a sequence until its transaction ends: without this, a session that took an id and
 * sits in its transaction would be waited for under the lock, until statement_timeout, with every
 * reader and writer of the table queued behind. LOCK TABLE refuses a sequence; a no-op ALTER
 * SEQUENCE … OWNER TO (the table's owner, which a linked sequence must have) locks it ACCESS
 * EXCLUSIVE, inside the retried attempt like the rest.
 */
function withSequenceLocks(spec: LockSpec, stage: 'swap' | 'revert', c: CommonContext): LockSpec {
  const m = c.model;
  const sequences = [
    ...m.ownedSequences.map((q) => qualified(q.schema, q.name)),
    ...m.identities.flatMap((q, i) => [
      qualified(q.schema, q.name),
      ...(stage === 'revert' ? [qualified(q.schema, c.names.oldSequence(i))] : []),
    ]),
  ].filter((q, i, all) => all.indexOf(q) === i);
  if (sequences.length === 0) return spec;
  const locks: StageLock[] = sequences.map((q) => ({ ...accessExclusive(q), blocksApplication: true }));
  return {
    ...spec,
    description: `${spec.description}, then on its ${sequences.length === 1 ? 'sequence' : `${sequences.length} sequences`}`,
    statements: [...spec.statements, ...sequences.map((q) => `ALTER SEQUENCE ${q} OWNER TO ${ident(m.owner)};`)],
    shown: [...spec.shown, ...locks],
    conflicts: `${spec.conflicts}\n            OR ${conflictCondition(locks)}`,
  };
}

export function stageLock(stage: StageName, c: CommonContext): LockSpec {
  const { children, parents } = c.related;
  const fkTables = [...children, ...parents].filter((t, i, a) => a.indexOf(t) === i && t !== c.src);
  // Moving a foreign key drops the old constraint, and dropping its triggers takes
  // ACCESS EXCLUSIVE on both tables. Taking that mode up front, inside the retried lock
  // step, is what keeps the swap from upgrading a weaker lock mid-transaction, which can
  // deadlock with an application writer (and the deadlock victim may be the application).
  const fkLocks: StageLock[] = fkTables.map((t) => ({ ...accessExclusive(t), blocksApplication: true }));
  switch (stage) {
    case 'preflight':
    case 'backfill':
    case 'build':
    case 'catchup':
    case 'verify':
      return NONE;
    case 'setup':
      return plainLock('setup-trigger', `SHARE ROW EXCLUSIVE on ${c.tableDisplay}`, [
        { relation: c.src, mode: 'SHARE ROW EXCLUSIVE', blocksApplication: true },
      ]);
    case 'swap':
    case 'revert': {
      const other = stage === 'swap' ? c.copy : c.old;
      return {
        ...withViewLocks(
          withSequenceLocks(
            plainLock(
              stage,
              `ACCESS EXCLUSIVE on ${c.tableDisplay}${fkTables.length ? ' and on the tables whose foreign keys move' : ''}`,
              [
                { relation: c.src, mode: 'ACCESS EXCLUSIVE', blocksApplication: true },
                { relation: other, mode: 'ACCESS EXCLUSIVE', blocksApplication: false },
                ...fkLocks,
              ],
            ),
            stage,
            c,
          ),
          c,
        ),
        checksSnapshots: true,
        appliedLog: stage === 'swap' ? c.changeLog : c.reverseLog,
      };
    }
    case 'cleanup':
      return {
        step: 'cleanup',
        description: `ACCESS EXCLUSIVE on ${c.tableDisplay} (to drop the sync trigger) and on the old table`,
        statements: [
          ifTriggers(
            c,
            [c.names.reverseCaptureTrigger, c.names.truncateTrigger],
            lockStatement(c.src, 'ACCESS EXCLUSIVE'),
          ),
          `IF to_regclass(${literal(c.old)}) IS NOT NULL THEN ${lockStatement(c.old, 'ACCESS EXCLUSIVE')} END IF;`,
        ],
        shown: [
          { relation: c.src, mode: 'ACCESS EXCLUSIVE', blocksApplication: true },
          { relation: c.old, mode: 'ACCESS EXCLUSIVE', blocksApplication: false },
        ],
        conflicts: `(${triggersExist(c, [c.names.reverseCaptureTrigger, c.names.truncateTrigger])} AND ${conflictCondition([{ relation: c.src, mode: 'ACCESS EXCLUSIVE' }])})\n            OR ${conflictCondition([{ relation: c.old, mode: 'ACCESS EXCLUSIVE' }])}`,
        checksSnapshots: false,
        appliedLog: null,
      };
    case 'abort':
      return {
        step: 'abort',
        // Taken only while a capture trigger is there (ifTriggers): an abort with nothing to undo blocks no one (finding 26).
        description: `ACCESS EXCLUSIVE on ${c.tableDisplay} (to drop the capture trigger; not taken when there is none)`,
        statements: [
          ifTriggers(c, [c.names.captureTrigger, c.names.truncateTrigger], lockStatement(c.src, 'ACCESS EXCLUSIVE')),
        ],
        shown: [{ relation: c.src, mode: 'ACCESS EXCLUSIVE', blocksApplication: true }],
        conflicts: `${triggersExist(c, [c.names.captureTrigger, c.names.truncateTrigger])} AND ${conflictCondition([{ relation: c.src, mode: 'ACCESS EXCLUSIVE' }])}`,
        checksSnapshots: false,
        appliedLog: null,
      };
  }
}

/** What the stage's lock step takes from the application, as hazards (ACCESS EXCLUSIVE first, as the summary lists them). */
function lockHazards(lock: LockSpec): HazardCode[] {
  const modes = new Set(lock.shown.filter((l) => l.blocksApplication).map((l) => l.mode));
  const out: HazardCode[] = [];
  if (modes.has('ACCESS EXCLUSIVE')) out.push('ACCESS_EXCLUSIVE_LOCK');
  if (modes.has('SHARE ROW EXCLUSIVE')) out.push('SHARE_ROW_EXCLUSIVE_LOCK');
  return out;
}

/** The stage's hazards: those of its lock step (`lock`, from stageLock), then the others of the stage. */
export function stageHazards(stage: StageName, c: CommonContext, lock: LockSpec): HazardCode[] {
  return [...lockHazards(lock), ...otherHazards(stage, c)];
}

function otherHazards(stage: StageName, c: CommonContext): HazardCode[] {
  const fk = c.model.referencedBy.length > 0 || c.model.constraints.some((k) => k.kind === 'foreign-key');
  const d = c.model.dependents;
  const repointed: HazardCode[] = [
    ...(d.views.length > 0 ? (['VIEWS_RECREATED'] as const) : []),
    ...(d.functions.length > 0 ? (['FUNCTIONS_RECREATED'] as const) : []),
    ...(d.publications.length > 0 ? (['PUBLICATION_MOVED'] as const) : []),
  ];
  switch (stage) {
    case 'preflight':
      return [];
    case 'setup':
      return ['WRITE_OVERHEAD', 'TRUNCATE_BLOCKED'];
    case 'backfill':
      return ['NEEDS_DISK', 'WAL_VOLUME'];
    case 'build':
      return ['NEEDS_DISK', 'WAL_VOLUME'];
    case 'catchup':
      return [];
    case 'verify':
      return ['LONG_SNAPSHOT'];
    case 'swap':
      return [
        'WAITS_FOR_OLD_SNAPSHOTS',
        'STANDBY_SNAPSHOTS',
        ...(fk ? (['FK_REVALIDATION'] as const) : []),
        ...repointed,
      ];
    case 'cleanup':
      return ['REVERT_ENDS'];
    case 'abort':
      return [];
    case 'revert':
      return [
        'WAITS_FOR_OLD_SNAPSHOTS',
        'STANDBY_SNAPSHOTS',
        ...(fk ? (['FK_REVALIDATION'] as const) : []),
        ...repointed,
      ];
  }
}
