/**
 * The cross-cluster line (issue 15): pgbench_accounts moved from the bench's source server to a second server
 * (`npm run bench -- --move`). Measured at each scale, all between the same two servers:
 *
 * - with no load: the local floor (`INSERT … SELECT` on the source), the COPY pipe
 *   (`psql -c 'COPY (SELECT …) TO STDOUT' | psql -c 'COPY … FROM STDIN'`), and a bare postgres_fdw pull
 *   (`INSERT … SELECT` from a foreign table) at fetch_size 100, 1,000, 10,000 and 50,000;
 * - under the pgbench load on the source: the COPY pipe again, then the move through the runner (plan made
 *   before), in four invocations: up to the backfill, the catch-up, the cut-over, then the cleanup.
 *
 * Times inside the servers come from commit timestamps (track_commit_timestamp on both; one machine, one
 * clock): the backfill's copy ends at the commit of its last batch (the settle round follows), the write
 * freeze runs from the fence's commit on the source to the cut-over's commit on the target.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { checkBalances, cli, sql } from './contenders.js';
import { initPgbench, loadStats, measureBaseline, startLoad, type Load, type LoadStats } from './pgbench.js';
import type { BenchServer } from './server.js';

const exec = promisify(execFile);

/** Settings both servers of the move line get on top of BENCH_SETTINGS. */
export const MOVE_SERVER_SETTINGS: Readonly<Record<string, string>> = { track_commit_timestamp: 'on' };

const FETCH_SIZES = [100, 1000, 10000, 50000] as const;
const LEAD_MS = 3000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Rate {
  readonly ms: number;
  readonly rows: number;
  readonly rowsPerSec: number;
}

export interface MoveLineResult {
  readonly status: 'ok' | 'failed';
  readonly error?: string;
  readonly floor?: Rate;
  readonly pipe?: Rate;
  readonly pipeUnderLoad?: Rate;
  readonly fdwPull?: Record<string, Rate>;
  readonly planMs?: number;
  readonly runnerStagesMs?: Record<string, number>;
  /** The plan's backfill: its copy (stage start → last batch commit), then the settle round. */
  readonly backfill?: Rate & { readonly settleMs: number; readonly settleKeys: number; readonly stageMs: number };
  readonly catchup?: {
    readonly ms: number;
    readonly keys: number;
    readonly rounds: number;
    readonly keysPerSec: number;
  };
  readonly freeze?: {
    /** Fence commit (source) → cut-over commit (target), from commit timestamps. */
    readonly ms: number;
    /** Keys the cut-over's round applied: the backlog at the fence. */
    readonly backlogKeys: number;
    /** fence.source stage end → cutover.target stage start (the runner between the two files). */
    readonly runnerGapMs: number;
    readonly cutoverStageMs: number;
    readonly fenceStageMs: number;
  };
  readonly fenceLock?: unknown;
  /** pgbench on the source from the first stage of the move to the fence's commit. */
  readonly load?: (LoadStats & { tpsRatio: number }) | null;
  readonly chunksDiffering?: number;
  readonly sourceMismatches?: number;
  readonly rows?: number;
}

const rate = (ms: number, rows: number): Rate => ({
  ms,
  rows,
  rowsPerSec: Math.round((rows * 1000) / Math.max(1, ms)),
});

async function timed(server: BenchServer, text: string): Promise<{ ms: number; rows: number }> {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  try {
    const t = Date.now();
    const r = await c.query(text);
    return { ms: Date.now() - t, rows: r.rowCount ?? 0 };
  } finally {
    await c.end().catch(() => undefined);
  }
}

const ACCOUNTS_COLUMNS = 'aid integer NOT NULL, bid integer, abalance integer, filler character(84)';

/** `COPY (SELECT …) TO STDOUT` on the source piped into `COPY … FROM STDIN` on the target (pgcopydb's method). */
async function copyPipe(source: BenchServer, target: BenchServer): Promise<Rate> {
  await sql(target, 'TRUNCATE bench_copy');
  const t = Date.now();
  await exec(
    'bash',
    [
      '-c',
      'set -o pipefail; /usr/bin/psql -X -q -d "$SRC" -c "COPY (SELECT * FROM public.pgbench_accounts) TO STDOUT" | /usr/bin/psql -X -q -d "$DST" -c "COPY public.bench_copy FROM STDIN"',
    ],
    { env: { ...process.env, SRC: source.url, DST: target.url }, maxBuffer: 16 << 20 },
  );
  const ms = Date.now() - t;
  const n = await sql<{ n: string }>(target, 'SELECT count(*) AS n FROM bench_copy');
  return rate(ms, Number(n[0]!.n));
}

