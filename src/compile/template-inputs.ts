import { commentText, ident } from '../model/quote.js';
import type { RunNames } from '../model/names.js';
import type { EnvironmentFacts, TableModel } from '../model/types.js';
import type { AnnotatedStep, CommonContext } from './context.js';
import type { LockSpec } from './locks.js';
import type { PlanOptions } from './options.js';
import type { OwnerStatements } from './owner-statements.js';
import type { StageRecord, TriggerSide } from './stage-machine.js';
import type { StageInfo, StageName } from './stages.js';
import type { DerivedTarget } from './transform/derive.js';
import type { CopySide } from './transform/sides.js';

/**
 * What the templates get. Every field that a template prints says by its name's suffix what it
 * holds, so a reader (and test/unit/template-kinds.test.ts) can tell where it may go:
 * - `…Sql`: SQL text, a statement or a fragment (and `sql` of a step): only in code;
 * - `…Ident`: a quoted name, or a list of them (an object of them: each of its fields): only in code;
 * - `…Literal`: a quoted literal, or a list of them: only in code;
 * - `…InLiteral`: text with its quotes doubled, to sit inside a '…' literal;
 * - `…Text`: comment-safe text (commentText: a line break cannot end the comment): only in comments.
 * Fields without a suffix are data (names, option values, numbers): a template passes them to a
 * quoting helper or tests them, and prints one as it is only when it is a number, a boolean or an
 * id the tool generates.
 */

/** A step as a template prints it (the step loop, partials/steps.hbs). */
export interface StepInput {
  readonly commentText: string;
  /** The locks it takes, or '' (none worth saying). */
  readonly locksText: string;
  readonly sql: string;
}

/** A build item (build-items.ts) as build.sql.hbs prints it. */
export interface BuildItemInput {
  readonly commentText: string;
  readonly locksText: string;
  /** A session setting every session runs, or null for an item. */
  readonly settingSql: string | null;
  /** The item's advisory lock key. */
  readonly key: number | null;
  readonly statementsSql: string;
}

/** The stage being rendered: its header, and what it records (the stage machine). */
export interface StageInput extends StageInfo {
  readonly transactionText: string;
  readonly blockingLocksText: string;
  readonly hazardsText: string;
  readonly requiresText: string;
  readonly summaryText: string;
  readonly recordLiteral: StageRecord;
  readonly anyPlansRun: boolean;
  readonly parallel: boolean;
}

/** The stage's locking step (partials/lock.hbs). */
export interface LockInput {
  /** Its stable name in lock reports (data). */
  readonly step: string;
  /** What it locks: data for a literal, and as comment text. */
  readonly description: string;
  readonly descriptionText: string;
  readonly locksText: string;
  /** PL/pgSQL statements run inside one attempt. */
  readonly statementsSql: readonly string[];
  /** SQL condition on pg_locks `l`. */
  readonly conflictsSql: string;
  readonly checksSnapshots: boolean;
  /** The log applied under the lock, or null. */
  readonly appliedLogIdent: string | null;
}

