/**
 * The move's sessions terminated where the stage files commit on one side and then tell the other (issue 15
 * acceptance: every stage survives a lost session and goes on, or aborts): between the fence and the cut-over, in
 * the target's cleanup, in the abort on either side, and an abort whose word to the source is lost. Each point
 * is reached deterministically: a session holds a lock the stage waits for, and the waiting session (the
 * runner's, or the target's postgres_fdw session on the source) is terminated there. Source 14 -> target 17.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { planMove, writeMovePlan } from '../../src/planning/plan-move.js';
import { readMovePlanDir } from '../../src/run/move-plan.js';
import { readMoveSide } from '../../src/run/move-state.js';
import { describeTable } from '../helpers/catalog-describe.js';
import { withClient } from '../helpers/db.js';
import { compareMoveWithTwins, createMoveFixture } from '../helpers/move-fixture.js';
import {
  freshMovePair,
  MOVE_SOURCE_MISSING,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';
import { startMoveWriters } from '../helpers/move-writers.js';
import type { Exit } from '../helpers/rebuild.js';

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

let servers: MoveServers;
let root: string;
let savedPassword: string | undefined;
const pairs: MovePair[] = [];

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-kills-'));
}, 120_000);

afterAll(async () => {
  if (savedPassword === undefined) delete process.env[FDW_PASSWORD_ENV];
  else process.env[FDW_PASSWORD_ENV] = savedPassword;
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

/** `psql -X -q -v ON_ERROR_STOP=1 -d url -f file` from the plan folder (for its \\ir), as a stage runs by hand. */
function psql(url: string, file: string, cwd: string): Promise<Exit> {
  return new Promise((resolve) => {
    execFile('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file], { cwd }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, signal: null, stdout, stderr }),
    );
  });
}

async function run(args: string[]): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (line) => (stdout += line + '\n'), err: (text) => (stderr += text) });
  return { code, signal: null, stdout, stderr };
}

interface Move {
  readonly pair: MovePair;
  readonly dir: string;
  readonly runId: string;
  readonly args: string[];
  stages(): Promise<[string | null, string | null]>;
  /** Runs the CLI on this move: `run` plus these arguments; expects exit 0 unless told. */
  run(extra: string[], code?: number): Promise<Exit>;
}

async function newMove(name: string): Promise<Move> {
  const pair = await freshMovePair(servers, name);
  pairs.push(pair);
  savedPassword ??= process.env[FDW_PASSWORD_ENV];
  process.env[FDW_PASSWORD_ENV] = decodeURIComponent(new URL(pair.source.url).password);
  await withClient(pair.source.url, (c) => createMoveFixture(c, { customers: 30, orders: 120 }));
  await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
  const s = new pg.Client({ connectionString: pair.source.url });
  const t = new pg.Client({ connectionString: pair.target.url });
  await s.connect();
  await t.connect();
  const plan = await planMove(s, t, { tables: GROUP }).finally(async () => {
    await s.end();
    await t.end();
  });
  const dir = join(root, name);
  writeMovePlan(dir, plan, true);
  const runId = readMovePlanDir(dir).manifest.runId;
  const args = ['--plan', dir, '--url', pair.source.url, '--target-url', pair.target.url];
  return {
    pair,
    dir,
    runId,
    args,
    async stages() {
      const sd = await withClient(pair.source.url, (c) => readMoveSide(c, runId));
      const td = await withClient(pair.target.url, (c) => readMoveSide(c, runId));
      return [sd?.stage ?? null, td?.stage ?? null];
    },
    async run(extra, code = 0) {
      const e = await run(['run', ...args, ...extra]);
      expect(e.code, e.stderr + e.stdout).toBe(code);
      return e;
    },
  };
}

const toolObjects = (url: string) =>
  withClient(url, async (c) => (await c.query<{ o: string }>(TOOL_OBJECTS)).rows.map((r) => r.o));
const describeSource = (url: string) =>
  withClient(url, async (c) => ({
    tables: await Promise.all(GROUP.map((g) => describeTable(c, g.schema, g.table))),
    tool: await toolObjects(url),
  }));

