import type { ClientBase } from 'pg';
import type { PlanManifest } from '../compile/compile.js';
import { qualified } from '../model/quote.js';
import { TOOL_SCHEMA } from '../model/names.js';
import type { LockReport } from './events.js';

/** A row of the state table, as both executors leave it. */
export interface RunState {
  readonly stage: string;
  readonly backfillNext: number;
  readonly backfillEnd: number;
  readonly rowsCopied: number;
  readonly rowsApplied: number;
  readonly rowsReverted: number;
  readonly catchupRounds: number;
  readonly swapLockMs: number | null;
  readonly swapAttempts: number | null;
  readonly backlog: number | null;
  readonly reverseBacklog: number | null;
  /** Lock reports of the steps done so far (empty for a state table made by an earlier version). */
  readonly locks: readonly LockReport[];
  /** The plan id of the plan that started the run; null for a run started before runs recorded it. */
  readonly planId: string | null;
  /** When setup recorded the run, and when a stage last wrote to it (ISO 8601). */
  readonly createdAt: string;
  readonly updatedAt: string;
}

/**
 * Reads the run's state, or null when no run is recorded. Read-only. counts: false leaves the
 * backlogs null (counting the logs scans them; the runner only needs the stage between stages).
 */
export async function readState(
  client: ClientBase,
  manifest: PlanManifest,
  { counts = true }: { counts?: boolean } = {},
): Promise<RunState | null> {
  const state = qualified(TOOL_SCHEMA, 'runs');
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [state]);
  if (exists.rows[0]?.t == null) return null;
  const r = await client.query(`SELECT * FROM ${state} WHERE run_id = $1`, [manifest.runId]);
  const row = r.rows[0] as Record<string, unknown> | undefined;
  if (!row) return null;
  const count = async (table: string): Promise<number | null> => {
    if (!counts) return null;
    const q = qualified(TOOL_SCHEMA, table);
    const e = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [q]);
    if (e.rows[0]?.t == null) return null;
    return Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${q}`)).rows[0]!.n);
  };
  return {
    stage: String(row['stage']),
    backfillNext: Number(row['backfill_next']),
    backfillEnd: Number(row['backfill_end']),
    rowsCopied: Number(row['rows_copied']),
    rowsApplied: Number(row['rows_applied']),
    rowsReverted: Number(row['rows_reverted']),
    catchupRounds: Number(row['catchup_rounds']),
    swapLockMs: row['swap_lock_ms'] == null ? null : Number(row['swap_lock_ms']),
    swapAttempts: row['swap_attempts'] == null ? null : Number(row['swap_attempts']),
    backlog: await count(`log_${manifest.runId}`),
    reverseBacklog: await count(`rlog_${manifest.runId}`),
    locks: Array.isArray(row['locks']) ? (row['locks'] as LockReport[]) : [],
    planId: row['plan_id'] == null ? null : String(row['plan_id']),
    createdAt: isoOf(row['created_at']),
    updatedAt: isoOf(row['updated_at']),
  };
}

function isoOf(v: unknown): string {
  return v instanceof Date ? v.toISOString() : String(v);
}

/**
 * Appends lock reports to the run's state. For a step that gave up: its transaction rolled back the
 * report it would have stored itself, and `status` should still say why the stage stopped.
 */
export async function appendLockReports(
  client: ClientBase,
  manifest: PlanManifest,
  reports: readonly LockReport[],
): Promise<void> {
  const state = qualified(TOOL_SCHEMA, 'runs');
  const column = await client.query(
    "SELECT FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'locks' AND NOT attisdropped",
    [state],
  );
  if (column.rowCount === 0) return;
  // Never queue behind anybody for this bookkeeping.
  await client.query("SET lock_timeout = '2s'");
  await client.query(`UPDATE ${state} SET locks = locks || $1::jsonb WHERE run_id = $2`, [
    JSON.stringify(reports),
    manifest.runId,
  ]);
}

/** A finished run of a plan, as the history keeps it after cleanup removed everything else. */
export interface FinishedRun {
  readonly outcome: string;
  readonly endedAt: string;
  readonly endedBy: string;
}

/** The last run of this plan that ended (cleaned, aborted or reverted), or null. Read-only. */
export async function readFinished(client: ClientBase, manifest: PlanManifest): Promise<FinishedRun | null> {
  if (manifest.planId === undefined) return null;
  const history = qualified(TOOL_SCHEMA, 'history');
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [history]);
  if (exists.rows[0]?.t == null) return null;
  const r = await client.query<{ outcome: string; ended_at: Date; ended_by: string }>(
    `SELECT outcome, ended_at, ended_by FROM ${history} WHERE plan_id = $1 AND ended_at IS NOT NULL ORDER BY ended_at DESC LIMIT 1`,
    [manifest.planId],
  );
  const row = r.rows[0];
  return row === undefined ? null : { outcome: row.outcome, endedAt: isoOf(row.ended_at), endedBy: row.ended_by };
}
