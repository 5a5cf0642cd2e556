import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { ClientConfig } from 'pg';
import { UserError } from '../model/errors.js';
import { parseConninfo, type Conninfo } from './conninfo.js';

/** Seconds to wait for a server to answer when neither connect_timeout nor PGCONNECT_TIMEOUT says. */
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** What node-postgres needs, plus what a message about the connection may name (never the password). */
export interface ConnectionConfig extends ClientConfig {
  /** sslmode=prefer: try TLS, and connect without it when the server has none (libpq's default). */
  readonly sslFallback?: boolean;
  readonly target?: {
    readonly host: string;
    readonly port: number;
    readonly database: string;
    readonly user: string;
    readonly sslmode: SslMode;
    readonly timeoutSeconds: number;
  };
}

const ENV: Readonly<Record<keyof Conninfo, string | undefined>> = {
  host: 'PGHOST',
  hostaddr: 'PGHOSTADDR',
  port: 'PGPORT',
  dbname: 'PGDATABASE',
  user: 'PGUSER',
  password: 'PGPASSWORD',
  passfile: 'PGPASSFILE',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  application_name: 'PGAPPNAME',
  options: 'PGOPTIONS',
};

/**
 * libpq's rules: each setting from the connection string, else its PG* variable, else libpq's
 * default (the local socket when there is one, port 5432, the OS user, a database named as the
 * user, sslmode=prefer). The password comes from the string, PGPASSWORD or the password file,
 * read only when the server asks for one; none gives one line saying where to put it.
 */
export function resolveConnection(text: string | undefined, env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  const given = text === undefined || text.trim() === '' ? {} : parseConninfo(text);
  const get = (k: keyof Conninfo): string | undefined => {
    const v = given[k] ?? (ENV[k] ? env[ENV[k]!] : undefined);
    return v === '' ? undefined : v;
  };
  const portText = get('port') ?? '5432';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new UserError('CONNECTION_FAILED', `port ${portText}: give a port number from 1 to 65535`);
  const host = get('hostaddr') ?? get('host') ?? defaultHost(port);
  const user = get('user') ?? userInfo().username;
  const database = get('dbname') ?? user;
  const timeoutText = get('connect_timeout');
  const timeout = timeoutText === undefined ? DEFAULT_CONNECT_TIMEOUT_SECONDS : Number(timeoutText);
  if (!Number.isInteger(timeout) || timeout < 0)
    throw new UserError(
      'CONNECTION_FAILED',
      `connect_timeout ${timeoutText ?? ''} (or PGCONNECT_TIMEOUT): give whole seconds, 0 for no limit`,
    );
  const sslmode = (get('sslmode') ?? 'prefer') as SslMode;
  if (!SSL_MODES.includes(sslmode))
    throw new UserError('CONNECTION_FAILED', `sslmode ${sslmode}: give one of ${SSL_MODES.join(', ')}`);
  const socket = host.startsWith('/');
  const password = get('password');
  const passfile = get('passfile') ?? join(homedir(), '.pgpass');
  const target = { host, port, database, user, sslmode, timeoutSeconds: timeout };
  const ssl = socket ? false : sslOptions(sslmode, get);
  const applicationName = get('application_name');
  const options = get('options');
  return {
    host,
    port,
    user,
    database,
    // libpq waits at least 2 s; 0 means no limit.
    ...(timeout > 0 ? { connectionTimeoutMillis: Math.max(2, timeout) * 1000 } : {}),
    password: password ?? (async () => passwordFromFile(passfile, target)),
    ssl,
    ...(sslmode === 'prefer' && !socket ? { sslFallback: true } : {}),
    ...(applicationName !== undefined ? { application_name: applicationName } : {}),
    ...(options !== undefined ? { options } : {}),
    target,
  };
}

/** libpq's default: the Unix socket where Debian's and the upstream build put it, if a server listens there. */
function defaultHost(port: number): string {
  for (const dir of ['/var/run/postgresql', '/tmp']) if (existsSync(join(dir, `.s.PGSQL.${port}`))) return dir;
  return 'localhost';
}

/**
 * libpq's sslmode for node-postgres, which would read require as verify-full: prefer and require
 * encrypt without checking the certificate (require checks it against sslrootcert when one is
 * given, as libpq does), verify-ca checks the chain, verify-full the chain and the host name.
 * allow connects without TLS (libpq would retry with TLS only if the server insisted).
 */
function sslOptions(mode: SslMode, get: (k: keyof Conninfo) => string | undefined): ClientConfig['ssl'] {
  const read = (k: 'sslrootcert' | 'sslcert' | 'sslkey') => {
    const path = get(k);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new UserError('CONNECTION_FAILED', `${k} ${path}: cannot read it (${(e as Error).message})`);
    }
  };
  const files = () => {
    const cert = read('sslcert');
    const key = read('sslkey');
    return { ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) };
  };
  switch (mode) {
    case 'disable':
    case 'allow':
      return false;
    case 'prefer':
      return { rejectUnauthorized: false, ...files() };
    case 'require': {
      const ca = read('sslrootcert');
      return ca === undefined
        ? { rejectUnauthorized: false, ...files() }
        : { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined, ...files() };
    }
    case 'verify-ca': {
      const ca = read('sslrootcert');
      return {
        ...(ca !== undefined ? { ca } : {}),
        rejectUnauthorized: true,
        checkServerIdentity: () => undefined,
        ...files(),
      };
    }
    case 'verify-full': {
      const ca = read('sslrootcert');
      return { ...(ca !== undefined ? { ca } : {}), rejectUnauthorized: true, ...files() };
    }
  }
}

/** The password file the libpq way (host:port:database:user:password, * matches anything, \ escapes). */
export function passwordFromFile(
  path: string,
  t: { host: string; port: number; database: string; user: string },
): string {
  const needed = `the server asks for a password for user ${t.user}: set PGPASSWORD, put a line ${t.host.startsWith('/') ? 'localhost' : t.host}:${t.port}:${t.database}:${t.user}:PASSWORD in ${path} (mode 0600), or add password=… to the connection string`;
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UserError('CONNECTION_FAILED', needed, { hint: `${path} is not a file` });
    if ((st.mode & 0o077) !== 0)
      throw new UserError(
        'CONNECTION_FAILED',
        `${needed} (${path} is readable by group or others, so it is ignored, as libpq does: chmod 0600 ${path})`,
      );
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError('CONNECTION_FAILED', needed);
  }
  // libpq matches a socket connection against "localhost".
  const host = t.host.startsWith('/') ? 'localhost' : t.host;
  const want = [host, String(t.port), t.database, t.user];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const fields = splitPassLine(line);
    if (fields.length < 5) continue;
    if (want.every((w, i) => fields[i] === '*' || fields[i] === w)) return fields[4]!;
  }
  throw new UserError('CONNECTION_FAILED', needed);
}

function splitPassLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) field += line[++i];
    else if (c === ':' && fields.length < 4) {
      fields.push(field);
      field = '';
    } else field += c;
  }
  fields.push(field);
  return fields;
}
