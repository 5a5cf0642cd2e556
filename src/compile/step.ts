/**
 * A step of a stage script as data: what kind of statement it is, its SQL, and the relation locks
 * it takes. The code that writes a statement says its locks, since it knows them; the scripts'
 * `-- locks:` comments are printed from them (nothing reads them back from the SQL).
 */

/** PostgreSQL's table-level lock modes, weakest first. */
export const LOCK_MODES = [
  'ACCESS SHARE',
  'ROW SHARE',
  'ROW EXCLUSIVE',
  'SHARE UPDATE EXCLUSIVE',
  'SHARE',
  'SHARE ROW EXCLUSIVE',
  'EXCLUSIVE',
  'ACCESS EXCLUSIVE',
] as const;
export type LockMode = (typeof LOCK_MODES)[number];

/** A lock on a relation (table, index, sequence, view), the relation quoted as quote.ts writes it. */
export interface RelationLock {
  readonly relation: string;
  readonly mode: LockMode;
}

/**
 * What a step does, as far as its locks go (the modes each kind takes are checked against the
 * statements in test/unit/step-locks.test.ts). A step lists, per relation it locks, the strongest
 * mode it takes there; it leaves out plain reads and row writes (ACCESS SHARE, ROW SHARE, ROW
 * EXCLUSIVE: they conflict only with the modes listed), locks on what the step itself creates (no
 * other session can see it before the commit), and locks on objects that are not relations
 * (statistics objects, constraints, publications, triggers).
 */
export type StepKind =
  /** SET of a session setting. */
  | 'session-setting'
  /** A read-only check (a DO block that raises when it finds something). */
  | 'check'
  /** ALTER TABLE … ADD CONSTRAINT of a CHECK, UNIQUE, PRIMARY KEY or EXCLUDE constraint. */
  | 'add-constraint'
  /** ALTER TABLE … ADD/DROP/ALTER COLUMN run on the copy (--alter, columns the owner adds). */
  | 'alter-copy'
  | 'create-index'
  /** CREATE TABLE … PARTITION OF: locks the parent. */
  | 'create-partition'
  | 'create-statistics'
  /** ALTER STATISTICS (owner, target, name): locks the statistics object only. */
  | 'alter-statistics'
  /** ALTER TABLE … SET STORAGE / SET COMPRESSION. */
  | 'column-storage'
  /** ALTER TABLE … ALTER COLUMN … SET STATISTICS / SET (attribute options). */
  | 'column-statistics'
  /** ALTER TABLE/INDEX … SET (storage parameters): the mode depends on the parameter; the strongest is said. */
  | 'storage-parameters'
  /** ALTER TABLE … RESET (autovacuum_enabled, toast.autovacuum_enabled). */
  | 'autovacuum-reset'
  /** ENABLE/FORCE ROW LEVEL SECURITY, CREATE POLICY. */
  | 'row-security'
  /** CREATE TRIGGER (with its ENABLE state). */
  | 'create-trigger'
  /** ALTER TABLE … ENABLE/DISABLE TRIGGER. */
  | 'trigger-state'
  | 'drop-triggers'
  | 'rename-table'
  | 'rename-index'
  | 'rename-sequence'
  /** ALTER TABLE … CLUSTER ON: the table and the index. */
  | 'cluster-on'
  | 'replica-identity'
  /** ALTER TABLE … ADD GENERATED … AS IDENTITY (its sequence is new). */
  | 'add-identity'
  /** ALTER TABLE … DROP IDENTITY: the table and the sequence it drops. */
  | 'drop-identity'
  /** ALTER SEQUENCE … OWNED BY / AS. */
  | 'alter-sequence'
  /** setval(): a row write on the sequence. */
  | 'sequence-value'
  /** COMMENT ON TABLE, COLUMN, INDEX, SEQUENCE: locks that relation. */
  | 'comment'
  /** COMMENT ON CONSTRAINT, STATISTICS: locks the object only. */
  | 'comment-object'
  /** DROP CONSTRAINT (both tables: its triggers go) then ADD … NOT VALID (both tables). */
  | 'move-foreign-key'
  | 'validate-foreign-key'
  /** GRANT, REVOKE. */
  | 'privileges'
  | 'replace-view'
  | 'replace-function'
  /** ALTER PUBLICATION … DROP TABLE, ADD TABLE. */
  | 'move-publication';

/** One commented SQL statement (or a few that belong together) inside a stage script. */
export interface Step {
  readonly kind: StepKind;
  readonly comment: string;
  readonly sql: string;
  /** The relation locks it takes, each relation once with its strongest mode, in the order taken. */
  readonly locks: readonly RelationLock[];
  /**
   * Build steps: a DO step's PL/pgSQL block (BEGIN … END), so a build item can hold it as a nested
   * block; and whether the step belongs to the item of the step before it (it needs that object).
   */
  readonly body?: string;
  readonly joinsPrevious?: boolean;
}

export const accessExclusive = (relation: string): RelationLock => ({ relation, mode: 'ACCESS EXCLUSIVE' });
export const shareRowExclusive = (relation: string): RelationLock => ({ relation, mode: 'SHARE ROW EXCLUSIVE' });
export const share = (relation: string): RelationLock => ({ relation, mode: 'SHARE' });
export const shareUpdateExclusive = (relation: string): RelationLock => ({ relation, mode: 'SHARE UPDATE EXCLUSIVE' });

/** The locks of statements run one after the other: each relation once, with the strongest mode taken on it. */
export function lockList(...locks: readonly RelationLock[]): RelationLock[] {
  const out: RelationLock[] = [];
  for (const l of locks) {
    const i = out.findIndex((o) => o.relation === l.relation);
    if (i < 0) out.push(l);
    else if (LOCK_MODES.indexOf(l.mode) > LOCK_MODES.indexOf(out[i]!.mode)) out[i] = l;
  }
  return out;
}

/** The locks as the scripts say them beside the step (`-- locks: …`); '' when none. */
export function locksText(locks: readonly RelationLock[]): string {
  return locks.map((l) => `${l.mode} on ${l.relation}`).join('; ');
}
