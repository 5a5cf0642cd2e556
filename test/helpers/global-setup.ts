/**
 * vitest globalSetup: provides `adminUrl`, a superuser connection URL, for the server chosen in
 * test-server.ts: by default one embedded server for the whole run (PostgreSQL major from
 * SHADOWPACK_TEST_PG_MAJOR, default the bundled 17); TEST_DATABASE_URL, a server of your own as is;
 * TEST_SERVER=container, an official image through testcontainers. Stopped in teardown.
 */
import type { TestProject } from 'vitest/node';
import { chooseTestServer, startTestServer, type TestServer } from './test-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
  }
}

let server: TestServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  server = await startTestServer(chooseTestServer(process.env));
  console.error(`[global-setup] ${server.description}`);
  project.provide('adminUrl', server.url);
}

export async function teardown(): Promise<void> {
  const s = server;
  server = undefined;
  await s?.stop();
}
