/**
 * vitest globalSetup: provides `adminUrl`, a superuser connection URL, for the server chosen in
 * test-server.ts: by default one embedded server for the whole run (PostgreSQL major from
 * SHADOWPACK_TEST_PG_MAJOR, default the bundled 17); TEST_DATABASE_URL, a server of your own as is;
 * TEST_SERVER=container, an official image through testcontainers. Stopped in teardown.
 *
 * Also `moveSource` for the cross-cluster move tests (test/helpers/move-servers.ts): one embedded source
 * server (PostgreSQL 14 by default) for the whole run, started in parallel with the target, and only when the
 * run includes a test/integration/move-*.test.ts file (a unit run does not pay for it).
 */
import type { TestProject } from 'vitest/node';
import { chooseTestServer, startTestServer, type TestServer } from './test-server.js';
import { moveSourceChoice, startMoveSource, type MoveSource } from './move-source.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    moveSource: MoveSource;
  }
}

let stops: Array<() => Promise<void>> = [];

/** Whether this run's files (after the command line's filters) include a move test. */
async function runsMoveTests(project: TestProject): Promise<boolean> {
  // filenamePattern holds the command line's file filters (undefined: every file); not in vitest's typings.
  const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern;
  const { testFiles } = await project.globTestFiles(filters);
  return testFiles.some((f) => /[\\/]integration[\\/]move-[^\\/]*\.test\.ts$/.test(f));
}

export async function setup(project: TestProject): Promise<void> {
  const choice = chooseTestServer(process.env);
  const sourceChoice = moveSourceChoice(choice, process.env, await runsMoveTests(project));
  const [server, source] = await Promise.all([startTestServer(choice), startMoveSource(sourceChoice)]);
  stops = [() => server.stop(), source.stop];
  console.error(`[global-setup] ${server.description}`);
  const p = source.provided;
  if (p.kind === 'url') console.error(`[global-setup] move source: ${p.description}`);
  else if (sourceChoice.kind === 'none' && sourceChoice.reason !== 'this run has no move test')
    console.error(`[global-setup] ${p.reason}`);
  project.provide('adminUrl', server.url);
  project.provide('moveSource', source.provided);
}

export async function teardown(): Promise<void> {
  const s = stops;
  stops = [];
  await Promise.all(s.map((stop) => stop()));
}
