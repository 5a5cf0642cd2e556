/**
 * The runner gives a revert up (issue 15), source 14 -> target 17. A revert stuck after 92-revert.target.sql (the
 * target fenced, 'revert-fenced'; here because the target's capture was altered after 92, so 93-revert.source.sql
 * refuses) was given up only with psql: 08-cleanup.target.sql, then 08-cleanup.source.sql (0a1f81c). `run --stage
 * cleanup` ran the same two files but then printed 'next: preflight and setup', `run --until cleanup` and status
 * named only --stage revert (and psql), and a cleanup interrupted between the two files could not go on with the
 * same command (08-cleanup.target.sql refuses once the target has no run). Now --stage cleanup gives the revert up
 * with the same files, says so, and goes on after an interruption; the refusals and status name it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../helpers/db.js';
import { compareMoveWithTwins, MOVE_COLUMNS, MOVE_GROUP } from '../helpers/move-fixture.js';
import { MOVE_SOURCE_MISSING, startMoveServers, type MovePair, type MoveServers } from '../helpers/move-servers.js';
import { newStagedMove, type StagedMove } from '../helpers/move-stage-runner.js';

let servers: MoveServers;
let root: string;
const pairs: MovePair[] = [];
const REVERT_PASSWORD_ENV = 'SHADOWPACK_REVERT_FDW_PASSWORD';
let savedRevertPassword: string | undefined;

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-revert-giveup-'));
  savedRevertPassword = process.env[REVERT_PASSWORD_ENV];
}, 120_000);

afterAll(async () => {
  if (savedRevertPassword === undefined) delete process.env[REVERT_PASSWORD_ENV];
  else process.env[REVERT_PASSWORD_ENV] = savedRevertPassword;
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

/** A reversible move cut over by the runner, with twins of the group on the target. */
async function cutOver(name: string): Promise<StagedMove> {
  const m = await newStagedMove(servers, root, name, { reversible: true }, undefined, { customers: 30, orders: 100 });
  pairs.push(m.pair);
  process.env[REVERT_PASSWORD_ENV] = decodeURIComponent(new URL(m.pair.target.url).password);
  const out = await m.cli('run', '--until', 'cutover');
  expect(out.code, out.stderr).toBe(0);
  await withClient(m.pair.target.url, async (c) => {
    await c.query('CREATE SCHEMA twin');
    for (const t of MOVE_GROUP)
      await c.query(`CREATE TABLE twin.${t} AS SELECT ${MOVE_COLUMNS[t].join(', ')} FROM app.${t}`);
  });
  return m;
}

/** Writes on the target (an insert, an update, a delete), each mirrored in its twin in the same transaction. */
async function write(m: StagedMove, n: number): Promise<void> {
  await withClient(m.pair.target.url, async (c) => {
    await c.query('BEGIN');
    await c.query(
      `WITH c AS (INSERT INTO app.customers (name, email) VALUES ('w${n}', 'w${n}@example.com') RETURNING ${MOVE_COLUMNS.customers.join(', ')}) INSERT INTO twin.customers SELECT * FROM c`,
    );
    await c.query(`UPDATE app.orders SET qty = ${n} WHERE id = 7`);
    await c.query(`UPDATE twin.orders SET qty = ${n} WHERE id = 7`);
    const gone = await c.query<{ order_id: string; line: number }>(
      `DELETE FROM app.order_items WHERE (order_id, line) = (SELECT order_id, line FROM app.order_items ORDER BY 1, 2 LIMIT 1) RETURNING order_id, line`,
    );
    for (const g of gone.rows)
      await c.query(`DELETE FROM twin.order_items WHERE order_id = $1 AND line = $2`, [g.order_id, g.line]);
    await c.query('COMMIT');
  });
}

