import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { getFreePort, startEmbeddedPostgres } from '../src/dev/embedded-server.js';

const exec = promisify(execFile);

export const PG15 = '/usr/lib/postgresql/15/bin';
const REPACK_BIN = `${PG15}/pg_repack`;
const REPACK_CONTROL = '/usr/share/postgresql/15/extension/pg_repack.control';

/** The settings every benchmark server runs with; written into the results. */
export const BENCH_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: '512MB',
  max_wal_size: '4GB',
  checkpoint_timeout: '15min',
  synchronous_commit: 'on',
};

export interface BenchServer {
  readonly host: string;
  readonly port: number;
  /** Superuser URL for database `bench`. */
  readonly url: string;
  readonly env: NodeJS.ProcessEnv;
  readonly version: string;
  readonly kind: 'debian-15' | 'embedded';
  /** Directory holding pgbench, pg_repack etc. */
  readonly binDir: string | null;
  readonly repack: boolean;
  stop(): Promise<void>;
}

function repackPresent(): boolean {
  return existsSync(REPACK_BIN) && existsSync(REPACK_CONTROL) && existsSync(`${PG15}/initdb`);
}

/** Installs postgresql-15 and pg_repack through apt when they are missing. Returns whether they are usable. */
export function ensurePackages(log: (line: string) => void): boolean {
  if (repackPresent()) return true;
  log('installing postgresql-15, postgresql-15-repack, postgresql-contrib through apt …');
  const opts = { stdio: 'ignore' as const, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  const upd = spawnSync('apt-get', ['update'], opts);
  if (upd.status !== 0) log(`  apt-get update failed (exit ${upd.status ?? upd.error?.message})`);
  const inst = spawnSync(
    'apt-get',
    ['install', '-y', 'postgresql-15', 'postgresql-15-repack', 'postgresql-contrib'],
    opts,
  );
  if (inst.status !== 0) log(`  apt-get install failed (exit ${inst.status ?? inst.error?.message})`);
  return repackPresent();
}

async function asPostgres(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await exec('runuser', ['-u', 'postgres', '--', cmd, ...args], { maxBuffer: 16 << 20 });
  return stdout;
}

async function startDebian(log: (line: string) => void, extra: Record<string, string>): Promise<BenchServer> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shadowpack-bench-pg-'));
  const data = path.join(dir, 'data');
  let started = false;
  const cleanup = async (): Promise<void> => {
    if (started) await asPostgres(`${PG15}/pg_ctl`, ['stop', '-D', data, '-m', 'fast', '-w']).catch(() => undefined);
    started = false;
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    await exec('chown', ['postgres:postgres', dir]);
    await asPostgres(`${PG15}/initdb`, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    const port = await getFreePort();
    const settings: Record<string, string> = {
      ...BENCH_SETTINGS,
      ...extra,
      port: String(port),
      listen_addresses: '127.0.0.1',
      unix_socket_directories: dir,
    };
    const conf = Object.entries(settings)
      .map(([k, v]) => `${k} = '${v}'`)
      .join('\n');
    await fs.appendFile(path.join(data, 'postgresql.conf'), `\n# shadowpack bench\n${conf}\n`);
    started = true;
    await asPostgres(`${PG15}/pg_ctl`, ['start', '-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60']);
    const env = {
      ...process.env,
      PGHOST: '127.0.0.1',
      PGPORT: String(port),
      PGUSER: 'postgres',
      PGPASSWORD: 'postgres',
      PGDATABASE: 'bench',
    };
    await exec('/usr/bin/psql', ['-X', '-q', '-d', 'postgres', '-c', 'CREATE DATABASE bench'], { env });
    const { stdout } = await exec('/usr/bin/psql', ['-X', '-At', '-c', 'SHOW server_version'], { env });
    log(`PostgreSQL ${stdout.trim()} (Debian package) on 127.0.0.1:${port}, socket in ${dir}`);
    return {
      host: '127.0.0.1',
      port,
      url: `postgres://postgres:postgres@127.0.0.1:${port}/bench`,
      env,
      version: stdout.trim(),
      kind: 'debian-15',
      binDir: PG15,
      repack: true,
      stop: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

async function startFallback(log: (line: string) => void, extra: Record<string, string>): Promise<BenchServer> {
  const s = await startEmbeddedPostgres({ settings: { ...BENCH_SETTINGS, ...extra } });
  const env = {
    ...process.env,
    PGHOST: '127.0.0.1',
    PGPORT: String(s.port),
    PGUSER: 'postgres',
    PGPASSWORD: 'postgres',
    PGDATABASE: 'bench',
  };
  try {
    await exec('psql', ['-X', '-q', '-d', 'postgres', '-c', 'CREATE DATABASE bench'], { env });
  } catch (e) {
    await s.stop();
    throw e;
  }
  log(`PostgreSQL ${s.version} (embedded fallback) on 127.0.0.1:${s.port}; pg_repack: n/a`);
  return {
    host: '127.0.0.1',
    port: s.port,
    url: `postgres://postgres:postgres@127.0.0.1:${s.port}/bench`,
    env,
    version: s.version,
    kind: 'embedded',
    binDir: existsSync(`${PG15}/pgbench`) ? PG15 : null,
    repack: false,
    stop: () => s.stop(),
  };
}

/**
 * A private Debian PostgreSQL 15 cluster with pg_repack, else the embedded server without it.
 * `extra` settings go on top of BENCH_SETTINGS (the move line turns on track_commit_timestamp).
 */
export async function startBenchServer(
  log: (line: string) => void,
  prefer: 'auto' | 'embedded' = 'auto',
  extra: Record<string, string> = {},
): Promise<BenchServer> {
  if (prefer === 'auto' && ensurePackages(log)) {
    try {
      return await startDebian(log, extra);
    } catch (e) {
      log(
        `could not start the Debian cluster (${(e as Error).message.split('\n')[0]}); falling back to the embedded server`,
      );
    }
  }
  return startFallback(log, extra);
}

/**
 * The move line's target: an embedded PostgreSQL 17 (its package ships postgres_fdw), a major at or above the
 * Debian 15 source, with the same settings plus `extra`; database `bench` created empty.
 */
export async function startMoveTarget(
  log: (line: string) => void,
  extra: Record<string, string> = {},
): Promise<BenchServer> {
  const s = await startEmbeddedPostgres({ settings: { ...BENCH_SETTINGS, ...extra } });
  const env = {
    ...process.env,
    PGHOST: '127.0.0.1',
    PGPORT: String(s.port),
    PGUSER: 'postgres',
    PGPASSWORD: 'postgres',
    PGDATABASE: 'bench',
  };
  try {
    await exec('/usr/bin/psql', ['-X', '-q', '-d', 'postgres', '-c', 'CREATE DATABASE bench'], { env });
  } catch (e) {
    await s.stop();
    throw e;
  }
  log(`target: PostgreSQL ${s.version} (embedded) on 127.0.0.1:${s.port}`);
  return {
    host: '127.0.0.1',
    port: s.port,
    url: `postgres://postgres:postgres@127.0.0.1:${s.port}/bench`,
    env,
    version: s.version,
    kind: 'embedded',
    binDir: null,
    repack: false,
    stop: () => s.stop(),
  };
}
