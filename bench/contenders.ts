import { execFile, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { BenchServer } from './server.js';

const exec = promisify(execFile);
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

/** What one execution of a tool reports; wall time is measured by the caller. */
export interface ToolResult {
  readonly stages: Record<string, number>;
  readonly rowsCopied: number | null;
  readonly copyMs: number | null;
  readonly swapLockMs: number | null;
}

export type ContenderName = 'floor' | 'pg_repack' | 'shadowpack-runner' | 'shadowpack-psql';

export interface Contender {
  readonly name: ContenderName;
  readonly underLoad: boolean;
  /** Untimed preparation on the fresh pgbench tables (extension, plan). */
  prepare(server: BenchServer, work: string): Promise<void>;
  /** The timed part. */
  execute(server: BenchServer, work: string): Promise<ToolResult>;
}

export async function sql<R extends pg.QueryResultRow = Record<string, unknown>>(server: BenchServer, text: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  try {
    return (await c.query<R>(text)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

function cli(server: BenchServer, args: string[], onLine?: (line: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--url', server.url], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let partial = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      partial += d.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      if (onLine) for (const l of lines) onLine(l);
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      if (partial && onLine) onLine(partial);
      if (code === 0) resolve(out);
      else reject(new Error(`shadowpack ${args[0]} failed (exit ${code}): ${(err || out).trim().slice(-2000)}`));
    });
  });
}

async function planShadowpack(server: BenchServer, work: string): Promise<void> {
  await cli(server, ['plan', '--table', 'public.pgbench_accounts', '--out', path.join(work, 'plan')]);
}

const floor: Contender = {
  name: 'floor',
  underLoad: false,
  async prepare(server) {
    await sql(server, 'DROP TABLE IF EXISTS floor_copy');
    await sql(server, 'CREATE TABLE floor_copy (LIKE pgbench_accounts INCLUDING ALL EXCLUDING INDEXES)');
  },
  async execute(server) {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      let t = Date.now();
      const r = await c.query('INSERT INTO floor_copy SELECT * FROM pgbench_accounts');
      const copyMs = Date.now() - t;
      t = Date.now();
      await c.query('ALTER TABLE floor_copy ADD PRIMARY KEY (aid)');
      const buildMs = Date.now() - t;
      return { stages: { copy: copyMs, build: buildMs }, rowsCopied: r.rowCount ?? 0, copyMs, swapLockMs: null };
    } finally {
      await c.end().catch(() => undefined);
    }
  },
};

const repack: Contender = {
  name: 'pg_repack',
  underLoad: true,
  async prepare(server) {
    await sql(server, 'CREATE EXTENSION IF NOT EXISTS pg_repack');
  },
  async execute(server) {
    const bin = path.join(server.binDir ?? '', 'pg_repack');
    const t = Date.now();
    await exec(bin, ['-h', server.host, '-p', String(server.port), '-U', 'postgres', '-d', 'bench', '-t', 'pgbench_accounts', '--no-superuser-check'], { env: server.env, maxBuffer: 16 << 20 });
    return { stages: { repack: Date.now() - t }, rowsCopied: null, copyMs: null, swapLockMs: null };
  },
};

const runner: Contender = {
  name: 'shadowpack-runner',
  underLoad: true,
  prepare: planShadowpack,
  async execute(server, work) {
    const stages: Record<string, number> = {};
    const got: { summary: { lastSeen?: { swapLockMs: number | null; rowsCopied: number } | null } | null } = { summary: null };
    await cli(server, ['run', '--plan', path.join(work, 'plan'), '--events'], (line) => {
      if (!line.startsWith('{')) return;
      const e = JSON.parse(line) as { type: string; stage?: string; ms?: number };
      if (e.type === 'stage-end' && e.stage) stages[e.stage] = e.ms ?? 0;
      if (e.type === 'summary') got.summary = e as typeof got.summary;
    });
    const seen = got.summary?.lastSeen ?? null;
    return { stages, rowsCopied: seen?.rowsCopied ?? null, copyMs: stages['backfill'] ?? null, swapLockMs: seen?.swapLockMs ?? null };
  },
};

const psql: Contender = {
  name: 'shadowpack-psql',
  underLoad: true,
  prepare: planShadowpack,
  async execute(server, work) {
    const dir = path.join(work, 'plan');
    const files = readdirSync(dir).filter((f) => /^0\d-.*\.sql$/.test(f)).sort();
    const stages: Record<string, number> = {};
    let rowsCopied: number | null = null;
    let swapLockMs: number | null = null;
    for (const f of files) {
      const t = Date.now();
      try {
        await exec('/usr/bin/psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', server.url, '-f', path.join(dir, f)], { env: server.env, maxBuffer: 64 << 20 });
      } catch (e) {
        throw new Error(`psql -f ${f} failed: ${String((e as { stderr?: string }).stderr ?? e).trim().slice(-2000)}`);
      }
      stages[f.replace(/^\d\d-|\.sql$/g, '')] = Date.now() - t;
      if (f.startsWith('05-')) {
        const r = await sql<{ swap_lock_ms: string | null; rows_copied: string }>(server, 'SELECT swap_lock_ms, rows_copied FROM shadowpack.runs');
        swapLockMs = r[0]?.swap_lock_ms == null ? null : Number(r[0].swap_lock_ms);
        rowsCopied = r[0] ? Number(r[0].rows_copied) : null;
      }
    }
    return { stages, rowsCopied, copyMs: stages['backfill'] ?? null, swapLockMs };
  },
};

export const CONTENDERS: readonly Contender[] = [floor, repack, runner, psql];

/** Accounts whose balance differs from the sum of their history, and the row count. */
export async function checkBalances(server: BenchServer): Promise<{ mismatches: number; rows: number }> {
  const m = await sql<{ n: string }>(
    server,
    'SELECT count(*) AS n FROM pgbench_accounts a LEFT JOIN (SELECT aid, sum(delta) s FROM pgbench_history GROUP BY aid) h USING (aid) WHERE a.abalance <> coalesce(h.s, 0)',
  );
  const r = await sql<{ n: string }>(server, 'SELECT count(*) AS n FROM pgbench_accounts');
  return { mismatches: Number(m[0]!.n), rows: Number(r[0]!.n) };
}
