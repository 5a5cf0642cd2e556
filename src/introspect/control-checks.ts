import type { ClientBase } from 'pg';
import { UserError } from '../model/errors.js';
import { ident } from '../model/quote.js';

/** Type OIDs of int2, int4, int8, float4, float8 and numeric: what the throttle can compare. */
const NUMERIC_TYPES = new Set([20, 21, 23, 700, 701, 1700]);

/**
 * Runs the throttle probe once, read-only and with a statement_timeout, so a
 * probe that does not parse, is slow, or returns anything but one number is
 * refused at plan time rather than found out in the middle of a backfill.
 */
async function checkProbe(client: ClientBase, probe: string, timeoutMs: number): Promise<void> {
  await client.query('BEGIN READ ONLY');
  try {
    await client.query(`SET LOCAL statement_timeout = ${timeoutMs}`);
    let result;
    try {
      // The extended protocol takes exactly one statement: "SELECT 1; DROP ..." cannot slip through.
      result = (await client.query({ text: probe, rowMode: 'array', queryMode: 'extended' } as never)) as {
        fields: { dataTypeID: number }[];
        rows: unknown[][];
      };
    } catch (e) {
      throw new UserError(
        'BAD_OPTION',
        `--throttle-probe failed when run once read-only (${timeoutMs} ms timeout): ${(e as Error).message}; give a read-only query that returns one number quickly`,
        {},
        { cause: e },
      );
    }
    if (result.fields.length !== 1 || !NUMERIC_TYPES.has(result.fields[0]!.dataTypeID)) {
      throw new UserError(
        'BAD_OPTION',
        `--throttle-probe must return exactly one numeric column (it returned ${result.fields.length} column(s)${result.fields.length === 1 ? ' of a non-numeric type' : ''}); cast it, e.g. SELECT (...)::numeric`,
      );
    }
    if (result.rows.length !== 1) {
      throw new UserError(
        'BAD_OPTION',
        `--throttle-probe must return exactly one row (it returned ${result.rows.length}); wrap it, e.g. SELECT coalesce((SELECT ...), 0)`,
      );
    }
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/** Replay lag is hidden from roles that may not read other sessions' statistics: the throttle would never fire. */
async function checkReplicaLagVisible(client: ClientBase): Promise<void> {
  const r = await client.query<{ ok: boolean; who: string }>(
    "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER') AS ok, current_user AS who",
  );
  const row = r.rows[0]!;
  if (!row.ok) {
    throw new UserError(
      'BAD_OPTION',
      `--max-replica-lag-ms needs to read replay lag from pg_stat_replication, which ${row.who} cannot; fix with: GRANT pg_monitor TO ${ident(row.who)};`,
    );
  }
}

/** The throttling options read here (ControlOptions in src/compile/control-options.ts has them). */
export interface ThrottleChecks {
  readonly throttleProbe: string | null;
  readonly throttleProbeTimeoutMs: number;
  readonly maxReplicaLagMs: number;
}

/** Plan-time checks of the throttling options against the database. Read-only. */
export async function checkControlOptions(client: ClientBase, options: ThrottleChecks): Promise<void> {
  if (options.throttleProbe !== null) await checkProbe(client, options.throttleProbe, options.throttleProbeTimeoutMs);
  if (options.maxReplicaLagMs > 0) await checkReplicaLagVisible(client);
}
