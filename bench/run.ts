/**
 * npm run bench -- [--scale N[,N…]] [--jobs N[,N…]] [--server embedded] [--move]
 *
 * Rebuilds pgbench_accounts with a floor (plain INSERT … SELECT + index build),
 * pg_repack and shadowpack (runner and psql, with each number of backfill
 * sessions of --jobs, default 1,2,4) — all but the floor under a pgbench
 * tpcb-like load — checks every account against pgbench_history, and writes
 * bench/results/<date>-<scale>.json plus a Markdown table per scale. shadowpack's
 * planning is timed apart from the run (a plan is made ahead of approval).
 * --server embedded skips the Debian cluster (and so pg_repack).
 * --move runs the cross-cluster line instead (bench/move.ts): pgbench_accounts moved from that server to an
 * embedded PostgreSQL 17, against a local floor and a COPY pipe between the same two servers.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  BUILD_MEMORY_MB,
  checkBalances,
  contenders,
  ensureBuilt,
  sql,
  type Contender,
  type ContenderName,
  type ToolResult,
} from './contenders.js';
import {
  BASELINE_SECONDS,
  initPgbench,
  loadStats,
  measureBaseline,
  startLoad,
  type Load,
  type LoadStats,
} from './pgbench.js';
import { benchMoveScale, machine, MOVE_SERVER_SETTINGS, moveTable } from './move.js';
import { BENCH_SETTINGS, startBenchServer, startMoveTarget, type BenchServer } from './server.js';

const LEAD_MS = 3000;
const TAIL_MS = 3000;
const HERE = path.dirname(new URL(import.meta.url).pathname);

interface ContenderResult {
  readonly contender: ContenderName;
  readonly jobs?: number | null;
  readonly status: 'ok' | 'failed' | 'n/a';
  /** shadowpack's planning, made before the clock starts (ms). */
  readonly planMs?: number | null;
  /** The runner's peak resident memory (MB). */
  readonly peakRssMb?: number | null;
  /** The runner's settle round, part of its backfill stage (ms). */
  readonly settleMs?: number | null;
  /**
   * Checkpoints the server began during the timed run (pg_stat_bgwriter; absent in results before
   * 2026-12-04 afternoon). Each contender starts right after a CHECKPOINT, so these are its own WAL's.
   */
  readonly checkpoints?: number | null;
  readonly error?: string;
  readonly wallMs?: number;
  readonly copyRowsPerSec?: number | null;
  readonly rowsCopied?: number | null;
  readonly stagesMs?: Record<string, number>;
  readonly swapLockMs?: number | null;
  readonly load?: (LoadStats & { tpsRatio: number }) | null;
  readonly mismatches?: number;
  readonly rows?: number;
}

function parseList(argv: readonly string[], flag: string, fallback: string): number[] {
  const i = argv.indexOf(flag);
  const raw = (i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1)) ?? fallback;
  const list = raw.split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`${flag} takes positive integers separated by commas, not ${raw}`);
  return list;
}

function parseServer(argv: readonly string[]): 'auto' | 'embedded' {
  const i = argv.indexOf('--server');
  const raw = i >= 0 ? argv[i + 1] : 'auto';
  if (raw !== 'auto' && raw !== 'embedded') throw new Error(`--server takes auto or embedded, not ${raw}`);
  return raw;
}

