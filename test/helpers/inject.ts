/**
 * Failure injection at statement boundaries: run the first k statements of a
 * stage exactly as the runner splits them (and psql runs them), then end the
 * session the way a crash would, and let the caller recover.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { StageName } from '../../src/compile/stages.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { stageStatements } from '../../src/run/runner.js';
import { psql } from './rebuild.js';

/**
 * How the session ends at the boundary:
 * - terminate: pg_terminate_backend from another session (a DBA, an OOM kill of the backend);
 * - disconnect: the client's socket is dropped (kill -9 of the runner, a laptop going to sleep);
 * - psql: psql runs a file holding only the first k statements and exits (psql killed there).
 */
export type KillHow = 'terminate' | 'disconnect' | 'psql';

export const KILL_HOWS: readonly KillHow[] = ['terminate', 'disconnect', 'psql'];

/** Number of statements of a stage, as the runner sends them. */
export function statementCount(plan: LoadedPlan, stage: StageName): number {
  return stageStatements(plan, stage).length;
}

async function waitGone(admin: pg.ClientBase, pid: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const r = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
    if (r.rowCount === 0) return;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error(`backend ${pid} did not go away`);
}

/** Runs statements 1..k of `stage` in one session, then ends that session as `how` says; returns when the backend is gone. */
export async function runPrefix(
  url: string,
  plan: LoadedPlan,
  stage: StageName,
  k: number,
  how: KillHow,
): Promise<void> {
  const statements = stageStatements(plan, stage).slice(0, k);
  if (how === 'psql') {
    const file = join(mkdtempSync(join(tmpdir(), 'sp-inject-')), `prefix-${stage}-${k}.sql`);
    writeFileSync(file, statements.map((s) => s.st.text).join('\n\n') + '\n');
    const r = await psql(url, file);
    if (r.code !== 0) throw new Error(`psql failed on the first ${k} statements of ${stage}: ${r.stderr}`);
    return;
  }
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  const pid = (client as unknown as { processID: number }).processID;
  const admin = new pg.Client({ connectionString: url });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    for (const { st } of statements) await client.query(st.text);
    if (how === 'terminate') {
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    } else {
      // What the server sees when the runner's process dies: the connection just closes.
      (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    }
    await waitGone(admin, pid);
  } finally {
    await client.end().catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
}

/** A small deterministic generator (mulberry32), so a sampled run can be repeated from its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