/** Every field a stage template may get; each stage gets the part it uses (stageInput). */
export interface TemplateInput {
  readonly toolVersion: string;
  readonly appName: string;
  readonly stage: StageInput;
  readonly lock: LockInput;
  readonly model: TableModel;
  readonly target: DerivedTarget;
  readonly names: RunNames;
  readonly options: PlanOptions;
  readonly advisory: CommonContext['advisory'];
  readonly fingerprint: string;
  readonly tableText: string;
  /** The tool's schema, quoted, for a comment. */
  readonly toolSchemaText: string;
  readonly srcIdent: string;
  readonly copyIdent: string;
  readonly copyText: string;
  readonly oldIdent: string;
  readonly oldText: string;
  readonly changeLogIdent: string;
  readonly reverseLogIdent: string;
  readonly stateTableIdent: string;
  readonly historyTableIdent: string;
  readonly controlTableIdent: string;
  readonly controlTableText: string;
  readonly controlTableInLiteral: string;
  readonly rangesTableIdent: string;
  readonly keepTablesIdent: readonly string[];
  readonly partitionTablesIdent: readonly string[];
  /** The run's functions and procedures, qualified. */
  readonly funcIdent: Readonly<Record<string, string>>;
  /** The guard function with its argument types, for to_regprocedure. */
  readonly guardProcedureSql: string;
  /** The expression computing the table's fingerprint now. */
  readonly signatureSql: string;
  /** Both directions of copying; their `…Text` fields are comment-safe text, everything else SQL. */
  readonly forwardSql: CopySide;
  readonly reverseSql: CopySide;
  readonly copyTablespaceSql: string;
  readonly copyStorageSql: string;
  readonly columnDefsSql: readonly string[];
  readonly createdGeneratedLiteral: string;
  readonly backfillBatchPagesSql: string;
  readonly backfillText: string;
  readonly logKeyListSql: string;
  /** The key's column names inside a RAISE format literal (quotes and % doubled). */
  readonly keyInLiteral: string;
  readonly guardRules: readonly {
    readonly stage: string;
    readonly allowedLiteral: string;
    readonly allowedText: string;
    readonly checkFingerprint: boolean;
    readonly triggers: TriggerSide;
    readonly doneLiteral: string | null;
    readonly doneHintLiteral: string;
    readonly notNowHintLiteral: string;
  }[];
  readonly interruptedStatesLiteral: string;
  readonly swappedStatesLiteral: string;
  readonly stageRecordsLiteral: { readonly [K in StageName]: StageRecord };
  readonly guardTriggers: readonly {
    readonly side: TriggerSide;
    readonly relLiteral: string;
    readonly nameLiteral: string;
  }[];
  readonly copyColumnSteps: readonly StepInput[];
  readonly ownerColumnSteps: readonly StepInput[];
  readonly partitionSetupSteps: readonly StepInput[];
  readonly alterOwnerSteps: readonly StepInput[];
  readonly buildItems: readonly BuildItemInput[];
  readonly swapSteps: readonly StepInput[];
  readonly revertSteps: readonly StepInput[];
  readonly validateSteps: readonly StepInput[];
  readonly oldTableDependentsCheckSql: string;
  readonly privilegeCheckSql: string;
  readonly verify: {
    readonly algorithm: string;
    readonly settingsSql: readonly string[];
    readonly rangesLiteral: string;
  };
  /** Statements run as the table's owner, each a quoted literal; badRowSqlstate is data. */
  readonly asOwnerLiteral: OwnerStatements;
  readonly badRowSqlstate: string;
}

const steps = (list: readonly AnnotatedStep[]): StepInput[] =>
  list.map((s) => ({ commentText: s.comment, locksText: s.locks, sql: s.sql }));

