/**
 * A move (issue 15) through immediate restarts of either server (`pg_ctl stop -m immediate`, then crash
 * recovery), on a source 14 and a target 17 of its own (the suite's servers are shared by other files; the majors
 * follow SHADOWPACK_MOVE_SOURCE_MAJOR and SHADOWPACK_TEST_PG_MAJOR, as the matrix pairs set them). Two moves
 * side by side, hit by the same restarts: one is resumed to the end under twin writers (target = twins row for
 * row), the other aborted (the source's catalog as before, no tool object on either side, no server or user
 * mapping left). Each restart hits a stage at a deterministic point: a session on the source holds ACCESS
 * EXCLUSIVE on app.orders, and the restart comes once the move's remote session (through postgres_fdw) waits
 * behind it: in the backfill, after the customers' batches committed; in a catch-up round, after the round
 * applied the customers' changes in its open target transaction.
 *
 * Default run: the source restarted mid-backfill and the target mid-round. SHADOWPACK_SOAK=1 adds the other two
 * (target mid-backfill, source mid-round) on two more moves.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { restartImmediate, startEmbeddedPostgres, type EmbeddedServer } from '../../src/dev/embedded-server.js';
import { planMove, writeMovePlan } from '../../src/planning/plan-move.js';
import { readMovePlanDir } from '../../src/run/move-plan.js';
import { readMoveSide } from '../../src/run/move-state.js';
import { describeTable } from '../helpers/catalog-describe.js';
import { withClient } from '../helpers/db.js';
import { compareMoveWithTwins, createMoveFixture } from '../helpers/move-fixture.js';
import {
  freshMovePair,
  MOVE_SOURCE_MISSING,
  SOURCE_MAJOR,
  TARGET_MAJOR,
  type MovePair,
} from '../helpers/move-servers.js';
import { startMoveWriters, type MoveWriters } from '../helpers/move-writers.js';
import type { Exit } from '../helpers/rebuild.js';

const SOAK = process.env.SHADOWPACK_SOAK === '1';
const FDW_PASSWORD_ENV = 'SHADOWPACK_FDW_PASSWORD';
const GROUP = [
  { schema: 'app', table: 'customers' },
  { schema: 'app', table: 'orders' },
  { schema: 'app', table: 'order_items' },
];
/** Everything of the tool a side could keep (the FDW server and user mapping, with any password, too). */
const TOOL_OBJECTS = `SELECT 'ns ' || nspname AS o FROM pg_namespace WHERE nspname LIKE 'shadowpack%'
  UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typnamespace = 'app'::regnamespace AND typtype IN ('e', 'c') AND typrelid = 0
  UNION ALL SELECT 'rel ' || relname FROM pg_class WHERE relnamespace = 'app'::regnamespace
  UNION ALL SELECT 'server ' || srvname FROM pg_foreign_server UNION ALL SELECT 'mapping ' || umid FROM pg_user_mappings
  UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`;

let source: EmbeddedServer | undefined;
let target: EmbeddedServer | undefined;
let root: string;
let savedPassword: string | undefined;
const pairs: MovePair[] = [];

beforeAll(async () => {
  if (MOVE_SOURCE_MISSING !== undefined) return;
  [source, target] = await Promise.all([
    startEmbeddedPostgres({
      major: SOURCE_MAJOR,
      settings: { max_prepared_transactions: '10', shared_buffers: '32MB', max_connections: '60' },
    }),
    startEmbeddedPostgres({ major: TARGET_MAJOR, settings: { shared_buffers: '32MB', max_connections: '60' } }),
  ]);
  root = mkdtempSync(join(tmpdir(), 'sp-move-restart-'));
  savedPassword = process.env[FDW_PASSWORD_ENV];
  process.env[FDW_PASSWORD_ENV] = 'postgres';
}, 120_000);

afterAll(async () => {
  if (savedPassword === undefined) delete process.env[FDW_PASSWORD_ENV];
  else process.env[FDW_PASSWORD_ENV] = savedPassword;
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop().catch(() => undefined);
  await Promise.all([source?.stop(), target?.stop()]);
});

