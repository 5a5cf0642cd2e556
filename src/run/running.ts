import type { ClientBase } from 'pg';
import type { PlanManifest } from '../compile/compile.js';

/** 'SPK' in ASCII, and the run id's first 28 bits: the two keys of the run's advisory lock (src/compile/context.ts). */
const ADVISORY_CLASS = 0x53504b;

export interface RunningSession {
  readonly pid: number;
  /** When the session started (psql: a session per stage file; the runner keeps its sessions across the stages of one invocation). */
  readonly since: string | null;
}

/**
 * The sessions running a stage of this run right now: every stage script holds the run's advisory
 * lock for as long as its session lives. The runs table only says the last stage that committed.
 * Advisory locks are per database and the run id comes from schema and table alone: a run of the
 * same table in another database of the cluster (staging beside production) is not this one.
 */
export async function runningSessions(client: ClientBase, manifest: PlanManifest): Promise<RunningSession[]> {
  const objId = parseInt(manifest.runId.slice(0, 7), 16);
  const r = await client.query<{ pid: number; since: string | null }>(
    `SELECT l.pid, to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"') AS since
       FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = 2 AND l.granted
        AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
      ORDER BY l.pid`,
    [ADVISORY_CLASS, objId],
  );
  return r.rows;
}
