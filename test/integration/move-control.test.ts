/**
 * `shadowpack control` on a move plan (issue 15), source 14 -> target 17, with the runner: a paused backfill waits
 * between batches (and status says so) until --resume; a plan made with --hold-cutover keeps the catch-up going
 * in rounds until --release-cutover, stops with nothing marked when the release does not come in time, and fences
 * and cuts over once released.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMovePlanDir } from '../../src/run/move-plan.js';
import { readMoveSide } from '../../src/run/move-state.js';
import { main } from '../../src/cli/main.js';
import { withClient } from '../helpers/db.js';
import { createMoveFixture } from '../helpers/move-fixture.js';
import {
  freshMovePair,
  MOVE_SOURCE_MISSING,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';
import type { Exit } from '../helpers/rebuild.js';

let servers: MoveServers;
let pair: MovePair;
let root: string;
const FDW_PASSWORD_ENV = 'SHADOWPACK_FDW_PASSWORD';
let savedPassword: string | undefined;

beforeAll(async () => {
  servers = await startMoveServers();
  pair = await freshMovePair(servers, 'move_control');
  await withClient(pair.source.url, (c) => createMoveFixture(c, { customers: 40, orders: 300 }));
  await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
  root = mkdtempSync(join(tmpdir(), 'sp-move-control-'));
  savedPassword = process.env[FDW_PASSWORD_ENV];
  process.env[FDW_PASSWORD_ENV] = decodeURIComponent(new URL(pair.source.url).password);
}, 120_000);

afterAll(async () => {
  if (savedPassword === undefined) delete process.env[FDW_PASSWORD_ENV];
  else process.env[FDW_PASSWORD_ENV] = savedPassword;
  if (root) rmSync(root, { recursive: true, force: true });
  await pair?.drop();
  await servers?.stop();
});

async function run(args: string[]): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (line) => (stdout += line + '\n'), err: (text) => (stderr += text) });
  return { code, signal: null, stdout, stderr };
}

/** Polls `sql` on `url` every 50 ms until it returns a row (at most 20 s). */
async function until(url: string, sql: string): Promise<void> {
  await withClient(url, async (c) => {
    const end = Date.now() + 20_000;
    while ((await c.query(sql)).rows.length === 0) {
      if (Date.now() > end) throw new Error(`timed out waiting for: ${sql}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
}

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('shadowpack control on a move plan', () => {
  it('pauses and resumes the backfill; holds the cut-over (rounds going on) until --release-cutover', async () => {
    const dir = join(root, 'held');
    const tables = ['--table', 'app.customers', '--table', 'app.orders', '--table', 'app.order_items'];
    const planned = await run([
      'plan',
      '--url',
      pair.source.url,
      '--target-url',
      pair.target.url,
      ...tables,
      '--out',
      dir,
      '--batch-pages',
      '1',
      '--hold-cutover',
      '--hold-wait-seconds',
      '2',
    ]);
    expect(planned.code, planned.stderr).toBe(0);
    const runId = readMovePlanDir(dir).manifest.runId;
    const control = `shadowpack.move_${runId}_control`;
    const args = ['--plan', dir, '--url', pair.source.url, '--target-url', pair.target.url];

    // A plan made without --hold-cutover has nothing to release (refused before connecting).
    const plain = join(root, 'plain');
    expect(
      (await run(['plan', '--url', pair.source.url, '--target-url', pair.target.url, ...tables, '--out', plain])).code,
    ).toBe(0);
    const nothing = await run(['control', '--plan', plain, '--target-url', pair.target.url, '--release-cutover']);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(
      /BAD_ARGUMENT: --release-cutover: \S+ was planned without --hold-cutover, so its catch-up never waits for a release/,
    );

    const early = await run(['control', ...args, '--pause']);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(
      /RUN_STATE: no run of this move is set up on the target .* run 02-setup\.target\.sql first/,
    );
    const swap = await run(['control', ...args, '--release-swap']);
    expect(swap.code).toBe(2);
    expect(swap.stderr).toContain(
      'is a move plan, which has no swap; its hold before the fence is released with --release-cutover',
    );

    expect((await run(['run', ...args, '--until', 'setup'])).code).toBe(0);
    const paused = await run(['control', ...args, '--pause']);
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toBe(
      'app.customers, app.order_items, app.orders: paused, batch 1 pages, no rows/s ceiling, cut-over held\n',
    );

    // Paused: one batch, then the backfill waits between batches, holding nothing.
    const first = run(['run', ...args]);
    await until(pair.target.url, `SELECT FROM ${control} WHERE starts_with(waiting_for, 'paused')`);
    await new Promise((r) => setTimeout(r, 500));
    const position = async () =>
      withClient(
        pair.target.url,
        async (c) =>
          (await c.query<{ p: string }>(`SELECT sum(next_page) AS p FROM shadowpack.move_${runId}_backfill`)).rows[0]!
            .p,
      );
    expect(await position()).toBe('1');
    const status = await run(['status', ...args]);
    expect(status.stdout).toMatch(
      /^ {2}control: paused, batch 1 pages, no rows\/s ceiling, cut-over held; waiting for: paused by the operator \(resume: shadowpack control --resume\) \(since .*\)$/m,
    );
    expect(await position()).toBe('1');

    const resumed = await run(['control', ...args, '--resume', '--batch-pages', '1000', '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout).control).toMatchObject({ paused: false, batchPages: 1000, waitingFor: null });

    // Held: the catch-up waits for the release at most 2 s, then stops with the source not marked ready.
    const timedOut = await first;
    expect(timedOut.code).toBe(2);
    expect(timedOut.stderr).toMatch(
      /the cut-over of app\.customers, app\.order_items, app\.orders is held, waiting for release \(waited 2 s\).*hint: Release it with "shadowpack control --plan DIR --target-url … --release-cutover"/,
    );
    const side = async (url: string) => (await withClient(url, (c) => readMoveSide(c, runId)))?.stage;
    expect(await side(pair.source.url)).toBe('setup');

    // Run again: it waits again, and rounds go on meanwhile (a source write reaches the target while held).
    const second = run(['run', ...args]);
    await until(pair.target.url, `SELECT FROM ${control} WHERE starts_with(waiting_for, 'release of the cut-over')`);
    await withClient(pair.source.url, (c) => c.query(`UPDATE app.customers SET name = 'while held' WHERE id = 2`));
    await until(pair.target.url, `SELECT FROM app.customers WHERE id = 2 AND name = 'while held'`);
    expect(await side(pair.source.url)).toBe('setup');
    const released = await run(['control', ...args, '--release-cutover']);
    expect(released.code, released.stderr).toBe(0);
    expect(released.stdout).toBe(
      'app.customers, app.order_items, app.orders: running, batch 1000 pages, no rows/s ceiling, cut-over released\n',
    );
    const done = await second;
    expect(done.code, done.stderr).toBe(0);
    expect([await side(pair.source.url), await side(pair.target.url)]).toEqual(['cutover', 'cutover']);
  }, 120_000);
});
