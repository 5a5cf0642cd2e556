import { commentText, ident, literal, qualified } from '../model/quote.js';
import { runNames, type RunNames } from '../model/names.js';
import { signatureSql } from '../model/signature.js';
import { missingPrivilegesSql } from '../model/privileges-sql.js';
import type { TableModel } from '../model/types.js';
import type { PlanOptions } from './options.js';
import { CANONICAL_SETTINGS, RANGE_CHECKSUM_ALGORITHM, rangeChecksumSql } from './range-checksum.js';
import { insertOverriding } from './identity-steps.js';
import { unplannedDependentsCheck } from './dependent-checks.js';
import { ownerStatements, type OwnerStatements } from './owner-statements.js';
import { buildItems, type BuildItem } from './build-items.js';
import { copyReloptions, relatedTables } from './steps.js';
import { locksText, type Step } from './step.js';
import { stageSteps, type StageSteps } from './stage-steps.js';
import type { DerivedTarget } from './transform/derive.js';
import {
  doneStates,
  guardRules,
  interruptedStates,
  stageMachine,
  stageRecord,
  stageRule,
  type GuardRule,
  type StageRecord,
  type TriggerSide,
} from './stage-machine.js';
import { ALL_STAGES, type StageName } from './stages.js';
import { forwardSide, reverseSide, type CopySide } from './transform/sides.js';

/** A step as the templates get it: comment made safe, and the locks it takes as text (empty: none worth saying). */
export interface AnnotatedStep extends Omit<Step, 'locks'> {
  readonly locks: string;
}

/**
 * The plan's facts as the compiler's code uses them (locks, hazards, check-data). Templates never
 * see this: template-inputs.ts makes each stage's input from it, with names that say what they hold.
 */
