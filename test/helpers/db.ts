import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { ident } from '../../src/model/quote.js';

export interface FreshDatabase {
  /** Connection URL of the new database (same credentials as the admin URL). */
  url: string;
  name: string;
  /** Drops the database, terminating remaining connections. Idempotent. */
  drop(): Promise<void>;
}

/** Connects to `url`, runs `fn`, always disconnects. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  // A server-side disconnect (e.g. a crash test) must not become an uncaught error.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The tests quote with the code's one quoting module too. */
export const quoteIdent = ident;

/** Replaces the database name in a connection URL, keeping credentials and query parameters. */
export function urlForDatabase(baseUrl: string, database: string): string {
  const u = new URL(baseUrl);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

let counter = 0;

/** Creates a uniquely named, empty database on the admin server (`inject('adminUrl')`). */
export async function freshDatabase(prefix: string, adminUrl: string = inject('adminUrl')): Promise<FreshDatabase> {
  if (!adminUrl) throw new Error('No adminUrl provided: is test/helpers/global-setup.ts configured as globalSetup?');
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '_')
      .slice(0, 30) || 'db';
  const name = `sp_${clean}_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
  // template0 never has connections, so concurrent CREATE DATABASEs cannot trip over each other.
  await withClient(adminUrl, (c) => c.query(`create database ${quoteIdent(name)} template template0`));
  let dropped = false;
  return {
    url: urlForDatabase(adminUrl, name),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await withClient(adminUrl, (c) => c.query(`drop database if exists ${quoteIdent(name)} with (force)`));
    },
  };
}