/** Checkpoints the server has begun since its statistics were reset (time- or WAL-triggered, or requested). */
async function checkpointCount(server: BenchServer): Promise<number> {
  // PostgreSQL 17 moved the counters to pg_stat_checkpointer (the embedded fallback is 17).
  const v = await sql<{ v: string }>(server, "SELECT current_setting('server_version_num') AS v");
  const r = await sql<{ n: string }>(
    server,
    Number(v[0]!.v) >= 170000
      ? 'SELECT num_timed + num_requested AS n FROM pg_stat_checkpointer'
      : 'SELECT checkpoints_timed + checkpoints_req AS n FROM pg_stat_bgwriter',
  );
  return Number(r[0]!.n);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (line: string): void => console.error(line);

async function runContender(
  server: BenchServer,
  scale: number,
  work: string,
  c: Contender,
  baselineTps: number,
): Promise<ContenderResult> {
  // One folder per scale too: a second scale would find the first one's plan in --out and stop.
  const dir = path.join(work, `scale-${scale}`, c.name);
  await fs.mkdir(dir, { recursive: true });
  log(`${c.name}: pgbench -i -s ${scale} …`);
  await initPgbench(server, scale);
  const planMs = await c.prepare(server, dir);
  // Every contender starts from a checkpoint: the WAL of its pgbench -i and of the contender before it
  // (1-2 GB at scale 50, past the point where max_wal_size starts one) no longer decides in whose run
  // the next checkpoint falls. Outside the clock.
  await sql(server, 'CHECKPOINT');
  let load: Load | null = null;
  let result: ToolResult;
  let t0 = 0;
  let t1 = 0;
  let checkpointsBefore = 0;
  let checkpointsDuring: number | null = null;
  try {
    if (c.underLoad) {
      load = await startLoad(server, path.join(dir, 'pgbench'), 3600);
      await sleep(LEAD_MS);
    }
    log(`${c.name}: running${c.underLoad ? ' under pgbench load' : ''} …`);
    checkpointsBefore = await checkpointCount(server);
    t0 = Date.now();
    result = await c.execute(server, dir);
    t1 = Date.now();
    checkpointsDuring = (await checkpointCount(server)) - checkpointsBefore;
    if (load) await sleep(TAIL_MS);
  } catch (e) {
    if (load) await load.stop().catch(() => undefined);
    throw e;
  }
  const txs = load ? await load.stop() : null;
  const stats = txs ? loadStats(txs, t0, t1) : null;
  const check = await checkBalances(server);
  const wallMs = t1 - t0;
  const copyRowsPerSec =
    result.rowsCopied != null && result.copyMs ? Math.round((result.rowsCopied * 1000) / result.copyMs) : null;
  log(
    `${c.name}: ${wallMs} ms; stages ${JSON.stringify(result.stages)}; mismatches ${check.mismatches}; rows ${check.rows}`,
  );
  const ok = check.mismatches === 0 && check.rows === scale * 100000;
  return {
    contender: c.name,
    jobs: c.jobs,
    status: ok ? 'ok' : 'failed',
    planMs,
    peakRssMb: result.peakRssMb ?? null,
    settleMs: result.settleMs ?? null,
    checkpoints: checkpointsDuring,
    ...(ok ? {} : { error: `mismatches ${check.mismatches}, rows ${check.rows} (expected ${scale * 100000})` }),
    wallMs,
    copyRowsPerSec,
    rowsCopied: result.rowsCopied,
    stagesMs: result.stages,
    swapLockMs: result.swapLockMs,
    load: stats ? { ...stats, tpsRatio: Math.round((stats.tps / Math.max(1, baselineTps)) * 1000) / 1000 } : null,
    mismatches: check.mismatches,
    rows: check.rows,
  };
}

const fmtMs = (ms: number | null | undefined): string =>
  ms == null ? 'n/a' : ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
const fmtNum = (n: number | null | undefined): string => (n == null ? 'n/a' : Math.round(n).toLocaleString('en-US'));
const ratio = (a: number | null | undefined, b: number | null | undefined): string =>
  a == null || b == null || b === 0 ? 'n/a' : (a / b).toFixed(2);

/**
 * bench/results/<name>.json, or <name>-2.json, -3 … when a run of the same day and
 * scale is already there: older results stay (the issue asks for it), and two runs
 * of one day are both kept to show how much this machine varies.
 */
async function unusedResultsFile(name: string): Promise<string> {
  for (let n = 1; ; n++) {
    const file = path.join(HERE, 'results', `${name}${n === 1 ? '' : `-${n}`}.json`);
    try {
      await fs.access(file);
    } catch {
      return file;
    }
  }
}

function table(results: readonly ContenderResult[]): string {
  const by = (n: ContenderName): ContenderResult | undefined =>
    results.find((r) => r.contender === n && r.status === 'ok');
  const floor = by('floor');
  const repack = by('pg_repack');
  const rows = [
    '| contender | run (wall) | × pg_repack | plan (apart) | copy rows/s | copy / floor copy | TPS ratio | lock hold | p99 | max latency | runner peak RSS |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    if (r.status !== 'ok') {
      rows.push(
        `| ${r.contender} | ${r.status}${r.error ? `: ${r.error.split('\n')[0]!.slice(0, 80)}` : ''} | | | | | | | | | |`,
      );
      continue;
    }
    const sp = r.contender.startsWith('shadowpack');
    rows.push(
      `| ${r.contender} | ${fmtMs(r.wallMs)} | ${r.contender === 'floor' ? '' : ratio(r.wallMs, repack?.wallMs)} | ${sp ? fmtMs(r.planMs) : ''} | ${fmtNum(r.copyRowsPerSec)} | ${sp ? ratio(r.copyRowsPerSec, floor?.copyRowsPerSec) : ''} | ${r.load ? r.load.tpsRatio.toFixed(2) : 'no load'} | ${r.contender === 'floor' ? '' : fmtMs(r.swapLockMs)} | ${r.load ? fmtMs(r.load.p99Ms) : ''} | ${r.load ? fmtMs(r.load.maxMs) : ''} | ${r.peakRssMb == null ? '' : `${r.peakRssMb} MB`} |`,
    );
  }
  return rows.join('\n');
}

