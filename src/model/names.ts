import { createHash } from 'node:crypto';
import { byteLength } from './quote.js';

/** The schema that holds the tool's own objects (state, logs, functions). */
export const TOOL_SCHEMA = 'shadowpack';

/**
 * Names of every object a run creates, derived from the table's qualified
 * name only (never an OID or a clock), so the same schema gives the same plan.
 */
export interface RunNames {
  /** Short hash of schema + table: the run id and the suffix of every name. */
  readonly runId: string;
  readonly toolSchema: string;
  readonly copyTable: string;
  readonly oldTable: string;
  readonly logTable: string;
  readonly reverseLogTable: string;
  /** Scratch tables of the two apply functions, for columns the mapping does not fill (only when there are some). */
  readonly keepTable: string;
  readonly reverseKeepTable: string;
  readonly captureTrigger: string;
  readonly reverseCaptureTrigger: string;
  readonly truncateTrigger: string;
  readonly captureFunction: string;
  readonly reverseCaptureFunction: string;
  readonly truncateFunction: string;
  readonly applyFunction: string;
  readonly reverseApplyFunction: string;
  readonly backfillProcedure: string;
  readonly catchupProcedure: string;
  readonly reverseCatchupProcedure: string;
  readonly guardFunction: string;
  /** The operator's controls for this run: pause, batch size, rows/s ceiling, swap release. */
  readonly controlTable: string;
  /** The backfill's work items: page ranges not copied yet, each claimed by one session at a time. */
  readonly rangesTable: string;
  readonly throttleProcedure: string;
  readonly holdProcedure: string;
  /** Runs a statement as the table's owner (SECURITY DEFINER, owned by the owner when the runner is a superuser): forward and reverse key types. */
  readonly ownerFunction: string;
  readonly reverseOwnerFunction: string;
  /** The verify stage's comparison, run as the owner: it evaluates --alter expressions. */
  readonly verifyOwnerFunction: string;
  /** The runner's side of such a call: the session's settings before and after, and the check between them. */
  readonly asOwnerFunction: string;
  readonly sessionFunction: string;
  readonly ownerCheckFunction: string;
  /** Name for the i-th index (sorted model order) while it lives on the copy. */
  copyIndex(i: number): string;
  /** Name for the i-th index of the old table once the swap renamed it. */
  oldIndex(i: number): string;
  /** Name for the i-th extended statistics object (sorted model order) while it lives on the copy. */
  copyStatistics(i: number): string;
  /** Name for the old table's i-th extended statistics object once the swap renamed it. */
  oldStatistics(i: number): string;
  /** Name for the old table's i-th identity sequence once the swap renamed it. */
  oldSequence(i: number): string;
}

export function runIdFor(schema: string, table: string): string {
  return createHash('sha256').update(`${schema}\u0000${table}`).digest('hex').slice(0, 12);
}

export function runNames(schema: string, table: string): RunNames {
  const id = runIdFor(schema, table);
  const p = `_sp_${id}`;
  const names: RunNames = {
    runId: id,
    toolSchema: TOOL_SCHEMA,
    copyTable: `${p}_new`,
    oldTable: `${p}_old`,
    logTable: `log_${id}`,
    reverseLogTable: `rlog_${id}`,
    keepTable: `keep_${id}`,
    reverseKeepTable: `rkeep_${id}`,
    captureTrigger: `${p}_capture`,
    reverseCaptureTrigger: `${p}_rcapture`,
    truncateTrigger: `${p}_truncate`,
    captureFunction: `capture_${id}`,
    reverseCaptureFunction: `rcapture_${id}`,
    truncateFunction: `truncate_${id}`,
    applyFunction: `apply_${id}`,
    reverseApplyFunction: `rapply_${id}`,
    backfillProcedure: `backfill_${id}`,
    catchupProcedure: `catchup_${id}`,
    reverseCatchupProcedure: `rcatchup_${id}`,
    guardFunction: `guard_${id}`,
    controlTable: `control_${id}`,
    rangesTable: `ranges_${id}`,
    throttleProcedure: `throttle_${id}`,
    holdProcedure: `hold_${id}`,
    ownerFunction: `owner_${id}`,
    reverseOwnerFunction: `rowner_${id}`,
    verifyOwnerFunction: `vowner_${id}`,
    asOwnerFunction: `as_owner_${id}`,
    sessionFunction: `session_${id}`,
    ownerCheckFunction: `owner_check_${id}`,
    copyIndex: (i) => `${p}_i${i}`,
    oldIndex: (i) => `${p}_o${i}`,
    oldSequence: (i) => `${p}_q${i}`,
    copyStatistics: (i) => `${p}_s${i}`,
    oldStatistics: (i) => `${p}_t${i}`,
  };
  for (const n of [
    names.copyTable,
    names.oldTable,
    names.logTable,
    names.captureTrigger,
    names.reverseCatchupProcedure,
    names.copyIndex(9999),
    names.oldSequence(1599),
  ]) {
    if (byteLength(n) > 63) throw new Error(`generated name too long: ${n}`);
  }
  return names;
}
