import type { StageKind } from '../stage-machine.js';
import type { StageLock } from '../stages.js';
import type { FdwAuth, MoveOptions } from './context.js';
import type { MoveHashShape } from './verify-sql.js';

/**
 * The stage machine of a move plan (issue 15: a table or an FK-closed group of tables moves to
 * another cluster), declared once as data, in the shape of ../stage-machine.ts. The compiler, the
 * templates' stage checks, the runner (src/run/move*) and `status` read it from here.
 *
 * Each stage runs on one side: `psql -X -v ON_ERROR_STOP=1 -d <its side> -f FILE`. Each script
 * includes its side's binding (`\ir binding.source.sql` / `\ir binding.target.sql`) before anything
 * else, so a script run on the wrong cluster refuses before it changes anything.
 *
 * WHERE EACH SIDE RECORDS ITS STAGE (read by the runner and by `status`):
 *
 *   source: table `shadowpack.move_<runId>` — exactly one row:
 *             run_id text, plan_id text, stage text (a SourceMoveState), fenced_at timestamptz,
 *             fence_xid xid8, updated_at timestamptz, plus per table `end_page_<n>` bigint
 *             (heap pages at setup, the backfill's end) — created by 01-setup.source.sql, dropped by
 *             08-cleanup.source.sql / 90-abort.source.sql. The target reads it (and writes `stage`)
 *             through the foreign table `shadowpack_src_<runId>.move_state`.
 *   target: table `shadowpack.move_<runId>` — exactly one row:
 *             run_id text, plan_id text, stage text (a TargetMoveState), applied_snapshot text (the
 *             source snapshot of the last committed round, pg_snapshot text), rounds bigint,
 *             rows_applied bigint, updated_at timestamptz — and `shadowpack.move_<runId>_backfill`
 *             (tbl int, next_page bigint, end_page bigint, done boolean: one row per group table,
 *             committed with each backfill batch). Created by 02-setup.target.sql; dropped by
 *             08-cleanup.target.sql / 90-abort.target.sql.
 *   No such table on a side: no run there (not set up yet, or cleaned up / aborted).
 *
 * Cross-side facts (no two-phase commit between the clusters, so each transition commits on one
 * side only and is idempotent):
 *   - 05-catchup.target.sql ends by writing source stage 'ready-for-fence' through FDW (own txn).
 *   - 06-fence.source.sql starts only from source 'ready-for-fence' and records 'fenced'.
 *   - 07-cutover.target.sql first records source 'cutover-started' through FDW (own txn), then in
 *     one target transaction reads the source snapshot, requires fenced there, applies the last
 *     round and records target 'cutover'. Afterwards (own txn) it records source 'cutover'.
 *   - 08-cleanup.target.sql records source 'cutover' again (idempotent) before it drops the FDW
 *     objects, so 08-cleanup.source.sql (needs source 'cutover') can run after it.
 *   - 90-abort.target.sql refuses after target 'cutover'; it records target 'aborting', then source
 *     'target-aborted' through FDW if the source still has a run, then drops its objects.
 *     90-abort.source.sql refuses in source 'cutover-started' and 'cutover' (the target may be
 *     live: run 90-abort.target.sql first, which sets 'target-aborted').
 *
 * The revert of a plan made with --reversible (docs/cross-cluster.md says why nothing is lost), the mirror image:
 *   - 07-cutover.target.sql also creates the target's capture, logs and the views the source reads.
 *   - 91-revert.source.sql (from source 'cutover' or 'reverting') creates a server to the target, tells the target
 *     'reverting' through it (own txn), runs rounds until the backlog is small and records source 'reverting'.
 *   - 92-revert.target.sql needs source 'reverting' (read FOR SHARE through the target's server), fences the
 *     target and records 'revert-fenced'.
 *   - 93-revert.source.sql needs target 'revert-fenced': in one source transaction the last round in a target
 *     snapshot that sees the fence, sequences, the source's fence dropped, source 'reverted'; then tells the
 *     target 'reverted' (own txn; it runs again when that was lost).
 *   - 08-cleanup.target.sql runs at target 'cutover', 'reverting' (setting it back to 'cutover': the revert is
 *     given up), 'revert-fenced' (given up too, and the target's fence dropped, while the source is still
 *     'reverting': it locks the source's state row FOR UPDATE through its server, as 93 does first, and sets it
 *     back to 'cutover'; refused once the source reverted) or 'reverted'; 08-cleanup.source.sql refuses while
 *     the target is 'revert-fenced'.
 */

