/**
 * A move plan of the FK group on a fresh pair, with two ways to run it: one stage file at a time with psql on its
 * side, or the runner (`shadowpack run`), so an interleaving can be tried under both executors.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { main } from '../../src/cli/main.js';
import { MOVE_STAGES } from '../../src/compile/move/stages.js';
import type { MoveOptions } from '../../src/compile/move/context.js';
import { planMove, writeMovePlan } from '../../src/planning/plan-move.js';
import { withClient } from './db.js';
import { createMoveFixture, type MoveFixtureSize } from './move-fixture.js';
import { freshMovePair, type MovePair, type MoveServers } from './move-servers.js';
import type { Exit } from './rebuild.js';

export const MOVE_GROUP_TABLES = [
  { schema: 'app', table: 'customers' },
  { schema: 'app', table: 'orders' },
  { schema: 'app', table: 'order_items' },
];

export interface StagedMove {
  readonly pair: MovePair;
  readonly dir: string;
  /** `--plan DIR --url SOURCE --target-url TARGET`, for `shadowpack run`, `status`, `verify`. */
  readonly args: readonly string[];
  /** Runs one stage file with psql on its side; resolves to psql's stderr, or rejects with it. */
  psql(file: string, before?: string): Promise<string>;
  /** Runs a stage file with psql and resolves to 'ok' or to psql's stderr when it failed. */
  outcome(file: string, before?: string): Promise<string>;
  /** Runs the CLI in this process (`run`, `status`, …) with the plan's arguments after `command`. */
  cli(command: string, ...extra: string[]): Promise<Exit>;
  src(sql: string): Promise<pg.QueryResultRow[]>;
  tgt(sql: string): Promise<pg.QueryResultRow[]>;
}

/**
 * A fresh pair named after `name` with the group (`size`), prepared by `prepare` on the source, planned with
 * `options` (and what `prepare` returns) into `root/name`. The source password reaches psql and the runner
 * through SHADOWPACK_FDW_PASSWORD of their environment.
 */
export async function newStagedMove(
  servers: MoveServers,
  root: string,
  name: string,
  options: Partial<MoveOptions> = {},
  prepare?: (c: pg.Client) => Promise<Partial<MoveOptions> | void>,
  size: MoveFixtureSize = { customers: 60, orders: 400 },
): Promise<StagedMove> {
  const pair = await freshMovePair(servers, name);
  await withClient(pair.source.url, async (c) => {
    await createMoveFixture(c, size);
    if (prepare) options = { ...options, ...(await prepare(c)) };
  });
  await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
  const s = new pg.Client({ connectionString: pair.source.url });
  const t = new pg.Client({ connectionString: pair.target.url });
  await s.connect();
  await t.connect();
  const moved = await planMove(s, t, { tables: MOVE_GROUP_TABLES, options }).finally(async () => {
    await s.end();
    await t.end();
  });
  const dir = join(root, name);
  writeMovePlan(dir, moved, true);
  const password = decodeURIComponent(new URL(pair.source.url).password);
  const psql = (file: string, before?: string) =>
    new Promise<string>((resolve, reject) => {
      const side = MOVE_STAGES.find((r) => r.file === file)!.side;
      const url = side === 'source' ? pair.source.url : pair.target.url;
      const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url];
      if (before !== undefined) args.push('-c', before);
      execFile(
        'psql',
        [...args, '-f', file],
        { cwd: dir, env: { ...process.env, SHADOWPACK_FDW_PASSWORD: password } },
        (err, _out, stderr) => (err ? reject(new Error(stderr)) : resolve(stderr)),
      );
    });
  const args = ['--plan', dir, '--url', pair.source.url, '--target-url', pair.target.url];
  const cli = async (command: string, ...extra: string[]): Promise<Exit> => {
    const saved = process.env.SHADOWPACK_FDW_PASSWORD;
    process.env.SHADOWPACK_FDW_PASSWORD = password;
    let stdout = '';
    let stderr = '';
    try {
      const code = await main([command, ...args, ...extra], {
        out: (line) => (stdout += line + '\n'),
        err: (text) => (stderr += text),
      });
      return { code, signal: null, stdout, stderr };
    } finally {
      if (saved === undefined) delete process.env.SHADOWPACK_FDW_PASSWORD;
      else process.env.SHADOWPACK_FDW_PASSWORD = saved;
    }
  };
  const q = (url: string) => (sql: string) => withClient(url, async (c) => (await c.query(sql)).rows);
  return {
    pair,
    dir,
    args,
    psql,
    outcome: (file, before) =>
      psql(file, before).then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    cli,
    src: q(pair.source.url),
    tgt: q(pair.target.url),
  };
}

/** Polls `sql` (one boolean column `ok`) on `url` until it is true. */
export async function waitUntil(url: string, sql: string, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const [r] = await withClient(url, async (c) => (await c.query<{ ok: boolean }>(sql)).rows);
    if (r?.ok) return;
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

/** A boolean `ok` query: some lock matching `lockFilter` (a pg_locks condition) is waited for. */
export const waitingFor = (lockFilter: string): string =>
  `SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted AND ${lockFilter}) AS ok`;
