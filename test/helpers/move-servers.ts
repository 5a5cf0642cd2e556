/**
 * The two clusters of a cross-cluster move test: the run's source server (PostgreSQL 14, started once per
 * run by test/helpers/global-setup.ts through move-source.ts, in parallel with the suite's PostgreSQL 17
 * target), each test file on a fresh database of both.
 */
import { inject } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from './db.js';
import { sourceMajor } from './move-source.js';
import { chooseTestServer } from './test-server.js';

/** Source major of the default suite (issue 15: 14 -> 17); SHADOWPACK_MOVE_SOURCE_MAJOR picks another. */
export const SOURCE_MAJOR = sourceMajor(process.env);

/**
 * Major of an embedded target a move test starts for itself (move-restart.test.ts): the suite's target major
 * (SHADOWPACK_TEST_PG_MAJOR, so the matrix pairs of scripts/test-matrix.sh reach it), undefined for the bundled 17.
 */
export const TARGET_MAJOR: number | undefined = ((choice) => (choice.kind === 'embedded' ? choice.major : undefined))(
  chooseTestServer(process.env),
);

const provided = inject('moveSource');

/**
 * Why this run has no move source (TEST_DATABASE_URL or TEST_SERVER=container without
 * SHADOWPACK_MOVE_SOURCE_URL), or undefined; each move test file's describe skips on it.
 */
export const MOVE_SOURCE_MISSING: string | undefined = provided.kind === 'missing' ? provided.reason : undefined;
if (MOVE_SOURCE_MISSING !== undefined) console.warn(`[move-servers] ${MOVE_SOURCE_MISSING}`);

export interface MoveServers {
  /** Superuser URL of the source server (shared by the run; databases are per file). */
  readonly sourceAdminUrl: string;
  /** Superuser URL of the target server (the suite's server). */
  readonly targetAdminUrl: string;
  /** Nothing to stop: the servers belong to the run (global-setup.ts); kept so callers need not care. */
  stop(): Promise<void>;
}

/** The run's source and target servers; throws the reason when the run has none (the describe should skip). */
export async function startMoveServers(): Promise<MoveServers> {
  if (provided.kind === 'missing') {
    throw new Error(
      `${provided.reason} (a move test file is named test/integration/move-*.test.ts and skips its describe on MOVE_SOURCE_MISSING)`,
    );
  }
  return { sourceAdminUrl: provided.url, targetAdminUrl: inject('adminUrl'), stop: async () => {} };
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
  const source = await freshDatabase(`${prefix}_src`, servers.sourceAdminUrl);
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
export async function createTestForeignServer(
  pair: MovePair,
  serverOptions: Record<string, string> = {},
): Promise<void> {
  const src = new URL(pair.source.url);
  const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const opts = { ...pair.sourceAddress, ...serverOptions };
  const list = Object.entries(opts)
    .map(([k, v]) => `${k} ${lit(v)}`)
    .join(', ');
  await withClient(pair.target.url, async (c) => {
    await c.query(`CREATE SERVER src FOREIGN DATA WRAPPER postgres_fdw OPTIONS (${list})`);
    await c.query(
      `CREATE USER MAPPING FOR CURRENT_USER SERVER src OPTIONS (user ${lit(decodeURIComponent(src.username))}, password ${lit(decodeURIComponent(src.password))})`,
    );
  });
}
