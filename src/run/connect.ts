import type pg from 'pg';
import { pg as driver } from './pg-module.js';
import { UserError } from '../model/errors.js';
import type { ConnectionConfig } from './connection-config.js';

export type { ConnectionConfig } from './connection-config.js';

/**
 * A connected client, or one clear line naming where it tried to connect (host, port, database,
 * user; never the password) with a hint that fits what went wrong. Server-side disconnects later
 * surface on the query that hits them, not as an unhandled 'error' event.
 */
export async function connectClient(config: ConnectionConfig): Promise<pg.Client> {
  const { sslFallback, target, ...clientConfig } = config;
  const key = `${String(clientConfig.host)}:${String(clientConfig.port)}`;
  if (sslFallback && NO_TLS.has(key)) clientConfig.ssl = false;
  try {
    return await open(clientConfig);
  } catch (e) {
    // sslmode=prefer, libpq's default: a server without TLS is fine, connect without it (and
    // remember, so the next session of this run does not ask again).
    if (sslFallback && clientConfig.ssl !== false && e instanceof Error && /does not support SSL/i.test(e.message)) {
      NO_TLS.add(key);
      try {
        return await open({ ...clientConfig, ssl: false });
      } catch (e2) {
        throw connectionError(e2, target);
      }
    }
    throw connectionError(e, target);
  }
}

/** host:port of servers that answered sslmode=prefer without TLS, in this process. */
const NO_TLS = new Set<string>();

async function open(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new driver.Client(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw e;
  }
  return client;
}

function connectionError(e: unknown, t: ConnectionConfig['target']): UserError {
  const where =
    t === undefined
      ? 'PostgreSQL'
      : `PostgreSQL at ${t.host.startsWith('/') ? `socket ${t.host}/.s.PGSQL.${t.port}` : `${t.host}:${t.port}`} (database ${t.database}, user ${t.user})`;
  const err = e as Error & { code?: string };
  const hint = hintFor(err, t);
  const message = e instanceof UserError ? e.message : err.message;
  return new UserError(
    'CONNECTION_FAILED',
    `cannot connect to ${where}: ${message}${hint ? `; ${hint}` : ''}`,
    hint ? { hint } : {},
    { cause: e },
  );
}

function hintFor(e: Error & { code?: string }, t: ConnectionConfig['target']): string {
  const db = t?.database ?? 'the database';
  const user = t?.user ?? 'the user';
  if (e instanceof UserError) return '';
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'ENOENT':
      return 'is the server running there and accepting connections on that port (listen_addresses, port)? give --url, DATABASE_URL or PGHOST/PGPORT';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve: check the host in --url, DATABASE_URL or PGHOST';
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'the host does not answer: check the address and any firewall between here and the server';
    case '28P01':
      return `check the password of ${user} (PGPASSWORD, ~/.pgpass or password= in the connection string)`;
    case '28000':
      return `the server's pg_hba.conf has no line letting ${user} connect to ${db} from here, or the role does not exist`;
    case '3D000':
      return `check the database name (psql -l lists them); the plan's binding names the database it was made for`;
    case '53300':
      return 'the server has no free connection slot: wait, or raise max_connections';
    case '57P03':
      return 'the server is starting up or shutting down: try again in a moment';
  }
  if (/timeout/i.test(e.message))
    return `no answer within ${t?.timeoutSeconds ?? '?'} s (connect_timeout or PGCONNECT_TIMEOUT): check the host, port and any firewall`;
  if (/does not support SSL/i.test(e.message))
    return 'the server has no TLS: use sslmode=prefer or sslmode=disable, or turn ssl on in the server';
  if (/certificate|self.signed|CERT_/i.test(e.message))
    return "the server's certificate is not trusted: give sslrootcert=FILE (the CA), or sslmode=require to encrypt without checking it";
  return 'give --url (a URL or host=… port=… dbname=… user=…), or set DATABASE_URL or the PG* variables';
}