async function benchScale(
  server: BenchServer,
  scale: number,
  jobs: readonly number[],
  work: string,
  settings: { name: string; setting: string; unit: string | null }[],
): Promise<ContenderResult[]> {
  const loadBefore = os.loadavg();
  log(`scale ${scale}: baseline: pgbench -n -c 4 -j 2 -T ${BASELINE_SECONDS} …`);
  const baseline = await measureBaseline(server, scale, work);
  log(`baseline: ${baseline.tps} tps, p99 ${baseline.p99Ms} ms, max ${baseline.maxMs} ms`);
  const results: ContenderResult[] = [];
  const date = new Date().toISOString().slice(0, 10);
  const file = await unusedResultsFile(
    `${date}-${scale}${server.kind === 'embedded' ? '-embedded' : ''}${jobs.join('') === '124' ? '' : `-j${jobs.join('-')}`}`,
  );
  // Written after every contender, so a long run interrupted still leaves what it measured.
  const write = async (): Promise<void> => {
    const out = {
      date: new Date().toISOString(),
      scale,
      rows: scale * 100000,
      jobs,
      // Cores, and the load average (1, 5, 15 min) before and after: a shared machine shows in it.
      machine: {
        nproc: os.availableParallelism(),
        cpu: os.cpus()[0]?.model ?? 'unknown',
        memoryMB: Math.round(os.totalmem() / 2 ** 20),
        platform: `${os.type()} ${os.release()}`,
        loadavgBefore: loadBefore,
        loadavgAfter: os.loadavg(),
      },
      server: {
        version: server.version,
        kind: server.kind,
        settings: Object.fromEntries(settings.map((s) => [s.name, s.unit ? `${s.setting} ${s.unit}` : s.setting])),
      },
      maintenanceWorkMemMb: BUILD_MEMORY_MB,
      load: { command: 'pgbench -n -c 4 -j 2 -P 1 -r --log (tpcb-like)', leadMs: LEAD_MS, tailMs: TAIL_MS },
      baseline,
      contenders: results,
    };
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, `${JSON.stringify(out, null, 2)}\n`);
  };
  for (const c of contenders(jobs)) {
    if (c.name === 'pg_repack' && !server.repack) {
      results.push({
        contender: c.name,
        status: 'n/a',
        error: server.kind === 'embedded' ? 'embedded server: no pg_repack' : 'pg_repack not installable',
      });
      continue;
    }
    try {
      results.push(await runContender(server, scale, work, c, baseline.tps));
    } catch (e) {
      log(`${c.name}: FAILED: ${(e as Error).message}`);
      results.push({ contender: c.name, status: 'failed', error: (e as Error).message });
    }
    await write();
  }
  console.log(
    `\nscale ${scale} (${(scale * 100000).toLocaleString('en-US')} rows), PostgreSQL ${server.version} (${server.kind}), ${os.availableParallelism()} cores, load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(
        ' ',
      )} after; baseline ${baseline.tps} tps; maintenance_work_mem ${BUILD_MEMORY_MB} MB for every contender's index build\n`,
  );
  console.log(table(results));
  console.log('\nstages (ms):');
  for (const r of results)
    if (r.stagesMs)
      console.log(
        `  ${r.contender}: ${Object.entries(r.stagesMs)
          .map(([k, v]) => `${k} ${v}${k === 'backfill' && r.settleMs != null ? ` (settle ${r.settleMs})` : ''}`)
          .join(', ')}${r.checkpoints != null ? `; checkpoints begun during the run: ${r.checkpoints}` : ''}`,
      );
  console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
  return results;
}

