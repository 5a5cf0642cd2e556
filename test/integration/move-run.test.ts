/**
 * A whole move (issue 15) by the runner: source PostgreSQL 14 -> the suite's 17, the FK group of
 * test/helpers/move-fixture.ts, four twin writers on the source from the backfill until the fence (where each
 * expects the fence message), a transaction open across the catch-up and a prepared one committed after it;
 * the runner SIGKILLed in the backfill, in a catch-up round, in the fence's lock wait, inside the cut-over's target
 * transaction and in the source's cleanup, and resumed each time. After the cut-over every target table equals its
 * source twin row for row; cleanup leaves no tool object on the target.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planMove, writeMovePlan } from '../../src/planning/plan-move.js';
import { main } from '../../src/cli/main.js';
import { readMoveSide } from '../../src/run/move-state.js';
import { withClient } from '../helpers/db.js';
import { compareMoveWithTwins, createMoveFixture } from '../helpers/move-fixture.js';
import {
  freshMovePair,
  MOVE_SOURCE_MISSING,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';
import { openSpanning, prepareOne, startMoveWriters } from '../helpers/move-writers.js';
import { cli, ROOT, type Exit } from '../helpers/rebuild.js';

let servers: MoveServers;
let pair: MovePair;
let dir: string;
const FDW_PASSWORD_ENV = 'SHADOWPACK_FDW_PASSWORD';
let savedPassword: string | undefined;

beforeAll(async () => {
  servers = await startMoveServers();
  pair = await freshMovePair(servers, 'move_run');
  await withClient(pair.source.url, (c) => createMoveFixture(c, { customers: 80, orders: 600 }));
  await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
  dir = mkdtempSync(join(tmpdir(), 'sp-move-run-'));
  // The user mapping's password comes from the environment at run time (the in-process runs read process.env).
  savedPassword = process.env[FDW_PASSWORD_ENV];
  process.env[FDW_PASSWORD_ENV] = decodeURIComponent(new URL(pair.source.url).password);
}, 120_000);

afterAll(async () => {
  if (savedPassword === undefined) delete process.env[FDW_PASSWORD_ENV];
  else process.env[FDW_PASSWORD_ENV] = savedPassword;
  if (dir) rmSync(dir, { recursive: true, force: true });
  await pair?.drop();
  await servers?.stop();
});

async function run(args: string[]): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (line) => (stdout += line + '\n'), err: (text) => (stderr += text) });
  return { code, signal: null, stdout, stderr };
}

/** The CLI as its own process, SIGKILLed as soon as `probe` returns a row on `url` (polled every 20 ms). */
function cliKilledWhen(args: string[], url: string, probe: string): Promise<Exit> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let exited = false;
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    void withClient(url, async (c) => {
      while (!exited) {
        if ((await c.query(probe)).rows.length > 0) {
          p.kill('SIGKILL');
          return;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    p.on('close', (code, signal) => {
      exited = true;
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Runs the CLI while a session on `url` holds what `lock` takes, SIGKILLs it as soon as one of its sessions waits
 * behind that session, checks `whileHeld` with the lock still held, then lets go.
 */
async function killedBehind(url: string, lock: string, args: string[], whileHeld: () => Promise<void>): Promise<Exit> {
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(lock);
    const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const killed = await cliKilledWhen(
      args,
      url,
      `SELECT 1 FROM pg_stat_activity WHERE ${holderPid} = ANY (pg_blocking_pids(pid))`,
    );
    // The killed runner's session still waits for the lock: granted it, it would go on with the statements it
    // was sent (and could commit them) before noticing its client is gone. End it first, so the stage is the
    // one the kill interrupted, deterministically.
    await holder.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${holderPid} = ANY (pg_blocking_pids(pid))`,
    );
    while (
      (await holder.query(`SELECT 1 FROM pg_stat_activity WHERE ${holderPid} = ANY (pg_blocking_pids(pid))`)).rows
        .length > 0
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await whileHeld();
    return killed;
  } finally {
    await holder.end();
  }
}

async function stages(): Promise<[string | null, string | null]> {
  const runId = (await import('../../src/run/move-plan.js')).readMovePlanDir(dir).manifest.runId;
  const s = await withClient(pair.source.url, (c) => readMoveSide(c, runId));
  const t = await withClient(pair.target.url, (c) => readMoveSide(c, runId));
  return [s?.stage ?? null, t?.stage ?? null];
}

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)(
  'shadowpack run on a move plan, source 14 -> target 17, under twin writers',
  () => {
    it('moves the group; a SIGKILLed run resumes; target = twins after the cut-over; cleanup leaves nothing on the target', async () => {
      const s = new pg.Client({ connectionString: pair.source.url });
      const t = new pg.Client({ connectionString: pair.target.url });
      await s.connect();
      await t.connect();
      try {
        const plan = await planMove(s, t, {
          tables: [
            { schema: 'app', table: 'customers' },
            { schema: 'app', table: 'orders' },
            { schema: 'app', table: 'order_items' },
          ],
          options: { batchPages: 2 },
        });
        writeMovePlan(dir, plan, true);
      } finally {
        await s.end();
        await t.end();
      }
      const args = ['--plan', dir, '--url', pair.source.url, '--target-url', pair.target.url];
      const writers = await startMoveWriters(pair.source.url, { count: 4, seed: 9, pauseMs: 5, stopAtFence: true });
      try {
        // Killed a moment into the backfill (the runner is a separate process here), then resumed.
        const killed = await cli(['run', ...args, '--until', 'build'], {
          killWhen: { stderr: /» backfill\.target/, delayMs: 150 },
        });
        expect(killed.signal, killed.stderr).toBe('SIGKILL');
        const [src0, tgt0] = await stages();
        expect(src0).toBe('setup');
        expect(['setup', 'backfill', 'build']).toContain(tgt0);
        const build = await run(['run', ...args, '--until', 'build']);
        expect(build.code, build.stderr + build.stdout).toBe(0);
        expect(await stages()).toEqual(['setup', 'build']);

        // Open across the catch-up rounds (written after setup, so setup did not wait for it), committed before the fence.
        const spanning = await openSpanning(pair.source.url);
        const prepared = await prepareOne(pair.source.url, 'move_run_gid');
        // The catch-up killed inside a round: a session on the target holds EXCLUSIVE on app.customers, so the
        // round's apply waits there; the runner is SIGKILLed as soon as it is seen waiting behind that session.
        const killedInCatchup = await killedBehind(
          pair.target.url,
          'LOCK TABLE app.customers IN EXCLUSIVE MODE',
          ['run', ...args, '--until', 'catchup'],
          async () => {
            expect((await stages())[0]).toBe('setup');
          },
        );
        expect(killedInCatchup.signal, killedInCatchup.stderr).toBe('SIGKILL');
        expect(killedInCatchup.stderr).toMatch(/» catchup\.target/);
        const catchup = await run(['run', ...args, '--until', 'catchup']);
        expect(catchup.code, catchup.stderr + catchup.stdout).toBe(0);
        expect(await stages()).toEqual(['ready-for-fence', 'catchup']);
        await spanning.commit();
        await prepared.commit();

        const status = await run(['status', ...args]);
        expect(status.stdout).toContain(
          'source: "ready-for-fence", target: "catchup"; next: fence on the source (06-fence.source.sql)',
        );

        // The fence killed while it waits for its lock: a session on the source holds ROW EXCLUSIVE on
        // app.orders, which the fence's SHARE ROW EXCLUSIVE waits behind; no fence may be left half made.
        const killedInFence = await killedBehind(
          pair.source.url,
          'LOCK TABLE app.orders IN ROW EXCLUSIVE MODE',
          ['run', ...args, '--until', 'fence'],
          async () => {
            expect(await stages()).toEqual(['ready-for-fence', 'catchup']);
          },
        );
        expect(killedInFence.signal, killedInFence.stderr).toBe('SIGKILL');
        expect(killedInFence.stderr).toMatch(/» fence\.source/);

        // The cut-over killed inside its target transaction: a session on the target holds ROW EXCLUSIVE on
        // app.customers, so the cut-over's ALTER TABLE waits there (after the source recorded
        // 'cutover-started'); the runner is SIGKILLed as soon as it is seen waiting behind that session.
        const killedInCutover = await killedBehind(
          pair.target.url,
          'LOCK TABLE app.customers IN ROW EXCLUSIVE MODE',
          ['run', ...args],
          async () => {
            expect(await stages()).toEqual(['cutover-started', 'catchup']);
          },
        );
        expect(killedInCutover.signal, killedInCutover.stderr).toBe('SIGKILL');
        expect(killedInCutover.stderr).toMatch(/» fence\.source[\s\S]*» cutover\.target/);
        expect(await stages()).toEqual(['cutover-started', 'catchup']);

        const cutover = await run(['run', ...args]);
        expect(cutover.code, cutover.stderr + cutover.stdout).toBe(0);
        expect(cutover.stderr).not.toMatch(/» fence/);
        expect(cutover.stderr).toMatch(/» cutover\.target/);
        expect(await stages()).toEqual(['cutover', 'cutover']);
      } finally {
        // Every writer stops at its first write after the fence (or now, if the run failed before it).
        setTimeout(() => void writers.stop(), 20_000).unref();
      }
      const stats = await writers.fencedAll;
      expect(stats.errors, stats.lastError ?? '').toBe(0);
      expect(stats.fenced).toBe(4);
      expect(stats.commits).toBeGreaterThan(10);

      const same = await compareMoveWithTwins(pair.source.url, pair.target.url);
      expect(same.equal, JSON.stringify(same)).toBe(true);

      // The source's cleanup killed while it waits to drop a tool table a session on the source reads, after the
      // target's cleanup: one side without a run here is the end of a move, not a half-made setup.
      const toolTable = await withClient(
        pair.source.url,
        async (c) =>
          (
            await c.query<{ t: string }>(
              `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname LIKE 'shadowpack%' ORDER BY 1 LIMIT 1`,
            )
          ).rows[0]!.t,
      );
      const killedInCleanup = await killedBehind(
        pair.source.url,
        `LOCK TABLE ${toolTable} IN ACCESS SHARE MODE`,
        ['run', ...args, '--until', 'cleanup'],
        async () => {
          expect((await stages())[1]).toBeNull();
        },
      );
      expect(killedInCleanup.signal, killedInCleanup.stderr).toBe('SIGKILL');
      expect(killedInCleanup.stderr).toMatch(/» cleanup\.target[\s\S]*» cleanup\.source/);
      const cleanup = await run(['run', ...args, '--until', 'cleanup']);
      expect(cleanup.code, cleanup.stderr + cleanup.stdout).toBe(0);
      expect(cleanup.stdout).toContain('moved; cleaned up on both sides');
      expect(await stages()).toEqual([null, null]);
      const left = await withClient(
        pair.target.url,
        async (c) =>
          (
            await c.query<{ n: string }>(
              `SELECT (SELECT count(*) FROM pg_foreign_server) + (SELECT count(*) FROM pg_user_mapping) + (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'shadowpack%') AS n`,
            )
          ).rows[0]!.n,
      );
      expect(left).toBe('0');

      // Both sides empty again is not a move to start: the source keeps this move's fence.
      const again = await run(['run', ...args]);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain(
        "this move is done: neither side has a run left and the source's tables carry its fence",
      );
      expect(again.stderr).not.toContain('preflight');
      expect((await run(['status', ...args])).stdout).toContain(
        'source: no run, target: no run; next: nothing (the move is done: the source keeps its fence)',
      );
    });
  },
);
