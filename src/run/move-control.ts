import type { ClientBase } from 'pg';
import { UserError } from '../model/errors.js';
import { TOOL_SCHEMA } from '../model/names.js';
import { qualified } from '../model/quote.js';

/** The target's control row of a move (02-setup.target.sql): what the operator set, what the move waits for. */
export interface MoveControlState {
  readonly paused: boolean;
  readonly batchPages: number;
  readonly maxRowsPerSecond: number;
  readonly cutoverReleased: boolean;
  readonly waitingFor: string | null;
  readonly waitingSince: string | null;
}

/** What `shadowpack control` may change on a move; absent fields stay as they are. */
export interface MoveControlChange {
  readonly paused?: boolean;
  readonly batchPages?: number;
  readonly maxRowsPerSecond?: number;
  readonly cutoverReleased?: boolean;
}

const controlTable = (runId: string): string => qualified(TOOL_SCHEMA, `move_${runId}_control`);

const COLUMNS = 'paused, batch_pages, max_rows_per_second, cutover_released, waiting_for, waiting_since';

/** How the stage scripts (templates/move/partials/move-round.hbs) begin the waits an operator ends. */
const PAUSE_WAIT = 'paused by the operator';
const RELEASE_WAIT = 'release of the cut-over';

function toState(row: Record<string, unknown>): MoveControlState {
  return {
    paused: row['paused'] === true,
    batchPages: Number(row['batch_pages']),
    maxRowsPerSecond: Number(row['max_rows_per_second']),
    cutoverReleased: row['cutover_released'] === true,
    waitingFor: row['waiting_for'] == null ? null : String(row['waiting_for']),
    waitingSince: row['waiting_since'] == null ? null : (row['waiting_since'] as Date).toISOString(),
  };
}

/** Whether a session on this target runs a stage of the move now (each stage names itself in application_name). */
export async function moveStageRunning(client: ClientBase, runId: string): Promise<boolean> {
  const r = await client.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_catalog.pg_stat_activity
      WHERE datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid() AND starts_with(application_name, $1)`,
    [`shadowpack:${runId}:`],
  );
  return Number(r.rows[0]!.n) > 0;
}

/** The control row as it stands; a wait recorded by a stage no session runs any more is over (left out). */
export async function readMoveControl(client: ClientBase, runId: string): Promise<MoveControlState | null> {
  const table = controlTable(runId);
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
  if (exists.rows[0]?.t == null) return null;
  const r = await client.query(`SELECT ${COLUMNS} FROM ${table}`);
  if (!r.rows[0]) return null;
  const c = toState(r.rows[0] as Record<string, unknown>);
  return c.waitingFor === null || (await moveStageRunning(client, runId))
    ? c
    : { ...c, waitingFor: null, waitingSince: null };
}

/**
 * Changes the target's control row in one short transaction; the running backfill or catch-up reads it between
 * batches and rounds. `--resume` and `--release-cutover` clear the wait they end at once.
 */
export async function updateMoveControl(
  client: ClientBase,
  runId: string,
  change: MoveControlChange,
): Promise<MoveControlState> {
  const table = controlTable(runId);
  const sets: string[] = [];
  const values: unknown[] = [];
  const add = (column: string, value: unknown) => {
    values.push(value);
    sets.push(`${column} = $${values.length}`);
  };
  if (change.paused !== undefined) add('paused', change.paused);
  if (change.batchPages !== undefined) add('batch_pages', change.batchPages);
  if (change.maxRowsPerSecond !== undefined) add('max_rows_per_second', change.maxRowsPerSecond);
  if (change.cutoverReleased !== undefined) add('cutover_released', change.cutoverReleased);
  const ended = [
    ...(change.paused === false ? [PAUSE_WAIT] : []),
    ...(change.cutoverReleased === true ? [RELEASE_WAIT] : []),
  ];
  if (ended.length > 0) {
    values.push(ended);
    const over = `EXISTS (SELECT FROM unnest($${values.length}::text[]) AS w(prefix) WHERE starts_with(waiting_for, w.prefix))`;
    sets.push(
      `waiting_for = CASE WHEN ${over} THEN NULL ELSE waiting_for END`,
      `waiting_since = CASE WHEN ${over} THEN NULL ELSE waiting_since END`,
    );
  }
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
  if (exists.rows[0]?.t == null)
    throw new UserError(
      'RUN_STATE',
      `no run of this move is set up on the target (${table} does not exist): run 02-setup.target.sql first (shadowpack run --until setup), or it has ended (cleanup or abort)`,
    );
  await client.query('BEGIN');
  try {
    await client.query("SET LOCAL lock_timeout = '5s'");
    const r = await client.query(
      `UPDATE ${table} SET ${sets.join(', ')}, updated_at = clock_timestamp() RETURNING ${COLUMNS}`,
      values,
    );
    await client.query('COMMIT');
    if (!r.rows[0]) throw new UserError('RUN_STATE', `${table} has no row; abort the move and plan it again`);
    const c = toState(r.rows[0] as Record<string, unknown>);
    return c.waitingFor === null || (await moveStageRunning(client, runId))
      ? c
      : { ...c, waitingFor: null, waitingSince: null };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