export type MoveSide = 'source' | 'target';

export const MOVE_SOURCE_STATES = [
  'setup',
  'ready-for-fence',
  'fenced',
  'cutover-started',
  'target-aborted',
  'cutover',
  'aborting',
  'reverting',
  'reverted',
] as const;
export type SourceMoveState = (typeof MOVE_SOURCE_STATES)[number];
export const MOVE_TARGET_STATES = [
  'setup',
  'backfill',
  'build',
  'catchup',
  'cutover',
  'aborting',
  'reverting',
  'revert-fenced',
  'reverted',
] as const;
export type TargetMoveState = (typeof MOVE_TARGET_STATES)[number];

export type MoveStageName =
  'preflight' | 'setup' | 'backfill' | 'build' | 'catchup' | 'fence' | 'cutover' | 'cleanup' | 'abort' | 'revert';

/** One row per stage file. `from`/`records` are states of the stage's own side; `needs` of the other one. */
export interface MoveStageRule {
  readonly stage: MoveStageName;
  readonly side: MoveSide;
  readonly file: string;
  /** Its template, `templates/move/<template>.sql.hbs`, when not `<stage>.<side>` (a stage with two files on one side). */
  readonly template?: string;
  readonly kind: StageKind;
  /** Only in plans made with this option (`plan --reversible`). */
  readonly onlyWith?: 'reversible';
  /** States of its own side it may start from; null: no run recorded on that side. 'any': it only reads. */
  readonly from: readonly (string | null)[] | 'any';
  /** What it records on its own side when done (null: nothing; for cleanup/abort, the run is removed). */
  readonly records: string | null;
  /** It removes its side's run objects at the end. */
  readonly removesRun?: boolean;
  /** States of the other side it checks (through FDW from the target; never read from the source). */
  readonly needs?: { readonly side: MoveSide; readonly states: readonly string[] };
  /** States of its own side in which it has already run: it says so instead of starting again. */
  readonly doneIn?: readonly string[];
  /** What it writes into the other side's state (through FDW, its own transaction), by name: the state
   *  and the states it may overwrite (any other: the UPDATE changes nothing). */
  readonly tells?: { readonly [name: string]: { readonly records: string; readonly from: readonly string[] } };
  /** 'one' transaction, 'batches' (commits as it goes), 'several', 'none' (read-only). */
  readonly transaction: 'none' | 'one' | 'batches' | 'several';
  readonly summary: string;
}

/** Target states in which an apply round may run: set up, not yet live, not aborting. */
export const MOVE_ROUND_STATES: readonly TargetMoveState[] = ['setup', 'backfill', 'build', 'catchup'];

/** Source states after the fence: the group's writes there are refused. */
const FENCED_SOURCE: readonly SourceMoveState[] = ['fenced', 'cutover-started', 'cutover'];

const BEFORE_CUTOVER_TARGET: readonly (string | null)[] = [null, 'setup', 'backfill', 'build', 'catchup', 'aborting'];