/** A bare postgres_fdw pull of the whole table at each fetch_size (no page ranges, no plan). */
async function fdwPulls(
  source: BenchServer,
  target: BenchServer,
  log: (l: string) => void,
): Promise<Record<string, Rate>> {
  await sql(
    target,
    `CREATE EXTENSION IF NOT EXISTS postgres_fdw;
     CREATE SERVER bench_src FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '${source.host}', port '${source.port}', dbname 'bench', fetch_size '100');
     CREATE USER MAPPING FOR CURRENT_USER SERVER bench_src OPTIONS (user 'postgres', password 'postgres');
     CREATE FOREIGN TABLE bench_ft (${ACCOUNTS_COLUMNS}) SERVER bench_src OPTIONS (schema_name 'public', table_name 'pgbench_accounts')`,
  );
  const out: Record<string, Rate> = {};
  try {
    for (const f of FETCH_SIZES) {
      await sql(target, `ALTER SERVER bench_src OPTIONS (SET fetch_size '${f}'); TRUNCATE bench_copy`);
      const r = await timed(target, 'INSERT INTO bench_copy SELECT * FROM bench_ft');
      out[String(f)] = rate(r.ms, r.rows);
      log(`  fdw pull, fetch_size ${f}: ${r.ms} ms`);
    }
  } finally {
    // The move creates (and later drops) the extension itself: leave the target as it was.
    await sql(target, 'DROP EXTENSION postgres_fdw CASCADE');
  }
  return out;
}

interface RunnerEvent {
  readonly type: string;
  readonly stage?: string;
  readonly ms?: number;
  readonly ts?: string;
  readonly report?: unknown;
  readonly locks?: unknown[];
}

/** One runner invocation `--until until`, collecting its events. */
async function runMove(
  source: BenchServer,
  target: BenchServer,
  planDir: string,
  until: string,
  events: RunnerEvent[],
): Promise<void> {
  await cli(source, ['run', '--plan', planDir, '--target-url', target.url, '--until', until, '--events'], (line) => {
    if (line.startsWith('{')) events.push(JSON.parse(line) as RunnerEvent);
  });
}

const tsOf = (events: readonly RunnerEvent[], type: string, stage: string): number => {
  const e = events.find((x) => x.type === type && x.stage === stage);
  if (!e?.ts) throw new Error(`the runner sent no ${type} event for ${stage}`);
  return Date.parse(e.ts);
};

interface TargetState {
  rows_applied: string;
  rounds: string;
  committed: Date | null;
}

async function targetState(target: BenchServer, runId: string): Promise<TargetState> {
  const r = await sql<TargetState>(
    target,
    `SELECT rows_applied, rounds, pg_xact_commit_timestamp(xmin) AS committed FROM shadowpack.move_${runId}`,
  );
  if (!r[0]) throw new Error('no move state on the target');
  return r[0];
}

/** Chunks of 100,000 accounts whose rows differ between the two servers (md5 of the rows' text). */
async function differingChunks(source: BenchServer, target: BenchServer): Promise<number> {
  const q =
    "SELECT aid / 100000 AS g, md5(string_agg(a::text, '|' ORDER BY aid)) AS h FROM public.pgbench_accounts a GROUP BY 1 ORDER BY 1";
  const [s, t] = await Promise.all([
    sql<{ g: number; h: string }>(source, q),
    sql<{ g: number; h: string }>(target, q),
  ]);
  const tm = new Map(t.map((r) => [r.g, r.h]));
  let n = Math.abs(s.length - t.length);
  for (const r of s) if (tm.get(r.g) !== r.h) n++;
  return n;
}