const TARGET_FENCE = /moved back to .*; writes are refused/;
const SOURCE_FENCE = /moved to .*; writes are refused/;
const GIVE_UP_NAMED = /or give it up with --stage cleanup \(the source is not live yet/;

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('the runner gives a revert up', () => {
  it('after 92 (93 refuses: the capture was altered): run --stage cleanup gives it up with the cleanup files; the target takes writes again, equal to its twins; the source stays fenced', async () => {
    const m = await cutOver('gu_fenced');
    await write(m, 9000);
    await m.psql('91-revert.source.sql');
    await write(m, 9001);
    await m.psql('92-revert.target.sql');
    await expect(write(m, 9002)).rejects.toThrow(TARGET_FENCE);
    const [cap] = await m.tgt(
      `SELECT DISTINCT tgname AS t FROM pg_trigger WHERE tgname LIKE 'shadowpack\\_mcapture\\_%'`,
    );
    const [fence] = await m.tgt(
      `SELECT DISTINCT tgname AS t FROM pg_trigger WHERE tgname LIKE 'shadowpack\\_mfence\\_%'`,
    );
    await m.tgt(`ALTER TABLE app.orders ENABLE TRIGGER ALL`);
    await m.tgt(`ALTER TABLE app.orders ENABLE ALWAYS TRIGGER ${fence!.t as string}`);
    await m.tgt(`ALTER TABLE app.orders ENABLE ALWAYS TRIGGER ${cap!.t as string}`);

    // The revert refuses on 93; each refusal and status name the runner's way out.
    const revert = await m.cli('run', '--stage', 'revert');
    expect(revert.code).toBe(2);
    expect(revert.stderr).toMatch(/writes to .* on the target may have been missed/);
    expect(revert.stderr).toMatch(
      /\. With the runner: --stage cleanup gives the revert up \(the source is not live yet\), --stage revert tries again$/m,
    );
    expect(revert.stderr.split('\n').filter((l) => l.startsWith('shadowpack:'))).toHaveLength(1);
    const plain = await m.cli('run', '--until', 'cleanup');
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain(
      'a revert of this move is under way (source "reverting", target "revert-fenced"): go on with --stage revert (next: 93-revert.source.sql on the source)',
    );
    expect(plain.stderr).toMatch(GIVE_UP_NAMED);
    const status = await m.cli('status');
    expect(status.stdout).toContain(
      'next: revert on the source (93-revert.source.sql); or give the revert up (the target live again, the source keeping its fence): cleanup (08-cleanup.target.sql, then 08-cleanup.source.sql; run --stage cleanup)',
    );
    const json = JSON.parse((await m.cli('status', '--json')).stdout) as { next: unknown };
    expect(json.next).toEqual({
      stage: 'revert',
      side: 'source',
      file: '93-revert.source.sql',
      orGiveUp: { stage: 'cleanup', files: ['08-cleanup.target.sql', '08-cleanup.source.sql'] },
    });

    const given = await m.cli('run', '--stage', 'cleanup');
    expect(given.code, given.stderr).toBe(0);
    expect(given.stdout).toMatch(/^stages: cleanup\.target \d+ ms, cleanup\.source \d+ ms; total/m);
    expect(given.stdout).toContain(
      "app.customers, app.order_items, app.orders: the revert is given up: the target is live, the source's tables keep refusing writes; cleaned up on both sides",
    );
    expect(given.stderr).toContain("the revert is given up; the target's fence goes and the target takes writes again");
    // The target takes writes again and holds exactly what was committed there; the source stays retired.
    await write(m, 9003);
    const same = await compareMoveWithTwins(m.pair.target.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same.tables)).toBe(true);
    expect(await m.tgt(`SELECT tgname FROM pg_trigger WHERE tgname LIKE 'shadowpack%'`)).toEqual([]);
    await expect(m.src(`UPDATE app.orders SET qty = 1 WHERE id = 7`)).rejects.toThrow(SOURCE_FENCE);
    expect(await m.src(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'shadowpack%'`)).toEqual([
      { nspname: 'shadowpack' },
    ]);
    expect(await m.src(`SELECT srvname FROM pg_foreign_server`)).toEqual([]);
    for (const args of [['--stage', 'cleanup'], ['--stage', 'revert'], []]) {
      const again = await m.cli('run', ...args);
      expect(again.code, args.join(' ')).toBe(2);
    }
    const again = await m.cli('run', '--stage', 'cleanup');
    expect(again.stderr).toMatch(/this move is done: neither side has a run left/);
    expect((await m.cli('status')).stdout).toContain('next: nothing (the move is done: the source keeps its fence)');
  }, 60_000);

  it('before 92, interrupted after 08-cleanup.target.sql: run --stage cleanup goes on with 08-cleanup.source.sql alone', async () => {
    const m = await cutOver('gu_early');
    await m.psql('91-revert.source.sql');
    await write(m, 7000);
    // What a runner killed between the two files leaves: the target cleaned up (the revert given up there).
    await m.psql('08-cleanup.target.sql');
    expect((await m.cli('status')).stdout).toContain('source: "reverting", target: no run');
    const rest = await m.cli('run', '--stage', 'cleanup');
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.stdout).toMatch(/^stages: cleanup\.source \d+ ms; total/m);
    expect(rest.stdout).toContain('the revert is given up: the target is live');
    await write(m, 7001);
    const same = await compareMoveWithTwins(m.pair.target.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same.tables)).toBe(true);
    await expect(m.src(`UPDATE app.orders SET qty = 1 WHERE id = 7`)).rejects.toThrow(SOURCE_FENCE);
    expect(await m.src(`SELECT srvname FROM pg_foreign_server`)).toEqual([]);
  }, 60_000);
});
