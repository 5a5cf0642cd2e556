import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { BenchServer } from './server.js';

const exec = promisify(execFile);

function pgbenchBin(server: BenchServer): string {
  return server.binDir ? path.join(server.binDir, 'pgbench') : 'pgbench';
}

/** Drops and recreates the pgbench tables at this scale (pgbench_accounts gets its primary key). */
export async function initPgbench(server: BenchServer, scale: number): Promise<void> {
  await exec(pgbenchBin(server), ['-i', '-q', '-s', String(scale), 'bench'], { env: server.env, maxBuffer: 16 << 20 });
}

export interface Tx {
  /** completion time, epoch ms */
  readonly at: number;
  /** latency, ms */
  readonly ms: number;
}

export interface LoadStats {
  readonly transactions: number;
  readonly seconds: number;
  readonly tps: number;
  /** lowest throughput of any whole second in the window */
  readonly minSecondTps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface Load {
  readonly startedAt: number;
  /** stderr lines `progress: …` with the epoch ms they arrived */
  readonly progress: { at: number; line: string }[];
  /** SIGINT (if still running and `interrupt`), wait for exit, read the per-transaction logs. */
  stop(interrupt?: boolean): Promise<Tx[]>;
}

/** `pgbench -n -c 4 -j 2 -T seconds -P 1 -r --log` (tpcb-like) in the background. */
export async function startLoad(server: BenchServer, logDir: string, seconds: number): Promise<Load> {
  await fs.mkdir(logDir, { recursive: true });
  const prefix = path.join(logDir, 'tx');
  const args = [
    '-n',
    '-c',
    '4',
    '-j',
    '2',
    '-T',
    String(seconds),
    '-P',
    '1',
    '-r',
    '--log',
    `--log-prefix=${prefix}`,
    'bench',
  ];
  const p = spawn(pgbenchBin(server), args, { env: server.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const startedAt = Date.now();
  const progress: { at: number; line: string }[] = [];
  let stderr = '';
  let exited = false;
  const done = new Promise<number | null>((resolve) => {
    p.on('close', (code) => {
      exited = true;
      resolve(code);
    });
    p.on('error', () => resolve(-1));
  });
  p.stdout.resume();
  p.stderr.on('data', (d: Buffer) => {
    const now = Date.now();
    for (const line of d.toString().split('\n')) {
      if (line.startsWith('progress:')) progress.push({ at: now, line });
      else if (line.trim()) stderr += `${line}\n`;
    }
  });
  return {
    startedAt,
    progress,
    async stop(interrupt = true) {
      if (!exited && interrupt) p.kill('SIGINT');
      const code = await done;
      const files = (await fs.readdir(logDir)).filter((f) => f.startsWith('tx.'));
      const txs: Tx[] = [];
      for (const f of files) {
        for (const line of (await fs.readFile(path.join(logDir, f), 'utf8')).split('\n')) {
          // client_id transaction_no time script_no time_epoch time_us …
          const parts = line.split(' ');
          if (parts.length < 6) continue;
          txs.push({ at: Number(parts[4]) * 1000 + Number(parts[5]) / 1000, ms: Number(parts[2]) / 1000 });
        }
      }
      if (txs.length === 0) throw new Error(`pgbench wrote no transactions (exit ${code}): ${stderr.trim()}`);
      // Should the log clock not be the epoch, line it up with ours.
      const first = Math.min(...txs.slice(0, 1000).map((t) => t.at));
      if (Math.abs(first - startedAt) > 60_000) {
        const shift = startedAt - first;
        return txs.map((t) => ({ at: t.at + shift, ms: t.ms }));
      }
      return txs;
    },
  };
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Throughput and latency of the transactions that completed in [from, to] (epoch ms). */
export function loadStats(txs: readonly Tx[], from: number, to: number): LoadStats {
  const inWindow = txs.filter((t) => t.at >= from && t.at <= to);
  const seconds = Math.max(0.001, (to - from) / 1000);
  const lat = inWindow.map((t) => t.ms).sort((a, b) => a - b);
  const buckets = new Map<number, number>();
  for (const t of inWindow) {
    const b = Math.floor((t.at - from) / 1000);
    buckets.set(b, (buckets.get(b) ?? 0) + 1);
  }
  let minSecondTps = Infinity;
  for (let b = 0; b < Math.floor(seconds); b++) minSecondTps = Math.min(minSecondTps, buckets.get(b) ?? 0);
  return {
    transactions: inWindow.length,
    seconds: Math.round(seconds * 1000) / 1000,
    tps: Math.round((inWindow.length / seconds) * 10) / 10,
    minSecondTps: Number.isFinite(minSecondTps) ? minSecondTps : inWindow.length,
    p50Ms: Math.round(percentile(lat, 0.5) * 100) / 100,
    p99Ms: Math.round(percentile(lat, 0.99) * 100) / 100,
    maxMs: Math.round((lat[lat.length - 1] ?? 0) * 100) / 100,
  };
}

export const BASELINE_SECONDS = 20;

/** Fresh pgbench tables at this scale, then BASELINE_SECONDS of load with no tool running. */
export async function measureBaseline(server: BenchServer, scale: number, work: string): Promise<LoadStats> {
  await initPgbench(server, scale);
  const load = await startLoad(server, path.join(work, 'baseline'), BASELINE_SECONDS);
  const txs = await load.stop(false);
  return loadStats(txs, load.startedAt + 1000, load.startedAt + BASELINE_SECONDS * 1000);
}
