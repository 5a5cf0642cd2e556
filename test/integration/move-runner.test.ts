/**
 * The runner of two-sided move plans (issue 15) on a hand-written plan (test/helpers/move-toy-plan.ts) whose
 * every file refuses to start outside the states the stage machine allows: each stage runs on its side, in
 * order, stops where told, aborts on both sides, and `status` reads both sides (SIGKILL and resume: move-run.test.ts,
 * on a real plan).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../helpers/db.js';
import {
  freshMovePair,
  MOVE_SOURCE_MISSING,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';
import { TOY_RUN_ID, writeToyMovePlan } from '../helpers/move-toy-plan.js';
import { psql, type Exit } from '../helpers/rebuild.js';
import { main } from '../../src/cli/main.js';
import { readMoveSide } from '../../src/run/move-state.js';

let servers: MoveServers;
const pairs: MovePair[] = [];

beforeAll(async () => {
  servers = await startMoveServers();
}, 120_000);

afterAll(async () => {
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

async function toyPair(name: string): Promise<{ pair: MovePair; dir: string; args: string[] }> {
  const pair = await freshMovePair(servers, name);
  pairs.push(pair);
  await withClient(pair.source.url, (c) =>
    c.query(`CREATE SCHEMA app; CREATE TABLE app.items (id integer PRIMARY KEY, v text);
             INSERT INTO app.items SELECT g, 'v' || g FROM generate_series(1, 100) g`),
  );
  const dir = mkdtempSync(join(tmpdir(), 'sp-move-toy-'));
  writeToyMovePlan(dir, pair);
  return { pair, dir, args: ['--plan', dir, '--url', pair.source.url, '--target-url', pair.target.url] };
}

async function stages(pair: MovePair): Promise<[string | null, string | null]> {
  const s = await withClient(pair.source.url, (c) => readMoveSide(c, TOY_RUN_ID));
  const t = await withClient(pair.target.url, (c) => readMoveSide(c, TOY_RUN_ID));
  return [s?.stage ?? null, t?.stage ?? null];
}

/** The CLI in this process (a spawned one costs seconds on a loaded machine); spawned only to be killed. */
async function run(args: string[]): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (line) => (stdout += line + '\n'), err: (text) => (stderr += text) });
  return { code, signal: null, stdout, stderr };
}

const targetRows = (pair: MovePair) =>
  withClient(pair.target.url, async (c) =>
    Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM app.items')).rows[0]!.n),
  );

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('shadowpack run and status on a move plan', () => {
  it('runs each stage on its side in order, stops at --until and at the cut-over by default, then cleans up both sides', async () => {
    const { pair, args } = await toyPair('move_runner_order');
    const first = await run(['run', ...args, '--until', 'catchup']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(
      /» preflight\.source[\s\S]*» preflight\.target[\s\S]*» setup\.source[\s\S]*» setup\.target[\s\S]*» backfill\.target[\s\S]*» build\.target[\s\S]*» catchup\.target/,
    );
    expect(first.stderr).not.toMatch(/fence/);
    expect(first.stdout).toContain('next: 06-fence.source.sql (fence on the source)');
    expect(await stages(pair)).toEqual(['ready-for-fence', 'catchup']);

    const status = await run(['status', ...args]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(
      'source: "ready-for-fence", target: "catchup"; next: fence on the source (06-fence.source.sql)',
    );
    expect(status.stdout).toContain('target: 1 rounds, 0 rows applied, last applied source snapshot toy');
    const json = await run(['status', ...args, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      kind: 'move',
      runId: TOY_RUN_ID,
      source: { stage: 'ready-for-fence' },
      target: { stage: 'catchup' },
      next: { stage: 'fence', side: 'source' },
    });

    const second = await run(['run', ...args, '--events']);
    expect(second.code, second.stderr).toBe(0);
    const events = second.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.filter((e) => e['type'] === 'stage-start').map((e) => e['stage'])).toEqual([
      'fence.source',
      'cutover.target',
    ]);
    expect(events.at(-1)).toMatchObject({ type: 'summary', finished: false, source: 'cutover', target: 'cutover' });
    expect(await targetRows(pair)).toBe(100);

    const third = await run(['run', ...args, '--until', 'cleanup']);
    expect(third.code, third.stderr).toBe(0);
    expect(third.stderr).toMatch(/» cleanup\.target[\s\S]*» cleanup\.source/);
    expect(third.stdout).toContain('app.items: moved; cleaned up on both sides');
    expect(await stages(pair)).toEqual([null, null]);
    expect(await targetRows(pair)).toBe(100);
  });

  it('aborts on both sides before the cut-over; a script run on the wrong cluster is refused by its binding', async () => {
    const { pair, dir, args } = await toyPair('move_runner_abort');
    expect((await run(['run', ...args, '--until', 'build'])).code).toBe(0);
    expect(await stages(pair)).toEqual(['setup', 'build']);
    const wrong = await psql(pair.target.url, join(dir, '06-fence.source.sql'));
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('toy: this script runs on the source');
    const abort = await run(['run', ...args, '--stage', 'abort']);
    expect(abort.code, abort.stderr).toBe(0);
    expect(abort.stderr).toMatch(/» abort\.target[\s\S]*» abort\.source/);
    expect(abort.stdout).toContain('move aborted');
    expect(await stages(pair)).toEqual([null, null]);
  });

  it('goes on where psql stopped: the state on both sides is the same whichever executor wrote it', async () => {
    const { pair, dir, args } = await toyPair('move_runner_psql');
    for (const [file, url] of [
      ['01-setup.source.sql', pair.source.url],
      ['02-setup.target.sql', pair.target.url],
    ] as const) {
      const r = await psql(url, join(dir, file));
      expect(r.code, r.stderr).toBe(0);
    }
    const status = await run(['status', ...args]);
    expect(status.stdout).toContain(
      'source: "setup", target: "setup"; next: backfill on the target (03-backfill.target.sql)',
    );
    const runner = await run(['run', ...args, '--until', 'backfill']);
    expect(runner.code, runner.stderr).toBe(0);
    expect(runner.stderr).not.toMatch(/» (preflight|setup)/);
    expect(runner.stderr).toMatch(/» backfill\.target/);
    expect(await stages(pair)).toEqual(['setup', 'backfill']);
  });

  it('refuses a move plan without --target-url, and a --until that is not a stage of a move', async () => {
    const { args } = await toyPair('move_runner_args');
    const noTarget = await run(['run', ...args.slice(0, 4)]);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toContain(
      'is a move plan: its stages run on two clusters; give the target with --target-url',
    );
    const jobs = await run(['run', ...args, '--jobs', '4']);
    expect(jobs.code).toBe(2);
    expect(jobs.stderr).toContain('--jobs does not apply to a move plan yet');
    const swap = await run(['run', ...args, '--until', 'swap']);
    expect(swap.code).toBe(2);
    expect(swap.stderr).toContain(
      '--until of a move plan takes one of preflight, setup, backfill, build, catchup, fence, cutover, cleanup, not swap',
    );
  });
});