export interface CommonContext {
  readonly toolVersion: string;
  readonly model: TableModel;
  /** The rebuilt table's shape and the column mappings both ways. */
  readonly target: DerivedTarget;
  /** Copying table → copy (backfill, catch-up, swap). */
  readonly forward: CopySide;
  /** Copying live table → old table after the swap (revert). */
  readonly reverse: CopySide;
  /** ' TABLESPACE "t"' for the copy, or ''. */
  readonly copyTablespace: string;
  /** Heap pages per backfill batch; everything at once when rows must be written in order. */
  readonly backfillBatchPages: string;
  /** What the backfill call does, for its comment. */
  readonly backfillText: string;
  /** ' ORDER BY …' of the backfill, or ''. */
  readonly backfillOrder: string;
  readonly names: RunNames;
  readonly options: PlanOptions;
  readonly fingerprint: string;
  readonly tableDisplay: string;
  readonly src: string;
  readonly copy: string;
  readonly old: string;
  readonly changeLog: string;
  readonly reverseLog: string;
  readonly stateTable: string;
  /** One row per run, kept after cleanup and abort: which plan ran, how it ended, when, by whom. */
  readonly historyTable: string;
  readonly keepTables: readonly string[];
  readonly controlTable: string;
  readonly rangesTable: string;
  readonly func: Readonly<Record<string, string>>;
  /** The guard function with its argument types, for to_regprocedure. */
  readonly guardProcedure: string;
  readonly signature: string;
  /**
   * The run's advisory lock (classId, objId): one session at a time on the table, except the sessions
   * of a stage that several may run at once (shared). settleKey: the same pair as one bigint, a lock
   * of its own (PostgreSQL keeps one-key and two-key advisory locks apart) that the backfill's
   * sessions take in turn to settle the change log.
   */
  readonly advisory: {
    readonly classId: number;
    readonly objId: number;
    readonly settleKey: string;
    readonly toolSchemaObjId: number;
  };
  readonly columnDefs: readonly string[];
  /** '' or, as an SQL literal, the generated columns the runner creates with --partition-by (owner-columns.ts). */
  readonly createdGeneratedList: string;
  readonly copyReloptions: string;
  /** What follows the copy's column list: ` WITH (…)`, or ` PARTITION BY RANGE (…)` (a partitioned table has no storage parameters). */
  readonly copyStorage: string;
  /** The rebuilt table's partitions (--partition-by), quoted: cleanup drops the TRUNCATE guard the swap put on each. */
  readonly partitionTables: readonly string[];
  /** OVERRIDING SYSTEM VALUE for INSERTs into a table that has an identity ALWAYS column, else ''. */
  readonly overriding: string;
  readonly keyList: string;
  readonly logKeyList: string;
  readonly guardRules: readonly GuardRule[];
  /** The states only the abort stage may go on from, as literals: the guard refuses them first. */
  readonly interruptedStates: string;
  /** Each stage's states from the stage machine, for what one stage records for another (the backfill procedure, in setup). */
  readonly stageRecords: { readonly [K in StageName]: StageRecord };
  /** The states of a run past the swap, as literals: a refusal then points to cleanup or revert, never to abort. */
  readonly swappedStates: string;
  /** The tool's triggers a guard requires present and ENABLE ALWAYS, by side (quoted relation and name, as literals). */
  readonly guardTriggers: readonly { readonly side: TriggerSide; readonly rel: string; readonly name: string }[];
  /** Every step below as data: its kind, SQL and the relation locks it takes (the lists below print them). */
  readonly stepData: StageSteps;
  readonly copyColumnSteps: readonly AnnotatedStep[];
  /** The copy's columns from the first generated one on, added by the table's owner (see owner-columns.ts), then their settings. */
  readonly ownerColumnSteps: readonly AnnotatedStep[];
  /** The ALTER TABLE of the first of those steps, for plan --check-data. */
  readonly ownerColumnsSql: string;
  /** --alter statements that shape the empty copy (with the partitions first), as check-data runs them. */
  readonly alterSetupSteps: readonly AnnotatedStep[];
  /** Setup's part of them: the partitions, as the runner; then the --alter statements, as the table's owner. */
  readonly partitionSetupSteps: readonly AnnotatedStep[];
  readonly alterOwnerSteps: readonly AnnotatedStep[];
  /** The key's column names, for messages. */
  readonly keyText: string;
  /** The build stage's steps as items several sessions share (build-items.ts). */
  readonly buildItems: readonly BuildItem[];
  readonly swapSteps: readonly AnnotatedStep[];
  /** DO block run by cleanup before it drops the old table: nothing may still depend on it. */
  readonly oldTableDependentsCheck: string;
  readonly revertSteps: readonly AnnotatedStep[];
  readonly validateSteps: readonly AnnotatedStep[];
  /** The plan-time privilege query, for the current user, as preflight runs it. */
  readonly privilegeCheck: string;
  readonly related: { readonly children: readonly string[]; readonly parents: readonly string[] };
  readonly verify: { readonly algorithm: string; readonly settings: readonly string[]; readonly rangesSql: string };
  /** Statements run as the table's owner (see owner-functions.hbs), each as a quoted literal for the owner function. */
  readonly asOwner: OwnerStatements;
}

/** 'SPK' in ASCII: the first key of every shadowpack advisory lock. */
const ADVISORY_CLASS = 0x53504b;

/**
 * The tool schema's lock (ADVISORY_CLASS, this): one for every run in the database, whatever its
 * table. A run's objId has 28 bits (7 hex digits of its id), so this one is no run's.
 */
const TOOL_SCHEMA_OBJ_ID = 0x7fffffff;

function advisoryKeys(objId: number): CommonContext['advisory'] {
  return {
    classId: ADVISORY_CLASS,
    objId,
    settleKey: ((BigInt(ADVISORY_CLASS) << 32n) | BigInt(objId)).toString(),
    toolSchemaObjId: TOOL_SCHEMA_OBJ_ID,
  };
}

function columnDefinition(c: TableModel['columns'][number]): string {
  let def = `${ident(c.name)} ${c.type}`;
  if (c.collation !== null) def += ` COLLATE ${c.collation}`;
  if (c.generated !== null) def += ` GENERATED ALWAYS AS (${c.generated}) STORED`;
  else if (c.default !== null) def += ` DEFAULT ${c.default}`;
  // Naming the NOT NULL keeps PostgreSQL 18's constraint name; older versions accept and ignore it.
  if (c.notNull) def += c.notNullName !== null ? ` CONSTRAINT ${ident(c.notNullName)} NOT NULL` : ' NOT NULL';
  return def;
}

