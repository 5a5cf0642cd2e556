import { commentText, ident, literal, qualified } from '../model/quote.js';
import { runNames, type RunNames } from '../model/names.js';
import { signatureSql } from '../model/signature.js';
import type { TableModel } from '../model/types.js';
import type { PlanOptions } from './options.js';
import { insertOverriding } from './identity-steps.js';
import { buildSteps, copyColumnSteps, copyReloptions, relatedTables, revertSteps, swapSteps, validateSteps, type Step } from './steps.js';

/** The part of the template context shared by every stage. */
export interface CommonContext {
  readonly toolVersion: string;
  readonly model: TableModel;
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
  readonly func: Readonly<Record<string, string>>;
  readonly signature: string;
  readonly advisory: { readonly classId: number; readonly objId: number };
  readonly keyDefs: readonly string[];
  readonly columnDefs: readonly string[];
  readonly copyReloptions: string;
  readonly columnList: string;
  /** OVERRIDING SYSTEM VALUE for INSERTs into a table that has an identity ALWAYS column, else ''. */
  readonly overriding: string;
  readonly keyList: string;
  readonly logKeyList: string;
  readonly keyListS: string;
  readonly keyListOld: string;
  readonly keyListNew: string;
  readonly keyJoinTD: string;
  readonly guardRules: readonly { stage: string; allowed: string; allowedText: string; checkFingerprint: boolean }[];
  readonly copyColumnSteps: readonly Step[];
  readonly buildSteps: readonly Step[];
  readonly swapSteps: readonly Step[];
  readonly revertSteps: readonly Step[];
  readonly validateSteps: readonly Step[];
  readonly referencingTables: readonly string[];
  readonly related: { readonly children: readonly string[]; readonly parents: readonly string[] };
}

/** 'SPK' in ASCII: the first key of every shadowpack advisory lock. */
const ADVISORY_CLASS = 0x53504b;

function columnDefinition(c: TableModel['columns'][number]): string {
  let def = `${ident(c.name)} ${c.type}`;
  if (c.collation !== null) def += ` COLLATE ${c.collation}`;
  if (c.generated !== null) def += ` GENERATED ALWAYS AS (${c.generated}) STORED`;
  else if (c.default !== null) def += ` DEFAULT ${c.default}`;
  // Naming the NOT NULL keeps PostgreSQL 18's constraint name; older versions accept and ignore it.
  if (c.notNull) def += c.notNullName !== null ? ` CONSTRAINT ${ident(c.notNullName)} NOT NULL` : ' NOT NULL';
  return def;
}

function guardRule(stage: string, allowed: string[], checkFingerprint: boolean) {
  return { stage, allowed: allowed.map(literal).join(', '), allowedText: allowed.join(', '), checkFingerprint };
}

export function commonContext(model: TableModel, options: PlanOptions, toolVersion: string): CommonContext {
  const names = runNames(model.schema, model.name);
  const tool = (n: string) => qualified(names.toolSchema, n);
  const src = qualified(model.schema, model.name);
  const copy = qualified(model.schema, names.copyTable);
  const old = qualified(model.schema, names.oldTable);
  const key = model.key.columns;
  const keyColumns = key.map((k) => {
    const col = model.columns.find((c) => c.name === k);
    if (!col) throw new Error(`key column ${k} missing from the model`);
    return col;
  });
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
  };
  const stepInput = { model, names, src, copy, old, func };
  const safe = (steps: Step[]): Step[] => steps.map((s) => ({ ...s, comment: commentText(s.comment) }));
  const related = relatedTables(model);
  return {
    toolVersion,
    model,
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
    func,
    signature: signatureSql(model.schema, model.name, names.toolSchema),
    advisory: { classId: ADVISORY_CLASS, objId: parseInt(names.runId.slice(0, 7), 16) },
    keyDefs: keyColumns.map((c, i) => `k${i + 1} ${c.type}${c.collation !== null ? ` COLLATE ${c.collation}` : ''} NOT NULL`),
    columnDefs: model.columns.map(columnDefinition),
    copyReloptions: copyReloptions(model),
    overriding: insertOverriding(model),
    columnList: model.columns.filter((c) => c.generated === null).map((c) => ident(c.name)).join(', '),
    keyList: key.map(ident).join(', '),
    logKeyList: key.map((_, i) => `k${i + 1}`).join(', '),
    keyListS: key.map((k) => `s.${ident(k)}`).join(', '),
    keyListOld: key.map((k) => `OLD.${ident(k)}`).join(', '),
    keyListNew: key.map((k) => `NEW.${ident(k)}`).join(', '),
    keyJoinTD: key.map((k, i) => `t.${ident(k)} = d.k${i + 1}`).join(' AND '),
    guardRules: [
      guardRule('backfill', ['setup', 'backfill'], true),
      guardRule('build', ['backfill', 'build'], true),
      guardRule('catchup', ['build', 'catchup'], true),
      guardRule('swap', ['catchup'], true),
      guardRule('swap-locked', ['catchup'], true),
      guardRule('revert', ['swap'], false),
    ],
    copyColumnSteps: safe(copyColumnSteps(stepInput)),
    buildSteps: safe(buildSteps(stepInput)),
    swapSteps: safe(swapSteps(stepInput)),
    revertSteps: safe(revertSteps(stepInput)),
    validateSteps: safe(validateSteps(stepInput)),
    referencingTables: related.children,
    related,
  };
}
