import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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
  /** The runner's peak resident memory (GNU time's %M), MB; null for other tools. */
  readonly peakRssMb?: number | null;
  /**
   * The runner's settle round inside the backfill stage (ms): from the last batch's progress event to
   * the apply event of the settle (issue 14); null for other tools, and when the backfill skipped logged keys (no settle round since 5f06f0c).
   */
  readonly settleMs?: number | null;
}

export type ContenderName = string;

export interface Contender {
  readonly name: ContenderName;
  readonly underLoad: boolean;
  /** Sessions of the backfill (shadowpack), null for other tools. */
  readonly jobs: number | null;
  /** Untimed preparation on the fresh pgbench tables (extension, plan); returns the planning time (ms) when it plans. */
  prepare(server: BenchServer, work: string): Promise<number | null>;
  /** The timed part. */
  execute(server: BenchServer, work: string): Promise<ToolResult>;
}

export async function sql<R extends pg.QueryResultRow = Record<string, unknown>>(
  server: BenchServer,
  text: string,
): Promise<R[]> {
  const c = new pg.Client({ connectionString: server.url });
  await c.connect();
  try {
    return (await c.query<R>(text)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * The compiled CLI (bin/shadowpack.js, as users run it; `npm run build` first, see ensureBuilt),
 * under GNU time when it is there so the runner's peak memory is measured.
 */
export function cli(
  server: BenchServer,
  args: string[],
  onLine?: (line: string) => void,
  memFile?: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const argv = [path.join(REPO, 'bin/shadowpack.js'), ...args, '--url', server.url];
    const timed = memFile !== undefined && existsSync(GNU_TIME);
    const p = timed
      ? spawn(GNU_TIME, ['-f', '%M', '-o', memFile, process.execPath, ...argv], {
          cwd: REPO,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(process.execPath, argv, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
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

const GNU_TIME = '/usr/bin/time';

/** Builds dist/ (tsc) once, so the timed runs start the compiled CLI rather than transpiling TypeScript at startup. */
export async function ensureBuilt(log: (line: string) => void): Promise<void> {
  log('npm run build (the compiled CLI, as users run it) …');
  await exec(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: REPO,
    maxBuffer: 16 << 20,
  });
}

/** A plan is made ahead of approval: timed, but reported apart from the run. */
async function planShadowpack(server: BenchServer, work: string): Promise<number> {
  // pgbench -i dropped the table with any trigger of a run that failed; its state would refuse this plan,
  // and the copy it left (public._sp_*_new or _old) would stop this run's preflight.
  await sql(server, 'DROP SCHEMA IF EXISTS shadowpack CASCADE');
  await sql(
    server,
    `DO $$DECLARE t text; BEGIN
       FOR t IN SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname ~ '^_sp_.*_(new|old)$' LOOP
         EXECUTE 'DROP TABLE ' || t || ' CASCADE';
       END LOOP;
     END$$`,
  );
  const t = Date.now();
  await cli(server, [
    'plan',
    '--table',
    'public.pgbench_accounts',
    '--out',
    path.join(work, 'plan'),
    '--build-maintenance-work-mem-mb',
    String(BUILD_MEMORY_MB),
  ]);
  return Date.now() - t;
}

/** maintenance_work_mem of shadowpack's build sessions: pgbench_accounts' primary key sorts in memory at scale 100. */
export const BUILD_MEMORY_MB = 256;

const floor: Contender = {
  name: 'floor',
  underLoad: false,
  jobs: null,
  async prepare(server) {
    await sql(server, 'DROP TABLE IF EXISTS floor_copy');
    await sql(server, 'CREATE TABLE floor_copy (LIKE pgbench_accounts INCLUDING ALL EXCLUDING INDEXES)');
    return null;
  },
  async execute(server) {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      let t = Date.now();
      const r = await c.query('INSERT INTO floor_copy SELECT * FROM pgbench_accounts');
      const copyMs = Date.now() - t;
      t = Date.now();
      // The same sort memory as shadowpack's build sessions and pg_repack get.
      await c.query(`SET maintenance_work_mem = '${BUILD_MEMORY_MB}MB'`);
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
  jobs: null,
  async prepare(server) {
    await sql(server, 'CREATE EXTENSION IF NOT EXISTS pg_repack');
    return null;
  },
  async execute(server) {
    const bin = path.join(server.binDir ?? '', 'pg_repack');
    const t = Date.now();
    await exec(
      bin,
      [
        '-h',
        server.host,
        '-p',
        String(server.port),
        '-U',
        'postgres',
        '-d',
        'bench',
        '-t',
        'pgbench_accounts',
        '--no-superuser-check',
      ],
      { env: { ...server.env, PGOPTIONS: `-c maintenance_work_mem=${BUILD_MEMORY_MB}MB` }, maxBuffer: 16 << 20 },
    );
    return { stages: { repack: Date.now() - t }, rowsCopied: null, copyMs: null, swapLockMs: null };
  },
};

function runner(jobs: number): Contender {
  return {
    name: `shadowpack-runner-j${jobs}`,
    underLoad: true,
    jobs,
    prepare: planShadowpack,
    async execute(server, work) {
      const stages: Record<string, number> = {};
      const got: { summary: { lastSeen?: { swapLockMs: number | null; rowsCopied: number } | null } | null } = {
        summary: null,
      };
      const memFile = path.join(work, `runner-j${jobs}.rss`);
      let lastBatchAt: number | null = null;
      let settleMs: number | null = null;
      await cli(
        server,
        ['run', '--plan', path.join(work, 'plan'), '--until', 'cleanup', '--jobs', String(jobs), '--events'],
        (line) => {
          if (!line.startsWith('{')) return;
          const e = JSON.parse(line) as { type: string; stage?: string; ms?: number; ts?: string };
          if (e.type === 'stage-end' && e.stage) stages[e.stage] = e.ms ?? 0;
          if (e.type === 'summary') got.summary = e as typeof got.summary;
          if (e.type === 'backfill' && e.ts) lastBatchAt = Date.parse(e.ts);
          if (e.type === 'apply' && e.stage === 'backfill' && e.ts && lastBatchAt !== null && settleMs === null)
            settleMs = Date.parse(e.ts) - lastBatchAt;
        },
        memFile,
      );
      const seen = got.summary?.lastSeen ?? null;
      const rss = existsSync(memFile) ? Number(readFileSync(memFile, 'utf8').trim().split('\n').at(-1)) : NaN;
      return {
        stages,
        rowsCopied: seen?.rowsCopied ?? null,
        copyMs: stages['backfill'] ?? null,
        swapLockMs: seen?.swapLockMs ?? null,
        peakRssMb: Number.isFinite(rss) ? Math.round(rss / 1024) : null,
        settleMs,
      };
    },
  };
}

/**
 * A swap whose change log outgrew --swap-backlog while its lock step retried stops with nothing changed
 * and says to run it again (it catches up first); the runner does so by itself, a psql user by hand.
 */
const RUN_AGAIN = /the change log grew past \d+ entries while .* was being taken/;
const RUN_AGAIN_ATTEMPTS = 5;

/** One stage file through psql, run again (at most RUN_AGAIN_ATTEMPTS times in all) when it says to. */
async function psqlStage(server: BenchServer, file: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await psqlFile(server, file);
    } catch (e) {
      if (attempt >= RUN_AGAIN_ATTEMPTS || !RUN_AGAIN.test((e as Error).message)) throw e;
    }
  }
}

async function psqlFile(server: BenchServer, file: string): Promise<void> {
  try {
    await exec('/usr/bin/psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', server.url, '-f', file], {
      env: server.env,
      maxBuffer: 64 << 20,
    });
  } catch (e) {
    throw new Error(
      `psql -f ${path.basename(file)} failed: ${String((e as { stderr?: string }).stderr ?? e)
        .trim()
        .slice(-2000)}`,
    );
  }
}

/** Every stage file in order through psql; 02-backfill.sql in `jobs` psql sessions at once. */
function psql(jobs: number): Contender {
  return {
    name: `shadowpack-psql-j${jobs}`,
    underLoad: true,
    jobs,
    prepare: planShadowpack,
    async execute(server, work) {
      const dir = path.join(work, 'plan');
      const files = readdirSync(dir)
        .filter((f) => /^0\d-.*\.sql$/.test(f))
        .sort();
      const stages: Record<string, number> = {};
      let rowsCopied: number | null = null;
      let swapLockMs: number | null = null;
      for (const f of files) {
        const t = Date.now();
        const sessions = f.startsWith('02-') ? jobs : 1;
        await Promise.all(Array.from({ length: sessions }, () => psqlStage(server, path.join(dir, f))));
        stages[f.replace(/^\d\d-|\.sql$/g, '')] = Date.now() - t;
        if (f.startsWith('05-')) {
          const r = await sql<{ swap_lock_ms: string | null; rows_copied: string }>(
            server,
            'SELECT swap_lock_ms, rows_copied FROM shadowpack.runs',
          );
          swapLockMs = r[0]?.swap_lock_ms == null ? null : Number(r[0].swap_lock_ms);
          rowsCopied = r[0] ? Number(r[0].rows_copied) : null;
        }
      }
      return { stages, rowsCopied, copyMs: stages['backfill'] ?? null, swapLockMs };
    },
  };
}

/** floor, pg_repack, then the runner and psql with each number of backfill sessions. */
export function contenders(jobs: readonly number[]): Contender[] {
  return [floor, repack, ...jobs.map(runner), ...jobs.map(psql)];
}

/** Accounts whose balance differs from the sum of their history, and the row count. */
export async function checkBalances(server: BenchServer): Promise<{ mismatches: number; rows: number }> {
  const m = await sql<{ n: string }>(
    server,
    'SELECT count(*) AS n FROM pgbench_accounts a LEFT JOIN (SELECT aid, sum(delta) s FROM pgbench_history GROUP BY aid) h USING (aid) WHERE a.abalance <> coalesce(h.s, 0)',
  );
  const r = await sql<{ n: string }>(server, 'SELECT count(*) AS n FROM pgbench_accounts');
  return { mismatches: Number(m[0]!.n), rows: Number(r[0]!.n) };
}
