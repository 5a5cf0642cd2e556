import { beforeEach, describe, expect, it, vi } from 'vitest';
import { chooseTestServer, containerSpec, startTestServer, SUITE_SETTINGS } from '../../test/helpers/test-server.js';

// No Docker engine here: testcontainers is replaced by a recorder, so what is checked is what the suite
// asks testcontainers for (image, environment, settings, port, readiness) and what it makes of the answer.
const calls = vi.hoisted(() => ({ log: [] as Array<[string, unknown]>, stopped: 0 }));
vi.mock('testcontainers', () => {
  class GenericContainer {
    constructor(image: string) {
      calls.log.push(['image', image]);
    }
    withEnvironment(env: unknown): this {
      calls.log.push(['environment', env]);
      return this;
    }
    withCommand(command: unknown): this {
      calls.log.push(['command', command]);
      return this;
    }
    withExposedPorts(...ports: unknown[]): this {
      calls.log.push(['ports', ports]);
      return this;
    }
    withWaitStrategy(wait: unknown): this {
      calls.log.push(['wait', wait]);
      return this;
    }
    async start(): Promise<unknown> {
      calls.log.push(['start', null]);
      return {
        getHost: () => 'docker.example',
        getMappedPort: (port: number) => (port === 5432 ? 32768 : 0),
        stop: async () => {
          calls.stopped++;
        },
      };
    }
  }
  const Wait = { forLogMessage: (message: RegExp, times: number) => ({ message: String(message), times }) };
  return { GenericContainer, Wait };
});

describe('chooseTestServer', () => {
  it('defaults to the embedded server, with the major from SHADOWPACK_TEST_PG_MAJOR', () => {
    expect(chooseTestServer({})).toEqual({ kind: 'embedded', major: undefined });
    expect(chooseTestServer({ TEST_SERVER: 'embedded' })).toEqual({ kind: 'embedded', major: undefined });
    expect(chooseTestServer({ SHADOWPACK_TEST_PG_MAJOR: '14' })).toEqual({ kind: 'embedded', major: 14 });
    // An empty variable counts as unset, as in the shell's VAR= npm test.
    expect(chooseTestServer({ TEST_SERVER: '', PG_IMAGE: '', TEST_DATABASE_URL: '' })).toEqual({
      kind: 'embedded',
      major: undefined,
    });
  });

  it('uses TEST_DATABASE_URL as is', () => {
    const url = 'postgres://me:pw@db.example:5433/postgres';
    expect(chooseTestServer({ TEST_DATABASE_URL: url })).toEqual({ kind: 'external', url });
    expect(chooseTestServer({ TEST_DATABASE_URL: url, SHADOWPACK_TEST_PG_MAJOR: '16' })).toEqual({
      kind: 'external',
      url,
    });
  });

  it('starts an official image for TEST_SERVER=container: PG_IMAGE, else postgres:<major>, else postgres:17', () => {
    expect(chooseTestServer({ TEST_SERVER: 'container', PG_IMAGE: 'postgres:16' })).toEqual({
      kind: 'container',
      image: 'postgres:16',
    });
    expect(chooseTestServer({ TEST_SERVER: 'container', SHADOWPACK_TEST_PG_MAJOR: '15' })).toEqual({
      kind: 'container',
      image: 'postgres:15',
    });
    expect(chooseTestServer({ TEST_SERVER: 'container' })).toEqual({ kind: 'container', image: 'postgres:17' });
  });

  it('refuses settings that contradict each other, in one line naming them', () => {
    const url = 'postgres://localhost/postgres';
    expect(() => chooseTestServer({ TEST_SERVER: 'docker' })).toThrow(
      /^TEST_SERVER must be "embedded" or "container", got "docker"/,
    );
    expect(() => chooseTestServer({ TEST_SERVER: 'container', TEST_DATABASE_URL: url })).toThrow(
      /TEST_DATABASE_URL and TEST_SERVER=container both/,
    );
    expect(() => chooseTestServer({ TEST_DATABASE_URL: url, PG_IMAGE: 'postgres:16' })).toThrow(/unset PG_IMAGE/);
    expect(() => chooseTestServer({ PG_IMAGE: 'postgres:16' })).toThrow(
      /PG_IMAGE is read only with TEST_SERVER=container/,
    );
    expect(() =>
      chooseTestServer({ TEST_SERVER: 'container', PG_IMAGE: 'postgres:16', SHADOWPACK_TEST_PG_MAJOR: '16' }),
    ).toThrow(/PG_IMAGE and SHADOWPACK_TEST_PG_MAJOR both/);
    expect(() => chooseTestServer({ SHADOWPACK_TEST_PG_MAJOR: 'seventeen' })).toThrow(
      /must be a number, got "seventeen"/,
    );
  });
});

describe('the container', () => {
  beforeEach(() => {
    calls.log.length = 0;
    calls.stopped = 0;
  });

  it('runs the image with the suite settings the embedded server gets, and the password of its URL', () => {
    const spec = containerSpec('postgres:16');
    for (const [k, v] of Object.entries(SUITE_SETTINGS)) expect(spec.command).toContain(`${k}=${v}`);
    expect(spec.command[0]).toBe('postgres');
    expect(spec.environment.POSTGRES_PASSWORD).toBe('postgres');
  });

  it('is started through testcontainers and reached on its mapped port; stop() stops it', async () => {
    const server = await startTestServer({ kind: 'container', image: 'postgres:16' });
    expect(server.url).toBe('postgres://postgres:postgres@docker.example:32768/postgres');
    expect(server.description).toBe('container postgres:16 on docker.example:32768');
    const spec = containerSpec('postgres:16');
    expect(calls.log).toEqual([
      ['image', 'postgres:16'],
      ['environment', spec.environment],
      ['command', spec.command],
      ['ports', [5432]],
      // The official image logs "ready" once for its init-time server and once for the real one.
      ['wait', { message: '/database system is ready to accept connections/', times: 2 }],
      ['start', null],
    ]);
    await server.stop();
    expect(calls.stopped).toBe(1);
  });

  it('is not touched for a server of your own', async () => {
    const server = await startTestServer({ kind: 'external', url: 'postgres://x@h/db' });
    expect(server.url).toBe('postgres://x@h/db');
    await server.stop();
    expect(calls.log).toEqual([]);
  });
});
