/**
 * Which PostgreSQL the suite runs against, chosen from the environment (docs/development.md):
 *
 * - default: one embedded server from the npm-packaged binaries (PostgreSQL 17, or SHADOWPACK_TEST_PG_MAJOR
 *   through the pg-bin-<major> aliases); what CI uses, no Docker needed.
 * - TEST_DATABASE_URL=postgres://…: a server of your own, used as is.
 * - TEST_SERVER=container [PG_IMAGE=postgres:16]: an official PostgreSQL image started through testcontainers
 *   (needs a Docker engine); the image defaults to postgres:<SHADOWPACK_TEST_PG_MAJOR or 17>.
 *
 * Contradicting settings are refused in one line rather than one of them silently ignored.
 */
import type { EmbeddedServer } from '../../src/dev/embedded-server.js';

export type TestServerChoice =
  | { readonly kind: 'embedded'; readonly major: number | undefined }
  | { readonly kind: 'external'; readonly url: string }
  | { readonly kind: 'container'; readonly image: string };

export const DEFAULT_MAJOR = 17;

/** The server settings every suite server gets, whichever kind. */
export const SUITE_SETTINGS: Readonly<Record<string, string>> = {
  // Prepared transactions hold locks with no session; the lock steps are tested against them.
  max_prepared_transactions: '10',
};

/** Reads the choice from `env`; throws one line naming the variables when they contradict each other. */
export function chooseTestServer(env: NodeJS.ProcessEnv): TestServerChoice {
  const kind = env.TEST_SERVER || undefined;
  const url = env.TEST_DATABASE_URL || undefined;
  const image = env.PG_IMAGE || undefined;
  const rawMajor = env.SHADOWPACK_TEST_PG_MAJOR || undefined;
  const major = rawMajor === undefined ? undefined : Number(rawMajor);
  if (major !== undefined && !Number.isInteger(major)) {
    throw new Error(`SHADOWPACK_TEST_PG_MAJOR must be a number, got "${rawMajor}"`);
  }
  if (kind !== undefined && kind !== 'embedded' && kind !== 'container') {
    throw new Error(
      `TEST_SERVER must be "embedded" or "container", got "${kind}" (a server of your own: TEST_DATABASE_URL=postgres://…)`,
    );
  }
  if (url !== undefined) {
    if (kind !== undefined)
      throw new Error(`TEST_DATABASE_URL and TEST_SERVER=${kind} both choose the test server: unset one`);
    // SHADOWPACK_TEST_PG_MAJOR is ignored here, as it always was (server.test.ts checks it only on its own servers).
    if (image !== undefined) throw new Error('TEST_DATABASE_URL uses your server as is: unset PG_IMAGE');
    return { kind: 'external', url };
  }
  if (kind === 'container') {
    if (image !== undefined && major !== undefined) {
      throw new Error('PG_IMAGE and SHADOWPACK_TEST_PG_MAJOR both choose the version: unset one');
    }
    return { kind: 'container', image: image ?? `postgres:${major ?? DEFAULT_MAJOR}` };
  }
  if (image !== undefined) throw new Error('PG_IMAGE is read only with TEST_SERVER=container');
  return { kind: 'embedded', major };
}

/** How the container is started: the official image's environment, the server settings, the port. */
export interface ContainerSpec {
  readonly image: string;
  readonly environment: Readonly<Record<string, string>>;
  readonly command: readonly string[];
  readonly port: number;
  /** The official image logs "ready" twice: after its init-time server, then for the real one. */
  readonly readyLog: RegExp;
  readonly readyTimes: number;
}

export const CONTAINER_PASSWORD = 'postgres';

export function containerSpec(image: string): ContainerSpec {
  const settings = { ...SUITE_SETTINGS, max_connections: '200' };
  return {
    image,
    environment: { POSTGRES_PASSWORD: CONTAINER_PASSWORD, POSTGRES_USER: 'postgres', POSTGRES_DB: 'postgres' },
    command: ['postgres', ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])],
    port: 5432,
    readyLog: /database system is ready to accept connections/,
    readyTimes: 2,
  };
}

export function containerUrl(host: string, port: number): string {
  return `postgres://postgres:${CONTAINER_PASSWORD}@${host}:${port}/postgres`;
}

export interface TestServer {
  readonly url: string;
  /** One line for the log: what runs where. */
  readonly description: string;
  stop(): Promise<void>;
}

/** Starts (or, for a server of your own, just names) the chosen server. testcontainers is loaded only when chosen. */
export async function startTestServer(choice: TestServerChoice): Promise<TestServer> {
  switch (choice.kind) {
    case 'external':
      return { url: choice.url, description: 'the server at TEST_DATABASE_URL', stop: async () => undefined };
    case 'embedded': {
      const { startEmbeddedPostgres } = await import('../../src/dev/embedded-server.js');
      const server: EmbeddedServer = await startEmbeddedPostgres({
        major: choice.major,
        settings: { ...SUITE_SETTINGS },
        log: process.env.SHADOWPACK_TEST_PG_LOG ? (line) => console.error(`[pg] ${line}`) : undefined,
      });
      return {
        url: server.url,
        description: `embedded PostgreSQL ${server.version} on port ${server.port} (${server.dataDir})`,
        stop: () => server.stop(),
      };
    }
    case 'container': {
      const spec = containerSpec(choice.image);
      const { GenericContainer, Wait } = await import('testcontainers');
      const started = await new GenericContainer(spec.image)
        .withEnvironment({ ...spec.environment })
        .withCommand([...spec.command])
        .withExposedPorts(spec.port)
        .withWaitStrategy(Wait.forLogMessage(spec.readyLog, spec.readyTimes))
        .start();
      const host = started.getHost();
      const port = started.getMappedPort(spec.port);
      return {
        url: containerUrl(host, port),
        description: `container ${spec.image} on ${host}:${port}`,
        stop: async () => {
          await started.stop();
        },
      };
    }
  }
}