/**
 * Runs `extra` on `m` while a session on `url` holds `lock`; once a session of the move (the runner's, or
 * postgres_fdw's on the source) waits behind it, terminates it, or the move's busy sessions on `elsewhere`
 * when given; then lets go and returns the run's exit.
 */
async function terminatedBehind(
  m: Move,
  url: string,
  lock: string,
  extra: string[],
  elsewhere?: string,
): Promise<Exit> {
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(lock);
    const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    let finished: Exit | undefined;
    const running = run(['run', ...m.args, ...extra]).then((e) => (finished = e));
    const end = Date.now() + 30_000;
    for (;;) {
      if (finished !== undefined)
        throw new Error(`${extra.join(' ')} ended before it waited behind: ${lock}: ${finished.stderr}`);
      // From another session: a transaction sees pg_stat_activity as it was at its first read.
      const r = await withClient(url, (c) =>
        c.query<{ ok: boolean }>(
          `SELECT ${elsewhere === undefined ? 'pg_terminate_backend(pid)' : 'true'} AS ok FROM pg_stat_activity WHERE application_name LIKE 'shadowpack:%' AND $1 = ANY (pg_blocking_pids(pid))`,
          [pid],
        ),
      );
      if (r.rows.some((x) => x.ok)) {
        if (elsewhere !== undefined)
          await withClient(elsewhere, (c) =>
            c.query(
              `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'shadowpack:%' AND state = 'active'`,
            ),
          );
        break;
      }
      if (Date.now() > end) throw new Error(`no session of ${extra.join(' ')} waited behind: ${lock}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    return await running;
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    await holder.end();
  }
}

const stateTable = (m: Move) => `shadowpack.move_${m.runId}`;

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('move sessions terminated between the two sides', () => {
  it('between fence and cut-over, and in the target cleanup: resumed to the end (= twins); in abort on either side: aborted again (source as before)', async () => {
    const [keep, drop] = await Promise.all([newMove('mk_keep'), newMove('mk_drop')]);
    const before = await describeSource(drop.pair.source.url);
    const targetBefore = await toolObjects(drop.pair.target.url);
    const writers = await startMoveWriters(keep.pair.source.url, { count: 2, seed: 3, pauseMs: 5, stopAtFence: true });
    try {
      await Promise.all([keep.run(['--until', 'fence']), drop.run(['--until', 'fence'])]);
    } finally {
      setTimeout(() => void writers.stop(), 20_000).unref();
    }
    const stats = await writers.fencedAll;
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    expect(stats.fenced).toBe(2);

    // Between fence and cut-over: the cut-over's first step (telling the source through the server) waits for
    // the source's state row; its runner session on the target is terminated there.
    const lostCut = await terminatedBehind(
      keep,
      keep.pair.source.url,
      `SELECT FROM ${stateTable(keep)} FOR UPDATE`,
      [],
      keep.pair.target.url,
    );
    expect(lostCut.code, lostCut.stderr).toBe(2);
    expect(lostCut.stderr).toMatch(/CONNECTION_FAILED: lost the connection to the target during 07-cutover/);
    expect(await keep.stages()).toEqual(['fenced', 'catchup']);
    await keep.run([]);
    expect(await keep.stages()).toEqual(['cutover', 'cutover']);
    const same = await compareMoveWithTwins(keep.pair.source.url, keep.pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);

    // The target's cleanup terminated while it waits to drop its state table (the server already dropped in
    // its open transaction): resumed.
    const lostCleanup = await terminatedBehind(
      keep,
      keep.pair.target.url,
      `LOCK TABLE ${stateTable(keep)} IN ACCESS SHARE MODE`,
      ['--until', 'cleanup'],
    );
    expect(lostCleanup.code, lostCleanup.stderr).toBe(2);
    expect(lostCleanup.stderr).toMatch(/lost the connection to the target during 08-cleanup\.target\.sql/);
    expect(await keep.stages()).toEqual(['cutover', 'cutover']);
    await keep.run(['--until', 'cleanup']);
    expect(await keep.stages()).toEqual([null, null]);
    expect((await toolObjects(keep.pair.target.url)).filter((o) => !/^(rel|type|trigger) /.test(o))).toEqual([]);

    // drop: the cut-over began (the source says 'cutover-started') and its target transaction was lost.
    const lostDropCut = await terminatedBehind(
      drop,
      drop.pair.target.url,
      'LOCK TABLE app.customers IN ROW EXCLUSIVE MODE',
      [],
    );
    expect(lostDropCut.code, lostDropCut.stderr).toBe(2);
    expect(await drop.stages()).toEqual(['cutover-started', 'catchup']);
    // 90-abort.target.sql with psql while the source is unreachable (its database takes no connections): it
    // must stop before dropping anything, since only it can tell the source (its abort refuses after
    // 'cutover-started', so the fence would stay for good).
    const sourceDb = `"${drop.pair.source.name}"`;
    await withClient(servers.sourceAdminUrl, (c) => c.query(`ALTER DATABASE ${sourceDb} ALLOW_CONNECTIONS false`));
    const unreachable = await psql(drop.pair.target.url, join(drop.dir, '90-abort.target.sql'), drop.dir).finally(() =>
      withClient(servers.sourceAdminUrl, (c) => c.query(`ALTER DATABASE ${sourceDb} ALLOW_CONNECTIONS true`)),
    );
    expect(unreachable.code, unreachable.stderr).toBe(3);
    expect(unreachable.stderr).toMatch(
      /could not tell the source that the target aborts \(could not connect to server "shadowpack_\w+"\); nothing was dropped\nDETAIL: .*is not currently accepting connections/,
    );
    expect(await drop.stages()).toEqual(['cutover-started', 'aborting']);
    // The abort's word to the source is lost (its postgres_fdw session there terminated): nothing may be dropped
    // on the target then, or no file could ever tell the source, whose abort refuses after 'cutover-started'
    // and whose fence would stay for good.
    const lostTell = await terminatedBehind(drop, drop.pair.source.url, `SELECT FROM ${stateTable(drop)} FOR UPDATE`, [
      '--stage',
      'abort',
    ]);
    expect(lostTell.code, lostTell.stderr).toBe(2);
    expect(lostTell.stderr).toMatch(
      /90-abort\.target\.sql:\d+:\d+ \(on the target\): shadowpack: could not tell the source that the target aborts \(.*\); nothing was dropped/,
    );
    expect(await drop.stages()).toEqual(['cutover-started', 'aborting']);
    // Then the abort on the target terminated while it waits to drop a table (after telling the source), and
    // the abort on the source terminated while it waits for its lock; each time the abort is run again.
    const lostAbortTarget = await terminatedBehind(
      drop,
      drop.pair.target.url,
      'LOCK TABLE app.orders IN ACCESS SHARE MODE',
      ['--stage', 'abort'],
    );
    expect(lostAbortTarget.code, lostAbortTarget.stderr).toBe(2);
    expect(lostAbortTarget.stderr).toMatch(/lost the connection to the target during 90-abort\.target\.sql/);
    expect(await drop.stages()).toEqual(['target-aborted', 'aborting']);
    const lostAbortSource = await terminatedBehind(
      drop,
      drop.pair.source.url,
      'LOCK TABLE app.orders IN ROW EXCLUSIVE MODE',
      ['--stage', 'abort'],
    );
    expect(lostAbortSource.code, lostAbortSource.stderr).toBe(2);
    expect(lostAbortSource.stderr).toMatch(/lost the connection to the source during 90-abort\.source\.sql/);
    expect(await drop.stages()).toEqual(['target-aborted', null]);
    await drop.run(['--stage', 'abort']);
    expect(await drop.stages()).toEqual([null, null]);
    expect(await describeSource(drop.pair.source.url)).toEqual(before);
    expect(await toolObjects(drop.pair.target.url)).toEqual(targetBefore);
  }, 180_000);
});