async function run(args: string[]): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (line) => (stdout += line + '\n'), err: (text) => (stderr += text) });
  return { code, signal: null, stdout, stderr };
}

interface Move {
  readonly pair: MovePair;
  readonly dir: string;
  readonly args: string[];
  stages(): Promise<[string | null, string | null]>;
}

async function newMove(name: string): Promise<Move> {
  const pair = await freshMovePair(
    { sourceAdminUrl: source!.url, targetAdminUrl: target!.url, stop: async () => {} },
    name,
  );
  pairs.push(pair);
  await withClient(pair.source.url, (c) => createMoveFixture(c, { customers: 40, orders: 200 }));
  await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
  const s = new pg.Client({ connectionString: pair.source.url });
  const t = new pg.Client({ connectionString: pair.target.url });
  await s.connect();
  await t.connect();
  const plan = await planMove(s, t, { tables: GROUP, options: { batchPages: 2 } }).finally(async () => {
    await s.end();
    await t.end();
  });
  const dir = join(root, name);
  writeMovePlan(dir, plan, true);
  const runId = readMovePlanDir(dir).manifest.runId;
  return {
    pair,
    dir,
    args: ['--plan', dir, '--url', pair.source.url, '--target-url', pair.target.url],
    async stages() {
      const sd = await withClient(pair.source.url, (c) => readMoveSide(c, runId));
      const td = await withClient(pair.target.url, (c) => readMoveSide(c, runId));
      return [sd?.stage ?? null, td?.stage ?? null];
    },
  };
}

const toolObjects = (url: string) =>
  withClient(url, async (c) => (await c.query<{ o: string }>(TOOL_OBJECTS)).rows.map((r) => r.o));
const describeSide = (url: string) =>
  withClient(url, async (c) => ({
    tables: await Promise.all(GROUP.map((g) => describeTable(c, g.schema, g.table))),
    tool: await toolObjects(url),
  }));

/**
 * Runs `until` on every move at once while a session on each source holds ACCESS EXCLUSIVE on app.orders;
 * once each move's remote session waits behind it, restarts `server` (immediate); returns each run's exit.
 */