export async function benchMoveScale(
  source: BenchServer,
  target: BenchServer,
  scale: number,
  work: string,
  log: (line: string) => void,
): Promise<{ baseline: LoadStats; result: MoveLineResult }> {
  const dir = path.join(work, `move-${scale}`);
  await fs.mkdir(dir, { recursive: true });
  log(`move, scale ${scale}: baseline (pgbench on the source) …`);
  const baseline = await measureBaseline(source, scale, dir);
  log(`baseline: ${baseline.tps} tps`);
  const rows = scale * 100000;
  let load: Load | null = null;
  try {
    await initPgbench(source, scale);
    await sql(target, 'DROP TABLE IF EXISTS public.pgbench_accounts, bench_copy');
    await sql(target, `CREATE TABLE bench_copy (${ACCOUNTS_COLUMNS})`);

    log('no load: local floor, COPY pipe, bare FDW pulls …');
    await sql(source, 'DROP TABLE IF EXISTS floor_copy');
    await sql(source, 'CREATE TABLE floor_copy (LIKE pgbench_accounts INCLUDING ALL EXCLUDING INDEXES)');
    const f = await timed(source, 'INSERT INTO floor_copy SELECT * FROM pgbench_accounts');
    await sql(source, 'DROP TABLE floor_copy');
    const floor = rate(f.ms, f.rows);
    const pipe = await copyPipe(source, target);
    log(`  floor ${floor.ms} ms, pipe ${pipe.ms} ms`);
    const fdwPull = await fdwPulls(source, target, log);

    log('planning the move …');
    const planDir = path.join(dir, 'plan');
    await sql(source, 'DROP SCHEMA IF EXISTS shadowpack CASCADE');
    let t = Date.now();
    await cli(source, ['plan', '--table', 'public.pgbench_accounts', '--target-url', target.url, '--out', planDir]);
    const planMs = Date.now() - t;
    const runId = (JSON.parse(await fs.readFile(path.join(planDir, 'plan.json'), 'utf8')) as { runId: string }).runId;

    load = await startLoad(source, path.join(dir, 'pgbench'), 3600);
    await sleep(LEAD_MS);
    log('under load: COPY pipe …');
    const pipeUnderLoad = await copyPipe(source, target);
    await sql(target, 'DROP TABLE bench_copy');
    log(`  pipe under load ${pipeUnderLoad.ms} ms; the move: up to the backfill …`);

    const events: RunnerEvent[] = [];
    const moveStart = Date.now();
    await runMove(source, target, planDir, 'backfill', events);
    const afterBackfill = await targetState(target, runId);
    const lastBatch = await sql<{ at: Date | null }>(
      target,
      `SELECT max(pg_xact_commit_timestamp(xmin)) AS at FROM shadowpack.move_${runId}_backfill`,
    );
    log('build and catch-up …');
    await runMove(source, target, planDir, 'catchup', events);
    const afterCatchup = await targetState(target, runId);
    log('fence and cut-over …');
    await runMove(source, target, planDir, 'cutover', events);
    const afterCutover = await targetState(target, runId);
    const fence = await sql<{ at: Date | null }>(
      source,
      `SELECT pg_xact_commit_timestamp(fence_xid::text::xid) AS at FROM shadowpack.move_${runId}`,
    );
    const txs = await load.stop();
    load = null;
    const fenceAt = fence[0]?.at?.getTime() ?? null;
    const liveAt = afterCutover.committed?.getTime() ?? null;
    if (fenceAt === null || liveAt === null) throw new Error('no commit timestamp of the fence or the cut-over');
    const stats = loadStats(txs, moveStart, fenceAt);

    log('checking the moved rows …');
    const chunksDiffering = await differingChunks(source, target);
    const check = await checkBalances(source);
    const targetRows = Number((await sql<{ n: string }>(target, 'SELECT count(*) AS n FROM pgbench_accounts'))[0]!.n);
    log('cleanup …');
    await runMove(source, target, planDir, 'cleanup', events);

    const stagesMs: Record<string, number> = {};
    for (const e of events) if (e.type === 'stage-end' && e.stage) stagesMs[e.stage] = e.ms ?? 0;
    const backfillStart = tsOf(events, 'stage-start', 'backfill.target');
    const backfillEnd = tsOf(events, 'stage-end', 'backfill.target');
    const lastBatchAt = lastBatch[0]?.at?.getTime() ?? backfillEnd;
    const catchupKeys = Number(afterCatchup.rows_applied) - Number(afterBackfill.rows_applied);
    const catchupMs = stagesMs['catchup.target'] ?? 0;
    const locks = events.filter((e) => e.type === 'lock-report' && e.stage === 'fence.source').map((e) => e.report);
    const ok = chunksDiffering === 0 && check.mismatches === 0 && targetRows === rows;
    const result: MoveLineResult = {
      status: ok ? 'ok' : 'failed',
      ...(ok
        ? {}
        : {
            error: `target differs: ${chunksDiffering} chunks, ${targetRows} rows (expected ${rows}); source balance mismatches ${check.mismatches}`,
          }),
      floor,
      pipe,
      pipeUnderLoad,
      fdwPull,
      planMs,
      runnerStagesMs: stagesMs,
      backfill: {
        ...rate(lastBatchAt - backfillStart, rows),
        settleMs: backfillEnd - lastBatchAt,
        settleKeys: Number(afterBackfill.rows_applied),
        stageMs: stagesMs['backfill.target'] ?? 0,
      },
      catchup: {
        ms: catchupMs,
        keys: catchupKeys,
        rounds: Number(afterCatchup.rounds) - Number(afterBackfill.rounds),
        keysPerSec: Math.round((catchupKeys * 1000) / Math.max(1, catchupMs)),
      },
      freeze: {
        ms: liveAt - fenceAt,
        backlogKeys: Number(afterCutover.rows_applied) - Number(afterCatchup.rows_applied),
        runnerGapMs: tsOf(events, 'stage-start', 'cutover.target') - tsOf(events, 'stage-end', 'fence.source'),
        cutoverStageMs: stagesMs['cutover.target'] ?? 0,
        fenceStageMs: stagesMs['fence.source'] ?? 0,
      },
      fenceLock: locks[0] ?? null,
      load: { ...stats, tpsRatio: Math.round((stats.tps / Math.max(1, baseline.tps)) * 1000) / 1000 },
      chunksDiffering,
      sourceMismatches: check.mismatches,
      rows: targetRows,
    };
    return { baseline, result };
  } catch (e) {
    if (load) await load.stop().catch(() => undefined);
    log(`move: FAILED: ${(e as Error).message}`);
    return { baseline, result: { status: 'failed', error: (e as Error).message } };
  }
}