/** The inputs of every stage template, from the plan's common context and the stage's own parts. */
export function templateInput(
  c: CommonContext,
  stage: StageInput,
  lock: LockSpec & { readonly locksText: string },
  appName: string,
): TemplateInput {
  return {
    toolVersion: c.toolVersion,
    appName,
    stage,
    lock: {
      step: lock.step,
      description: lock.description,
      descriptionText: commentText(lock.description),
      locksText: lock.locksText,
      statementsSql: lock.statements,
      conflictsSql: lock.conflicts,
      checksSnapshots: lock.checksSnapshots,
      appliedLogIdent: lock.appliedLog,
    },
    model: c.model,
    target: c.target,
    names: c.names,
    options: c.options,
    advisory: c.advisory,
    fingerprint: c.fingerprint,
    tableText: c.tableDisplay,
    toolSchemaText: commentText(ident(c.names.toolSchema)),
    srcIdent: c.src,
    copyIdent: c.copy,
    copyText: commentText(c.copy),
    oldIdent: c.old,
    oldText: commentText(c.old),
    changeLogIdent: c.changeLog,
    reverseLogIdent: c.reverseLog,
    stateTableIdent: c.stateTable,
    historyTableIdent: c.historyTable,
    controlTableIdent: c.controlTable,
    controlTableText: commentText(c.controlTable),
    controlTableInLiteral: c.controlTable.replaceAll("'", "''"),
    rangesTableIdent: c.rangesTable,
    keepTablesIdent: c.keepTables,
    partitionTablesIdent: c.partitionTables,
    funcIdent: c.func,
    guardProcedureSql: c.guardProcedure,
    signatureSql: c.signature,
    forwardSql: c.forward,
    reverseSql: c.reverse,
    copyTablespaceSql: c.copyTablespace,
    copyStorageSql: c.copyStorage,
    columnDefsSql: c.columnDefs,
    createdGeneratedLiteral: c.createdGeneratedList,
    backfillBatchPagesSql: c.backfillBatchPages,
    backfillText: c.backfillText,
    logKeyListSql: c.logKeyList,
    keyInLiteral: c.keyText,
    guardRules: c.guardRules.map((r) => ({
      stage: r.stage,
      allowedLiteral: r.allowed,
      allowedText: r.allowedText,
      checkFingerprint: r.checkFingerprint,
      triggers: r.triggers,
      doneLiteral: r.done,
      doneHintLiteral: r.doneHint,
      notNowHintLiteral: r.notNowHint,
    })),
    interruptedStatesLiteral: c.interruptedStates,
    swappedStatesLiteral: c.swappedStates,
    stageRecordsLiteral: c.stageRecords,
    guardTriggers: c.guardTriggers.map((t) => ({ side: t.side, relLiteral: t.rel, nameLiteral: t.name })),
    copyColumnSteps: steps(c.copyColumnSteps),
    ownerColumnSteps: steps(c.ownerColumnSteps),
    partitionSetupSteps: steps(c.partitionSetupSteps),
    alterOwnerSteps: steps(c.alterOwnerSteps),
    buildItems: c.buildItems.map((i) => ({
      commentText: i.comment,
      locksText: i.locks,
      settingSql: i.setting,
      key: i.key,
      statementsSql: i.statements,
    })),
    swapSteps: steps(c.swapSteps),
    revertSteps: steps(c.revertSteps),
    validateSteps: steps(c.validateSteps),
    oldTableDependentsCheckSql: c.oldTableDependentsCheck,
    privilegeCheckSql: c.privilegeCheck,
    verify: { algorithm: c.verify.algorithm, settingsSql: c.verify.settings, rangesLiteral: c.verify.rangesSql },
    asOwnerLiteral: c.asOwner,
    badRowSqlstate: c.asOwner.badRowSqlstate,
  };
}

/** What the header, the run's advisory lock and the plan check (partials/header.hbs) read: every stage. */
const HEADER = [
  'toolVersion',
  'appName',
  'stage',
  'options',
  'names',
  'advisory',
  'tableText',
  'stateTableIdent',
] as const;
/** The guard of a forward stage (partials/guard.hbs). */
const GUARD = ['guardProcedureSql', 'funcIdent'] as const;
/** What cleanup, abort and revert's removal of the run's objects reads (partials/remove-tool-objects.hbs). */
const REMOVE = [
  'copyIdent',
  'changeLogIdent',
  'reverseLogIdent',
  'keepTablesIdent',
  'controlTableIdent',
  'rangesTableIdent',
  'historyTableIdent',
  'funcIdent',
  'forwardSql',
  'reverseSql',
] as const;

/**
 * The fields each stage template reads, through its partials, and no other (test/unit/template-kinds.test.ts
 * compares these lists with the templates): a stage's input says what its script is made of.
 */