/** The move's stages in the order they run (forward, then the two abort files: target first). */
export const MOVE_STAGES: readonly MoveStageRule[] = [
  {
    stage: 'preflight',
    side: 'source',
    file: '00-preflight.source.sql',
    kind: 'check',
    from: 'any',
    records: null,
    transaction: 'none',
    summary: 'read-only checks on the source: version, fingerprint of every table, keys, privileges, leftovers',
  },
  {
    stage: 'preflight',
    side: 'target',
    file: '00-preflight.target.sql',
    kind: 'check',
    from: 'any',
    records: null,
    transaction: 'none',
    summary:
      'read-only checks on the target: version >= source, encoding, postgres_fdw, roles, no non-empty table of the same name',
  },
  {
    stage: 'setup',
    side: 'source',
    file: '01-setup.source.sql',
    kind: 'forward',
    from: [null],
    records: 'setup',
    transaction: 'one',
    summary: 'change logs, capture triggers (ENABLE ALWAYS), TRUNCATE guard, the views the target reads, the state row',
  },
  {
    stage: 'setup',
    side: 'target',
    file: '02-setup.target.sql',
    kind: 'forward',
    from: [null],
    records: 'setup',
    needs: { side: 'source', states: ['setup'] },
    transaction: 'one',
    summary:
      'types, tables without secondary indexes/FKs/user triggers, deny triggers, postgres_fdw server, user mapping, foreign tables, state',
  },
  {
    stage: 'backfill',
    side: 'target',
    file: '03-backfill.target.sql',
    kind: 'forward',
    from: ['setup', 'backfill'],
    records: 'backfill',
    transaction: 'batches',
    summary: 'copy the source rows by heap page ranges through postgres_fdw, position committed with each batch',
  },
  {
    stage: 'build',
    side: 'target',
    file: '04-build.target.sql',
    kind: 'forward',
    from: ['backfill', 'build'],
    records: 'build',
    transaction: 'several',
    summary: 'primary keys, unique and check constraints, indexes, ANALYZE',
  },
  {
    stage: 'catchup',
    side: 'target',
    file: '05-catchup.target.sql',
    kind: 'forward',
    from: ['build', 'catchup'],
    records: 'catchup',
    tells: { ready: { records: 'ready-for-fence', from: ['setup'] } },
    transaction: 'batches',
    summary:
      'rounds (one source snapshot each) until the backlog is small, prune the source log, mark the source ready for the fence',
  },
  {
    stage: 'fence',
    side: 'source',
    file: '06-fence.source.sql',
    kind: 'forward',
    from: ['ready-for-fence', 'fenced'],
    records: 'fenced',
    doneIn: FENCED_SOURCE,
    transaction: 'one',
    summary:
      'bounded lock, then statement triggers refusing every write to the group on the source (the write freeze starts)',
  },
  {
    stage: 'cutover',
    side: 'target',
    file: '07-cutover.target.sql',
    kind: 'forward',
    from: ['catchup'],
    records: 'cutover',
    doneIn: ['cutover'],
    needs: { side: 'source', states: FENCED_SOURCE },
    tells: {
      started: { records: 'cutover-started', from: ['fenced', 'cutover-started'] },
      live: { records: 'cutover', from: ['cutover-started'] },
    },
    transaction: 'several',
    summary:
      'in one transaction: the last round in a fenced source snapshot, sequences, FKs NOT VALID, triggers, grants, comments, policies, deny triggers dropped; then FK validation',
  },
  {
    stage: 'cleanup',
    side: 'target',
    file: '08-cleanup.target.sql',
    kind: 'forward',
    // --reversible: also after a revert, or during one (which gives the revert up; at 'revert-fenced' only while
    // the source is still 'reverting', which goes back to 'cutover' so that 93-revert.source.sql refuses).
    from: ['cutover', 'reverting', 'revert-fenced', 'reverted'],
    records: null,
    removesRun: true,
    tells: {
      live: { records: 'cutover', from: ['cutover-started'] },
      revertGivenUp: { records: 'cutover', from: ['reverting'] },
    },
    transaction: 'several',
    summary: 'drop the foreign tables, the user mapping (and any password in it), the server and the tool objects',
  },
  {
    stage: 'cleanup',
    side: 'source',
    file: '08-cleanup.source.sql',
    kind: 'forward',
    from: ['cutover', 'reverting', 'reverted'],
    records: null,
    removesRun: true,
    transaction: 'one',
    summary: 'drop the capture triggers, logs, views and state; the fence and the tables stay',
  },
  {
    stage: 'revert',
    side: 'source',
    file: '91-revert.source.sql',
    template: 'revert.source',
    kind: 'revert',
    onlyWith: 'reversible',
    from: ['cutover', 'reverting'],
    records: 'reverting',
    needs: { side: 'target', states: ['cutover', 'reverting', 'revert-fenced'] },
    tells: { started: { records: 'reverting', from: ['cutover'] } },
    transaction: 'batches',
    summary:
      "--reversible, after the cut-over: postgres_fdw server to the target, then rounds (one target snapshot each) that bring the target's writes to the source until the backlog is small",
  },
  {
    stage: 'revert',
    side: 'target',
    file: '92-revert.target.sql',
    template: 'revert.target',
    kind: 'revert',
    onlyWith: 'reversible',
    from: ['reverting', 'revert-fenced'],
    records: 'revert-fenced',
    doneIn: ['revert-fenced'],
    needs: { side: 'source', states: ['reverting'] },
    transaction: 'one',
    summary:
      'bounded lock, then statement triggers refusing every write to the group on the target (the write freeze of the revert starts)',
  },
  {
    stage: 'revert',
    side: 'source',
    file: '93-revert.source.sql',
    template: 'revert-final.source',
    kind: 'revert',
    onlyWith: 'reversible',
    from: ['reverting', 'reverted'],
    records: 'reverted',
    doneIn: ['reverted'],
    needs: { side: 'target', states: ['revert-fenced'] },
    tells: { done: { records: 'reverted', from: ['revert-fenced'] } },
    transaction: 'several',
    summary:
      "in one transaction: the last round in a target snapshot that sees the target's fence, sequences past every value used on the target, the source's fence dropped (the source is live again)",
  },
  {
    stage: 'abort',
    side: 'target',
    file: '90-abort.target.sql',
    kind: 'abort',
    from: BEFORE_CUTOVER_TARGET,
    records: 'aborting',
    removesRun: true,
    tells: { aborted: { records: 'target-aborted', from: ['setup', 'ready-for-fence', 'fenced', 'cutover-started'] } },
    transaction: 'several',
    summary: 'before cut-over: drop everything the plan made on the target; tells the source',
  },
  {
    stage: 'abort',
    side: 'source',
    file: '90-abort.source.sql',
    kind: 'abort',
    from: [null, 'setup', 'ready-for-fence', 'fenced', 'target-aborted', 'aborting'],
    records: 'aborting',
    removesRun: true,
    transaction: 'one',
    summary: 'before cut-over: drop the capture, logs, views, state and the fence; the source is as it was',
  },
];

