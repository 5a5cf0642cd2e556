/**
 * The two clusters of a cross-cluster move test: a PostgreSQL 14 source started once per test file next to the
 * suite's PostgreSQL 17 target (test/helpers/global-setup.ts), each test on a fresh database of both.
 */
import { inject } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from './db.js';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/dev/embedded-server.js';

/** Source major of the default suite (issue 15: 14 -> 17); SHADOWPACK_MOVE_SOURCE_MAJOR picks another. */
export const SOURCE_MAJOR = Number.parseInt(process.env.SHADOWPACK_MOVE_SOURCE_MAJOR ?? '14', 10);

export interface MoveServers {
  readonly source: EmbeddedServer;
  /** Superuser URL of the target server (the suite's server). */
  readonly targetAdminUrl: string;
  stop(): Promise<void>;
}

/** Starts the source server; prepared transactions are on, since the writers leave one open across a round. */
export async function startMoveServers(): Promise<MoveServers> {
  const source = await startEmbeddedPostgres({
    major: SOURCE_MAJOR,
    settings: { max_prepared_transactions: '10', shared_buffers: '32MB', max_connections: '60' },
  });
  return { source, targetAdminUrl: inject('adminUrl'), stop: () => source.stop() };
}

export interface MovePair {
  readonly source: FreshDatabase;
  readonly target: FreshDatabase;
  /** host, port and database name of the source as seen from the target (for CREATE SERVER). */
  readonly sourceAddress: { host: string; port: string; dbname: string };
  drop(): Promise<void>;
}

/** A fresh database on each side, postgres_fdw installed on the target (and on the source, for the checks). */
export async function freshMovePair(servers: MoveServers, prefix: string): Promise<MovePair> {
  const source = await freshDatabase(`${prefix}_src`, servers.source.url);
  const target = await freshDatabase(`${prefix}_tgt`, servers.targetAdminUrl);
  await withClient(target.url, (c) => c.query('CREATE EXTENSION postgres_fdw'));
  const u = new URL(source.url);
  return {
    source,
    target,
    sourceAddress: { host: u.hostname, port: u.port, dbname: source.name },
    async drop() {
      await target.drop();
      await source.drop();
    },
  };
}

/**
 * A foreign server `src` on the target pointing at the source database, with a user mapping for the current
 * user. Test only: the superuser's password goes into the mapping, which a plan never does.
 */
export async function createTestForeignServer(pair: MovePair, serverOptions: Record<string, string> = {}): Promise<void> {
  const src = new URL(pair.source.url);
  const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const opts = { ...pair.sourceAddress, ...serverOptions };
  const list = Object.entries(opts).map(([k, v]) => `${k} ${lit(v)}`).join(', ');
  await withClient(pair.target.url, async (c) => {
    await c.query(`CREATE SERVER src FOREIGN DATA WRAPPER postgres_fdw OPTIONS (${list})`);
    await c.query(
      `CREATE USER MAPPING FOR CURRENT_USER SERVER src OPTIONS (user ${lit(decodeURIComponent(src.username))}, password ${lit(decodeURIComponent(src.password))})`,
    );
  });
}