export const STAGE_FIELDS = {
  preflight: [
    ...HEADER,
    'srcIdent',
    'copyIdent',
    'oldIdent',
    'historyTableIdent',
    'fingerprint',
    'signatureSql',
    'privilegeCheckSql',
  ],
  setup: [
    ...HEADER,
    'lock',
    'model',
    'target',
    'fingerprint',
    'signatureSql',
    'toolSchemaText',
    'srcIdent',
    'copyIdent',
    'changeLogIdent',
    'reverseLogIdent',
    'historyTableIdent',
    'rangesTableIdent',
    'partitionTablesIdent',
    'funcIdent',
    'controlTableIdent',
    'controlTableText',
    'controlTableInLiteral',
    'forwardSql',
    'reverseSql',
    'columnDefsSql',
    'copyStorageSql',
    'copyTablespaceSql',
    'createdGeneratedLiteral',
    'logKeyListSql',
    'copyColumnSteps',
    'partitionSetupSteps',
    'ownerColumnSteps',
    'alterOwnerSteps',
    'asOwnerLiteral',
    'badRowSqlstate',
    'keyInLiteral',
    'guardRules',
    'guardTriggers',
    'interruptedStatesLiteral',
    'swappedStatesLiteral',
    'stageRecordsLiteral',
  ],
  backfill: [...HEADER, ...GUARD, 'changeLogIdent', 'backfillBatchPagesSql', 'backfillText'],
  build: [...HEADER, ...GUARD, 'buildItems', 'copyIdent', 'copyText'],
  catchup: [...HEADER, ...GUARD, 'changeLogIdent'],
  verify: [...HEADER, ...GUARD, 'changeLogIdent', 'forwardSql', 'verify'],
  swap: [...HEADER, ...GUARD, 'lock', 'changeLogIdent', 'guardTriggers', 'swapSteps', 'validateSteps'],
  cleanup: [
    ...HEADER,
    ...REMOVE,
    'lock',
    'srcIdent',
    'oldIdent',
    'oldText',
    'partitionTablesIdent',
    'oldTableDependentsCheckSql',
    'validateSteps',
  ],
  abort: [...HEADER, ...REMOVE, 'lock', 'srcIdent', 'validateSteps'],
  revert: [...HEADER, ...GUARD, ...REMOVE, 'lock', 'revertSteps', 'validateSteps'],
} as const satisfies { readonly [K in StageName]: readonly (keyof TemplateInput)[] };

/** One stage's template input: only the fields its template reads. */
export type StageTemplateInput<K extends StageName> = Pick<TemplateInput, (typeof STAGE_FIELDS)[K][number]>;

export function stageInput<K extends StageName>(stage: K, all: TemplateInput): StageTemplateInput<K> {
  const fields: readonly (keyof TemplateInput)[] = STAGE_FIELDS[stage];
  return Object.fromEntries(fields.map((f) => [f, all[f]])) as StageTemplateInput<K>;
}

/** binding.sql's input (the one file written per environment), for a rebuild's plan and each side of a move's. */
export interface BindingInput {
  readonly toolVersion: string;
  readonly planId: string;
  readonly tableText: string;
  readonly runId: string;
  readonly database: string;
  readonly databaseText: string;
  readonly databaseOid: number;
  readonly systemIdentifier: string | null;
  readonly systemIdentifierText: string | null;
}

export function bindingInput(
  toolVersion: string,
  planId: string,
  tableText: string,
  runId: string,
  facts: Pick<EnvironmentFacts, 'database' | 'databaseOid' | 'systemIdentifier'>,
): BindingInput {
  return {
    toolVersion,
    planId,
    tableText,
    runId,
    database: facts.database,
    databaseText: commentText(JSON.stringify(facts.database)),
    databaseOid: facts.databaseOid,
    systemIdentifier: facts.systemIdentifier,
    systemIdentifierText: facts.systemIdentifier === null ? null : commentText(facts.systemIdentifier),
  };
}