export const MOVE_BINDING_FILES: { readonly [S in MoveSide]: string } = {
  source: 'binding.source.sql',
  target: 'binding.target.sql',
};

/** The template key of a stage file (`templates/move/<key>.sql.hbs`). */
export const moveTemplateKey = (rule: MoveStageRule): string => rule.template ?? `${rule.stage}.${rule.side}`;

/** The stage files of a plan made with these options (the revert files only with --reversible). */
export function moveStagesFor(options: { readonly reversible?: boolean }): readonly MoveStageRule[] {
  return MOVE_STAGES.filter((r) => r.onlyWith === undefined || options.reversible === true);
}

export function moveStage(file: string): MoveStageRule {
  const rule = MOVE_STAGES.find((r) => r.file === file);
  if (rule === undefined) throw new Error(`internal error: ${file} is not a stage of a move plan`);
  return rule;
}

/** Hazard codes of a move plan (review summary). */
export type MoveHazardCode =
  | 'FDW_PASSWORD_IN_CATALOG'
  | 'SHARE_ROW_EXCLUSIVE_LOCK'
  | 'WRITE_OVERHEAD'
  | 'TRUNCATE_BLOCKED'
  | 'WRITE_FREEZE'
  | 'LOG_GROWTH'
  | 'FK_REVALIDATION'
  | 'GENERATED_COLUMNS_RECOMPUTED'
  | 'SEQUENCE_SHARED'
  | 'TARGET_WRITE_OVERHEAD'
  | 'TARGET_TRUNCATE_BLOCKED'
  | 'REVERT_WINDOW'
  | 'REVERT_FDW_PASSWORD_IN_CATALOG'
  | 'REVERT_REPLICA_APPLY'
  | 'TARGET_WRITE_FREEZE';

/** One stage of plan.json. */
export interface MovePlanStage {
  readonly file: string;
  readonly stage: MoveStageName;
  readonly side: MoveSide;
  readonly sha256: string;
  readonly transaction: MoveStageRule['transaction'];
  readonly locks: readonly StageLock[];
  readonly hazards: readonly MoveHazardCode[];
}

/** What the plan records about each side's server; never a password. */
export interface MoveSideFacts {
  readonly host: string | null;
  readonly port: number | null;
  readonly database: string;
  readonly databaseOid: number;
  readonly systemIdentifier: string | null;
  readonly serverVersionNum: number;
  readonly encoding: string;
}

/** plan.json of a move plan. `planHash` covers everything but itself and provenance. */
export interface MovePlanManifest {
  readonly kind: 'move';
  readonly formatVersion: number;
  readonly tool: { readonly name: 'shadowpack'; readonly version: string };
  readonly runId: string;
  readonly planId: string;
  /** The group, in FK order (referenced tables first); `n` names the per-table tool objects. */
  readonly tables: readonly (MoveHashShape & {
    readonly n: number;
    readonly fingerprint: string;
  })[];
  readonly source: MoveSideFacts;
  readonly target: MoveSideFacts;
  readonly fdwAuth: FdwAuth;
  readonly options: MoveOptions;
  readonly stages: readonly MovePlanStage[];
  readonly bindings: { readonly [S in MoveSide]: { readonly file: string; readonly sha256: string } };
  readonly readmeSha256: string;
  readonly planHash: string;
}
