/**
 * vitest globalSetup: provides `adminUrl`, a superuser connection URL.
 *
 * - TEST_DATABASE_URL set: that server is used as is.
 * - otherwise one embedded server is started for the whole run (PostgreSQL
 *   major from SHADOWPACK_TEST_PG_MAJOR, default: the bundled 17) and stopped
 *   in teardown.
 */
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/dev/embedded-server.js';
import type { EmbeddedServer } from '../../src/dev/embedded-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
  }
}

let server: EmbeddedServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    project.provide('adminUrl', external);
    return;
  }
  const rawMajor = process.env.SHADOWPACK_TEST_PG_MAJOR;
  const major = rawMajor ? Number.parseInt(rawMajor, 10) : undefined;
  if (rawMajor && !Number.isInteger(major)) {
    throw new Error(`SHADOWPACK_TEST_PG_MAJOR must be a number, got "${rawMajor}"`);
  }
  server = await startEmbeddedPostgres({
    major,
    // Prepared transactions hold locks with no session; the lock steps are tested against them.
    settings: { max_prepared_transactions: '10' },
    log: process.env.SHADOWPACK_TEST_PG_LOG ? (line) => console.error(`[pg] ${line}`) : undefined,
  });
  console.error(`[global-setup] embedded PostgreSQL ${server.version} on port ${server.port} (${server.dataDir})`);
  project.provide('adminUrl', server.url);
}

export async function teardown(): Promise<void> {
  const s = server;
  server = undefined;
  await s?.stop();
}