async function restartedWhileWaiting(moves: Move[], server: EmbeddedServer, until: string): Promise<Exit[]> {
  const holders = await Promise.all(
    moves.map(async (m) => {
      const h = new pg.Client({ connectionString: m.pair.source.url });
      h.on('error', () => undefined);
      await h.connect();
      await h.query('BEGIN');
      await h.query('LOCK TABLE app.orders IN ACCESS EXCLUSIVE MODE');
      const pid = (await h.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      return { h, pid };
    }),
  );
  try {
    const runs = moves.map((m) => run(['run', ...m.args, '--until', until]));
    for (const [i, m] of moves.entries()) {
      const end = Date.now() + 30_000;
      for (;;) {
        const [w] = await withClient(
          m.pair.source.url,
          async (c) =>
            (
              await c.query<{ ok: boolean }>(
                `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE application_name LIKE 'shadowpack:%' AND $1 = ANY (pg_blocking_pids(pid))) AS ok`,
                [holders[i]!.pid],
              )
            ).rows,
        );
        if (w!.ok) break;
        if (Date.now() > end) throw new Error(`the ${until} of ${m.dir} never waited behind the lock on app.orders`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await restartImmediate(server);
    return await Promise.all(runs);
  } finally {
    for (const { h } of holders) {
      await h.query('ROLLBACK').catch(() => undefined);
      await h.end().catch(() => undefined);
    }
  }
}

/** A prepared transaction on the source (customers only, mirrored in the twin): it survives a restart. */
async function prepareCustomer(url: string, gid: string): Promise<void> {
  await withClient(url, (c) =>
    c.query(`BEGIN;
      WITH n AS (INSERT INTO app.customers (name, email) VALUES ('prepared across a restart', '${gid}@p.example.com') RETURNING *)
      INSERT INTO twin.customers SELECT id, referrer_id, name, email, mood, address, ref, created_at FROM n;
      PREPARE TRANSACTION '${gid}'`),
  );
}

type Side = 'source' | 'target';

/** What the runner says when `side` went away under a target stage: one line naming the server that restarted. */
const lostConnection = (side: Side): RegExp =>
  side === 'source'
    ? /CONNECTION_FAILED: the target lost its connection to the source during 0\d-\w+\.target\.sql \([^\n]*\); the stage is safe to resume: run the same command again once the source is back\n/
    : /CONNECTION_FAILED: lost the connection to the target during 0\d-\w+\.target\.sql \([^\n]*\); the stage is safe to resume/;

/**
 * Two moves, `keep` and `drop`: both restarted in the backfill (restart of `backfill`) and in a catch-up round
 * (restart of `round`); then `keep` goes to the end under twin writers and `drop` is aborted.
 */
async function scenario(name: string, backfill: Side, round: Side): Promise<void> {
  const [keep, drop] = await Promise.all([newMove(`${name}_keep`), newMove(`${name}_drop`)]);
  const before = await describeSide(drop.pair.source.url);
  const targetBefore = await toolObjects(drop.pair.target.url);
  for (const setup of await Promise.all([keep, drop].map((m) => run(['run', ...m.args, '--until', 'setup']))))
    expect(setup.code, setup.stderr).toBe(0);
  const server = (side: Side) => (side === 'source' ? source! : target!);
  let writers: MoveWriters | undefined;
  const startWriters = async () => {
    writers = await startMoveWriters(keep.pair.source.url, { count: 2, seed: 5, pauseMs: 5, stopAtFence: true });
  };
  // A source restart ends the writers' sessions too: they stop before it and start again after it.
  const stopWriters = async () => {
    const stats = await writers?.stop();
    expect(stats?.errors ?? 0, stats?.lastError ?? '').toBe(0);
    writers = undefined;
  };
  await startWriters();
  await prepareCustomer(keep.pair.source.url, `${name}_p1`);

  if (backfill === 'source') await stopWriters();
  const inBackfill = await restartedWhileWaiting([keep, drop], server(backfill), 'build');
  for (const e of inBackfill) {
    expect(e.code, e.stderr + e.stdout).toBe(2);
    expect(e.stderr).toMatch(/» backfill\.target/);
    expect(e.stderr).toMatch(lostConnection(backfill));
  }
  for (const m of [keep, drop]) expect(await m.stages()).toEqual(['setup', 'setup']);
  if (writers === undefined) await startWriters();
  for (const build of await Promise.all([keep, drop].map((m) => run(['run', ...m.args, '--until', 'build']))))
    expect(build.code, build.stderr + build.stdout).toBe(0);
  for (const m of [keep, drop]) expect(await m.stages()).toEqual(['setup', 'build']);

  if (round === 'source') await stopWriters();
  const inRound = await restartedWhileWaiting([keep, drop], server(round), 'catchup');
  for (const e of inRound) {
    expect(e.code, e.stderr + e.stdout).toBe(2);
    expect(e.stderr).toMatch(/» catchup\.target/);
    expect(e.stderr).toMatch(lostConnection(round));
  }
  for (const m of [keep, drop]) expect(await m.stages()).toEqual(['setup', 'build']);
  if (writers === undefined) await startWriters();
  await withClient(keep.pair.source.url, (c) => c.query(`COMMIT PREPARED '${name}_p1'`));

  // keep: to the end; every writer stops at the fence.
  const moved = await run(['run', ...keep.args]);
  expect(moved.code, moved.stderr + moved.stdout).toBe(0);
  expect(await keep.stages()).toEqual(['cutover', 'cutover']);
  const stats = await writers!.fencedAll;
  expect(stats.errors, stats.lastError ?? '').toBe(0);
  expect(stats.fenced).toBe(2);
  const same = await compareMoveWithTwins(keep.pair.source.url, keep.pair.target.url);
  expect(same.equal, JSON.stringify(same)).toBe(true);
  const cleanup = await run(['run', ...keep.args, '--until', 'cleanup']);
  expect(cleanup.code, cleanup.stderr + cleanup.stdout).toBe(0);
  expect(
    (await toolObjects(keep.pair.target.url)).filter((o) => !o.startsWith('rel ') && !o.startsWith('type ')),
  ).toEqual([]);

  // drop: aborted; the source as it was, nothing of the move anywhere.
  const aborted = await run(['run', ...drop.args, '--stage', 'abort']);
  expect(aborted.code, aborted.stderr + aborted.stdout).toBe(0);
  expect(await drop.stages()).toEqual([null, null]);
  expect(await describeSide(drop.pair.source.url)).toEqual(before);
  expect(await toolObjects(drop.pair.target.url)).toEqual(targetBefore);
}

/**
 * One move fenced under twin writers (each stops at the fence), then its cut-over hit by an immediate restart of
 * the target (its transaction lost after the source said cutover-started) and, run again, of the source (the
 * target's remote session gone mid-round); run a third time it goes through: target = twins, sequences ahead.
 */
async function cutoverScenario(name: string): Promise<void> {
  const m = await newMove(name);
  const writers = await startMoveWriters(m.pair.source.url, { count: 2, seed: 9, pauseMs: 5, stopAtFence: true });
  const caught = await run(['run', ...m.args, '--until', 'catchup']);
  expect(caught.code, caught.stderr + caught.stdout).toBe(0);
  const fenced = await run(['run', ...m.args, '--until', 'fence']);
  expect(fenced.code, fenced.stderr + fenced.stdout).toBe(0);
  const stats = await writers.fencedAll;
  expect(stats.errors, stats.lastError ?? '').toBe(0);
  for (const side of ['target', 'source'] as const) {
    const [hit] = await restartedWhileWaiting([m], side === 'source' ? source! : target!, 'cutover');
    expect(hit!.code, hit!.stderr + hit!.stdout).toBe(2);
    expect(hit!.stderr).toMatch(/» cutover\.target/);
    expect(hit!.stderr).toMatch(
      side === 'source'
        ? /CONNECTION_FAILED: the target lost its connection to the source during 07-cutover\.target\.sql/
        : /CONNECTION_FAILED: lost the connection to the target during 07-cutover\.target\.sql/,
    );
    expect(await m.stages()).toEqual(['cutover-started', 'catchup']);
  }
  const cut = await run(['run', ...m.args]);
  expect(cut.code, cut.stderr + cut.stdout).toBe(0);
  expect(await m.stages()).toEqual(['cutover', 'cutover']);
  const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
  expect(same.equal, JSON.stringify(same)).toBe(true);
  const ahead = await withClient(
    m.pair.target.url,
    async (c) =>
      (
        await c.query<{ ok: boolean }>(
          `SELECT nextval(pg_get_serial_sequence('app.orders', 'id')) > (SELECT max(id) FROM app.orders)
            AND nextval(pg_get_serial_sequence('app.customers', 'id')) > (SELECT max(id) FROM app.customers) AS ok`,
        )
      ).rows[0]!.ok,
  );
  expect(ahead).toBe(true);
}

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('a move through immediate restarts of either server', () => {
  it('the cut-over hit by an immediate restart of the target, then of the source: run again, it goes through (= twins)', async () => {
    await cutoverScenario('rs_cut');
  }, 180_000);

  it('source restarted mid-backfill, target mid-round: resumed to the end (= twins) and aborted (nothing left)', async () => {
    await scenario('rs_src_tgt', 'source', 'target');
  }, 180_000);

  it.runIf(SOAK)(
    'target restarted mid-backfill, source mid-round: resumed to the end (= twins) and aborted (nothing left)',
    async () => {
      await scenario('rs_tgt_src', 'target', 'source');
    },
    180_000,
  );
});