const HELP = `npm run bench -- [--scale N[,N…]] [--jobs N[,N…]] [--server auto|embedded] [--move]

  --scale   pgbench scales, one after the other (default 50)
  --jobs    backfill sessions of shadowpack's runner and psql contenders (default 1,2,4)
  --server  auto: Debian's postgresql-15 with pg_repack (installed through apt when missing), else the
            embedded PostgreSQL 17; embedded: the embedded one without pg_repack
  --move    the cross-cluster line (issue 15) instead of the rebuild contenders: pgbench_accounts moved
            from that server to an embedded PostgreSQL 17 under pgbench load; results in
            bench/results/<date>-<scale>-move.json (docs/benchmark.md)`;

/** The cross-cluster line at each scale: a source (--server) and an embedded PostgreSQL 17 target. */
async function benchMove(
  argv: readonly string[],
  scales: readonly number[],
  work: string,
  keep: (s: BenchServer) => void,
): Promise<number> {
  const source = await startBenchServer(log, parseServer(argv), MOVE_SERVER_SETTINGS);
  keep(source);
  const target = await startMoveTarget(log, MOVE_SERVER_SETTINGS);
  keep(target);
  let failed = 0;
  for (const scale of scales) {
    const loadBefore = os.loadavg();
    const { baseline, result } = await benchMoveScale(source, target, scale, work, log);
    const date = new Date().toISOString().slice(0, 10);
    const file = await unusedResultsFile(`${date}-${scale}-move`);
    await fs.writeFile(
      file,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          scale,
          rows: scale * 100000,
          machine: machine(loadBefore),
          source: { version: source.version, kind: source.kind },
          target: { version: target.version, kind: target.kind },
          settings: { ...BENCH_SETTINGS, ...MOVE_SERVER_SETTINGS },
          load: { command: 'pgbench -n -c 4 -j 2 -P 1 -r --log (tpcb-like), on the source', leadMs: 3000 },
          baseline,
          move: result,
        },
        null,
        2,
      )}\n`,
    );
    console.log(
      `\nmove, scale ${scale} (${(scale * 100000).toLocaleString('en-US')} rows), PostgreSQL ${source.version} (${source.kind}) → ${target.version} (${target.kind}), ${os.availableParallelism()} cores, load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')} after; baseline ${baseline.tps} tps\n`,
    );
    console.log(moveTable(result));
    console.log(`\nresults: ${path.relative(process.cwd(), file)}`);
    if (result.status !== 'ok') failed++;
  }
  return failed > 0 ? 1 : 0;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  const scales = parseList(argv, '--scale', '50');
  const jobs = parseList(argv, '--jobs', '1,2,4');
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'shadowpack-bench-'));
  let server: BenchServer | null = null;
  const others: BenchServer[] = [];
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    if (server) await server.stop().catch((e: unknown) => log(`stopping the server: ${(e as Error).message}`));
    for (const s of others.reverse())
      await s.stop().catch((e: unknown) => log(`stopping a server: ${(e as Error).message}`));
    await fs.rm(work, { recursive: true, force: true }).catch(() => undefined);
  };
  const onSignal = (): void => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await ensureBuilt(log);
    if (argv.includes('--move')) return await benchMove(argv, scales, work, (s) => others.push(s));
    server = await startBenchServer(log, parseServer(argv));
    const settings = await sql<{ name: string; setting: string; unit: string | null }>(
      server,
      `SELECT name, setting, unit FROM pg_settings WHERE name IN (${Object.keys(BENCH_SETTINGS)
        .map((k) => `'${k}'`)
        .join(', ')}) ORDER BY name`,
    );
    const failed: ContenderResult[] = [];
    for (const scale of scales)
      failed.push(...(await benchScale(server, scale, jobs, work, settings)).filter((r) => r.status === 'failed'));
    if (failed.length > 0) {
      console.log(`FAIL: ${failed.map((r) => `${r.contender} (${r.error?.split('\n')[0]})`).join('; ')}`);
      return 1;
    }
    return 0;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