export function commonContext(
  model: TableModel,
  target: DerivedTarget,
  options: PlanOptions,
  toolVersion: string,
): CommonContext {
  const names = runNames(model.schema, model.name);
  const tool = (n: string) => qualified(names.toolSchema, n);
  const src = qualified(model.schema, model.name);
  const copy = qualified(model.schema, names.copyTable);
  const old = qualified(model.schema, names.oldTable);
  const key = model.key.columns;
  const func = {
    capture: tool(names.captureFunction),
    reverseCapture: tool(names.reverseCaptureFunction),
    truncate: tool(names.truncateFunction),
    apply: tool(names.applyFunction),
    reverseApply: tool(names.reverseApplyFunction),
    backfill: tool(names.backfillProcedure),
    catchup: tool(names.catchupProcedure),
    reverseCatchup: tool(names.reverseCatchupProcedure),
    guard: tool(names.guardFunction),
    waitSnapshots: tool(`wait_${names.runId}`),
    snapshotHolders: tool(`snapshots_${names.runId}`),
    throttle: tool(names.throttleProcedure),
    hold: tool(names.holdProcedure),
    owner: tool(names.ownerFunction),
    reverseOwner: tool(names.reverseOwnerFunction),
    verifyOwner: tool(names.verifyOwnerFunction),
    asOwner: tool(names.asOwnerFunction),
    session: tool(names.sessionFunction),
    ownerCheck: tool(names.ownerCheckFunction),
  };
  const stepInput = { model, target, names, src, copy, old, func };
  const machine = stageMachine(options);
  // Each step says which locks it takes, beside it in the script.
  const safe = (steps: readonly Step[]): AnnotatedStep[] =>
    steps.map((s) => ({ ...s, comment: commentText(s.comment), locks: commentText(locksText(s.locks)) }));
  const related = relatedTables(model);
  // The table stays in its own tablespace unless the plan moves it (--tablespace).
  const copySpace = target.tablespace ?? model.tablespace;
  // The apply's scratch tables are temporary: the owner's statements use them, and it cannot reach the tool's schema.
  const forward = forwardSide(model, target, qualified('pg_temp', names.keepTable));
  const reverse = reverseSide(model, target, qualified('pg_temp', names.reverseKeepTable));
  const ownerColumnsSql = `ALTER TABLE ${copy} ${target.ownerColumns.map((c) => `ADD COLUMN ${columnDefinition(c)}`).join(', ')}`;
  const steps = stageSteps(stepInput, ownerColumnsSql);
  const backfillOrder = target.orderBy.length > 0 ? ` ORDER BY ${target.orderBy.map(ident).join(', ')}` : '';
  return {
    toolVersion,
    model,
    target,
    forward,
    reverse,
    copyTablespace: copySpace === null ? '' : ` TABLESPACE ${ident(copySpace)}`,
    // Ordered: one batch, whatever the control table says. Otherwise the batch size comes from the control table.
    backfillBatchPages: target.orderBy.length > 0 ? '2147483647' : '',
    backfillText:
      target.orderBy.length > 0
        ? commentText(
            `Copy the existing rows in one transaction, written in the order of (${target.orderBy.join(', ')}); an interruption starts the copy over.`,
          )
        : `Copy the existing rows in committed batches of ${options.batchPages} heap pages, resuming where it stopped.\n-- The batch size is read from the control table before each batch ("shadowpack control --batch-pages N" changes it while this runs);\n-- between batches the throttle waits while the run is paused or throttled.`,
    backfillOrder,
    names,
    options,
    fingerprint: model.fingerprint,
    // Shown in comments and messages: quoted, so it is unambiguous, and safe inside a comment.
    tableDisplay: commentText(src),
    src,
    copy,
    old,
    changeLog: tool(names.logTable),
    reverseLog: tool(names.reverseLogTable),
    stateTable: tool('runs'),
    historyTable: tool('history'),
    // Removed by cleanup and abort whatever this plan's target needs (abort removes any plan's run).
    keepTables: [tool(names.keepTable), tool(names.reverseKeepTable)],
    controlTable: tool(names.controlTable),
    rangesTable: tool(names.rangesTable),
    func,
    guardProcedure: `${func.guard}(text)`,
    signature: signatureSql(model.schema, model.name, names.toolSchema),
    advisory: advisoryKeys(parseInt(names.runId.slice(0, 7), 16)),
    columnDefs: target.copyColumns.map(columnDefinition),
    createdGeneratedList: target.createdGenerated.length === 0 ? '' : literal(target.createdGenerated.join(', ')),
    copyReloptions: copyReloptions(target.model),
    partitionTables: (target.partitioning?.partitions ?? []).map((p) => qualified(model.schema, p.name)),
    copyStorage:
      target.partitioning === null
        ? ` WITH (${copyReloptions(target.model)})`
        : ` PARTITION BY RANGE (${ident(target.partitioning.column)})`,
    overriding: insertOverriding(model),
    keyList: key.map(ident).join(', '),
    logKeyList: key.map((_, i) => `k${i + 1}`).join(', '),
    guardRules: guardRules(machine),
    interruptedStates: interruptedStates(machine).map(literal).join(', '),
    swappedStates: doneStates(stageRule(machine, 'swap')).map(literal).join(', '),
    stageRecords: Object.fromEntries(ALL_STAGES.map((s) => [s, stageRecord(machine, s)])) as {
      [K in StageName]: StageRecord;
    },
    guardTriggers: [
      { side: 'capture' as const, rel: src, name: names.captureTrigger },
      { side: 'capture' as const, rel: src, name: names.truncateTrigger },
      // After the swap the table's name is the rebuilt table's, which carries the reverse capture.
      { side: 'reverse' as const, rel: src, name: names.reverseCaptureTrigger },
      { side: 'reverse' as const, rel: src, name: names.truncateTrigger },
      // A partition fires its own clone of the parent's row trigger, and a statement trigger only when named itself.
      ...(target.partitioning?.partitions ?? []).flatMap((p) =>
        [names.reverseCaptureTrigger, names.truncateTrigger].map((name) => ({
          side: 'reverse' as const,
          rel: qualified(model.schema, p.name),
          name,
        })),
      ),
    ].map((t) => ({ side: t.side, rel: literal(t.rel), name: literal(t.name) })),
    stepData: steps,
    copyColumnSteps: safe(steps.copyColumnSteps),
    ownerColumnsSql,
    ownerColumnSteps: safe(steps.ownerColumnSteps),
    alterSetupSteps: safe(steps.alterSetupSteps),
    partitionSetupSteps: safe(steps.partitionSetupSteps),
    alterOwnerSteps: safe(steps.alterOwnerSteps),
    keyText: commentText(key.join(', ')).replaceAll("'", "''").replaceAll('%', '%%'),
    buildItems: buildItems(steps.buildSteps, ADVISORY_CLASS + 1),
    swapSteps: safe(steps.swapSteps),
    revertSteps: safe(steps.revertSteps),
    oldTableDependentsCheck: unplannedDependentsCheck('cleanup', old, model, false),
    validateSteps: safe(steps.validateSteps),
    privilegeCheck: missingPrivilegesSql(`${literal(src)}::regclass::oid`, 'current_user', literal(names.toolSchema))
      .trim()
      .replace(/\n/g, '\n    '),
    related,
    verify: {
      algorithm: RANGE_CHECKSUM_ALGORITHM,
      settings: CANONICAL_SETTINGS,
      // Indented to sit inside the FOR loop of the verify stage.
      // Run as the table's owner (it evaluates --alter expressions): the pending keys come in as arrays.
      rangesSql:
        options.verifyRanges > 0
          ? literal(
              rangeChecksumSql(
                model,
                'before-swap',
                options.verifyRanges,
                '',
                {
                  differences: target.differences,
                  forward: target.forward,
                  targetColumns: target.model.columns,
                  partitioned: target.partitioning !== null,
                },
                forward.keysFromArrays,
              ),
            )
          : '',
    },
    asOwner: ownerStatements({
      src,
      copy,
      old,
      forward,
      reverse,
      backfillOrder,
      keyList: key.map(ident).join(', '),
      overriding: insertOverriding(model),
      changeLog: tool(names.logTable),
      keyListQualified: key.map((k) => `${src}.${ident(k)}`),
    }),
  };
}
