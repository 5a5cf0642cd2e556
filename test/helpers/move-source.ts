/**
 * The source server of the cross-cluster move tests, chosen next to the suite's target (test-server.ts) and
 * started once per run by global-setup.ts:
 *
 * - embedded target (default): an embedded PostgreSQL 14 (SHADOWPACK_MOVE_SOURCE_MAJOR picks another) on
 *   127.0.0.1, which the target reaches through postgres_fdw.
 * - SHADOWPACK_MOVE_SOURCE_URL=postgres://…: a source server of your own, used as is (it must be reachable
 *   from the target under that host and port, and have max_prepared_transactions > 0).
 * - TEST_DATABASE_URL or TEST_SERVER=container without SHADOWPACK_MOVE_SOURCE_URL: no source; the move tests
 *   skip, saying why (an embedded source on this machine's 127.0.0.1 is not reachable from a server elsewhere
 *   or in a container).
 */
import { startEmbeddedPostgres } from '../../src/dev/embedded-server.js';
import type { TestServerChoice } from './test-server.js';

/** What the move tests receive through inject('moveSource'): a URL, or why there is none. */
export type MoveSource =
  | { readonly kind: 'url'; readonly url: string; readonly description: string }
  | { readonly kind: 'missing'; readonly reason: string };

export type MoveSourceChoice =
  | { readonly kind: 'embedded'; readonly major: number }
  | { readonly kind: 'external'; readonly url: string }
  | { readonly kind: 'none'; readonly reason: string };

export const DEFAULT_SOURCE_MAJOR = 14;

/** Source major of an embedded source (issue 15: 14 -> 17); SHADOWPACK_MOVE_SOURCE_MAJOR picks another. */
export function sourceMajor(env: NodeJS.ProcessEnv): number {
  const raw = env.SHADOWPACK_MOVE_SOURCE_MAJOR || undefined;
  const major = raw === undefined ? DEFAULT_SOURCE_MAJOR : Number(raw);
  if (!Number.isInteger(major)) throw new Error(`SHADOWPACK_MOVE_SOURCE_MAJOR must be a number, got "${raw}"`);
  return major;
}

export function moveSourceChoice(target: TestServerChoice, env: NodeJS.ProcessEnv, needed: boolean): MoveSourceChoice {
  const url = env.SHADOWPACK_MOVE_SOURCE_URL || undefined;
  if (!needed) return { kind: 'none', reason: 'this run has no move test' };
  if (url !== undefined) return { kind: 'external', url };
  if (target.kind === 'embedded') return { kind: 'embedded', major: sourceMajor(env) };
  const how = target.kind === 'external' ? 'TEST_DATABASE_URL' : 'TEST_SERVER=container';
  return {
    kind: 'none',
    reason: `move tests skipped: with ${how} the target cannot reach an embedded source on 127.0.0.1; set SHADOWPACK_MOVE_SOURCE_URL=postgres://… to a source server the target reaches (max_prepared_transactions > 0)`,
  };
}

export interface StartedMoveSource {
  readonly provided: MoveSource;
  stop(): Promise<void>;
}

export async function startMoveSource(choice: MoveSourceChoice): Promise<StartedMoveSource> {
  switch (choice.kind) {
    case 'none':
      return { provided: { kind: 'missing', reason: choice.reason }, stop: async () => {} };
    case 'external':
      return {
        provided: { kind: 'url', url: choice.url, description: 'SHADOWPACK_MOVE_SOURCE_URL' },
        stop: async () => {},
      };
    case 'embedded': {
      // Prepared transactions are on, since the writers leave one open across a round.
      const s = await startEmbeddedPostgres({
        major: choice.major,
        settings: { max_prepared_transactions: '10', shared_buffers: '32MB', max_connections: '100' },
      });
      return {
        provided: { kind: 'url', url: s.url, description: `embedded PostgreSQL ${s.version} on port ${s.port}` },
        stop: () => s.stop(),
      };
    }
    default: {
      const never: never = choice;
      throw new Error(`unknown move source ${JSON.stringify(never)}`);
    }
  }
}
