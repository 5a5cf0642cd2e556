import type { ClientBase } from 'pg';
import type { PlanManifest } from '../compile/compile.js';
import { UserError } from '../model/errors.js';
import { runNames } from '../model/names.js';
import { qualified } from '../model/quote.js';

/** The control row of a run: what the operator set, and what the run is waiting for now. */
export interface ControlState {
  readonly paused: boolean;
  readonly batchPages: number;
  readonly maxRowsPerSecond: number;
  readonly swapReleased: boolean;
  readonly waitingFor: string | null;
  readonly waitingSince: string | null;
}

/** What `shadowpack control` may change; absent fields stay as they are. */
export interface ControlChange {
  readonly paused?: boolean;
  readonly batchPages?: number;
  readonly maxRowsPerSecond?: number;
  readonly swapReleased?: boolean;
}

function controlTable(manifest: PlanManifest): string {
  const names = runNames(manifest.table.schema, manifest.table.name);
  return qualified(names.toolSchema, names.controlTable);
}

function toState(row: Record<string, unknown>): ControlState {
  return {
    paused: row['paused'] === true,
    batchPages: Number(row['batch_pages']),
    maxRowsPerSecond: Number(row['max_rows_per_second']),
    swapReleased: row['swap_released'] === true,
    waitingFor: row['waiting_for'] == null ? null : String(row['waiting_for']),
    waitingSince: row['waiting_since'] == null ? null : (row['waiting_since'] as Date).toISOString(),
  };
}

/**
 * How the plan's wait procedures (templates/partials/control.hbs) begin the waits an operator ends.
 * `control --resume` / `--release-swap` clear the matching wait at once: a stage that is not
 * running (interrupted, timed out) would otherwise leave it standing (newcomer review finding 18).
 */
const PAUSE_WAIT = 'paused by the operator';
const RELEASE_WAIT = 'release of the swap';

/**
 * The control state as it stands: a wait recorded by a stage that no session runs any more is
 * over, so it is left out (its text and start time belonged to a stage that stopped).
 */
export function liveControl(c: ControlState, stageRunning: boolean): ControlState {
  return stageRunning || c.waitingFor === null ? c : { ...c, waitingFor: null, waitingSince: null };
}

const COLUMNS = 'paused, batch_pages, max_rows_per_second, swap_released, waiting_for, waiting_since';

/** The control row, or null when the run has none (not set up yet, or already cleaned up). Read-only. */
export async function readControl(client: ClientBase, manifest: PlanManifest): Promise<ControlState | null> {
  const table = controlTable(manifest);
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
  if (exists.rows[0]?.t == null) return null;
  const r = await client.query(`SELECT ${COLUMNS} FROM ${table}`);
  return r.rows[0] ? toState(r.rows[0] as Record<string, unknown>) : null;
}

/**
 * Changes the control row in one short transaction. The running stage reads
 * it between batches, so the change takes effect within one batch.
 */
export async function updateControl(
  client: ClientBase,
  manifest: PlanManifest,
  change: ControlChange,
): Promise<ControlState> {
  const table = controlTable(manifest);
  const sets: string[] = [];
  const values: unknown[] = [];
  const add = (column: string, value: unknown) => {
    values.push(value);
    sets.push(`${column} = $${values.length}`);
  };
  if (change.paused !== undefined) add('paused', change.paused);
  if (change.batchPages !== undefined) add('batch_pages', change.batchPages);
  if (change.maxRowsPerSecond !== undefined) add('max_rows_per_second', change.maxRowsPerSecond);
  if (change.swapReleased !== undefined) add('swap_released', change.swapReleased);
  const ended = [
    ...(change.paused === false ? [PAUSE_WAIT] : []),
    ...(change.swapReleased === true ? [RELEASE_WAIT] : []),
  ];
  if (ended.length > 0) {
    values.push(ended);
    // Both CASEs read the row as it was before this UPDATE.
    const over = `EXISTS (SELECT FROM unnest($${values.length}::text[]) AS w(prefix) WHERE starts_with(waiting_for, w.prefix))`;
    sets.push(
      `waiting_for = CASE WHEN ${over} THEN NULL ELSE waiting_for END`,
      `waiting_since = CASE WHEN ${over} THEN NULL ELSE waiting_since END`,
    );
  }
  if (sets.length === 0)
    throw new UserError(
      'BAD_ARGUMENT',
      'nothing to change: give --pause, --resume, --batch-pages N, --max-rows-per-second N or --release-swap',
    );
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
  if (exists.rows[0]?.t == null) {
    throw new UserError(
      'RUN_STATE',
      `no run of ${manifest.table.schema}.${manifest.table.name} is set up in this database (${table} does not exist); run the setup stage first`,
    );
  }
  // A short lock_timeout: the throttle holds the row only for an instant, so a long wait means something is wrong.
  await client.query('BEGIN');
  try {
    await client.query("SET LOCAL lock_timeout = '5s'");
    const r = await client.query(
      `UPDATE ${table} SET ${sets.join(', ')}, updated_at = clock_timestamp() RETURNING ${COLUMNS}`,
      values,
    );
    await client.query('COMMIT');
    if (!r.rows[0]) throw new UserError('RUN_STATE', `${table} has no row; run the abort stage and start again`);
    return toState(r.rows[0] as Record<string, unknown>);
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