const r2 = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || b === 0 ? 'n/a' : (a / b).toFixed(2);
const n0 = (n: number | undefined): string => (n === undefined ? 'n/a' : Math.round(n).toLocaleString('en-US'));

/** The Markdown lines of one scale's move line. */
export function moveTable(r: MoveLineResult): string {
  if (r.status !== 'ok' || !r.backfill || !r.pipe || !r.floor || !r.pipeUnderLoad || !r.freeze || !r.catchup)
    return `move: ${r.status}: ${r.error ?? ''}`;
  const lines = [
    '| rows/s (ms) | local floor | COPY pipe | COPY pipe, load | FDW backfill (plan), load | × pipe | × pipe, load | × floor |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    `| | ${n0(r.floor.rowsPerSec)} (${r.floor.ms}) | ${n0(r.pipe.rowsPerSec)} (${r.pipe.ms}) | ${n0(r.pipeUnderLoad.rowsPerSec)} (${r.pipeUnderLoad.ms}) | ${n0(r.backfill.rowsPerSec)} (${r.backfill.ms}) | ${r2(r.backfill.rowsPerSec, r.pipe.rowsPerSec)} | ${r2(r.backfill.rowsPerSec, r.pipeUnderLoad.rowsPerSec)} | ${r2(r.backfill.rowsPerSec, r.floor.rowsPerSec)} |`,
    '',
    `bare FDW pull, no load (rows/s, × pipe): ${Object.entries(r.fdwPull ?? {})
      .map(([f, x]) => `fetch_size ${f}: ${n0(x.rowsPerSec)} (${r2(x.rowsPerSec, r.pipe!.rowsPerSec)})`)
      .join('; ')}`,
    `settle round after the copy: ${r.backfill.settleMs} ms, ${n0(r.backfill.settleKeys)} keys; catch-up: ${n0(r.catchup.keys)} keys in ${r.catchup.rounds} rounds, ${r.catchup.ms} ms (${n0(r.catchup.keysPerSec)} keys/s, build included in neither)`,
    `write freeze (fence commit → cut-over commit): ${r.freeze.ms} ms at a backlog of ${n0(r.freeze.backlogKeys)} keys (runner between the files ${r.freeze.runnerGapMs} ms; cut-over file ${r.freeze.cutoverStageMs} ms; fence file ${r.freeze.fenceStageMs} ms)`,
    `source TPS during the move (to the fence): ${r.load ? `${r.load.tps} (${r.load.tpsRatio.toFixed(2)} × baseline), p99 ${r.load.p99Ms} ms, max ${r.load.maxMs} ms` : 'n/a'}`,
    `runner stages (ms): ${Object.entries(r.runnerStagesMs ?? {})
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  ];
  return lines.join('\n');
}

/** Cores and load average, for the results file. */
export function machine(loadBefore: number[]): Record<string, unknown> {
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryMB: Math.round(os.totalmem() / 2 ** 20),
    platform: `${os.type()} ${os.release()}`,
    loadavgBefore: loadBefore,
    loadavgAfter: os.loadavg(),
  };
}
