/**
 * Attacks on the revert of a --reversible move (issue 15), source 14 -> target 17, psql file by file and the
 * runner. The target's fence turned off after 92-revert.target.sql (DISABLE TRIGGER, or ENABLE REPLICA TRIGGER)
 * lets a write through: a transaction open on the target across 93-revert.source.sql commits after the last
 * round's snapshot and stays on the target only. Before the fix 93 went through and orders row 7 had qty 5001 on
 * the target (its twin too) and the cut-over's value on the source. Now the last round refuses until the fence is
 * ENABLE ALWAYS again on every table of the group; the writes it let through were captured and come back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
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
  root = mkdtempSync(join(tmpdir(), 'sp-move-revert-attacks-'));
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

/** An update of orders row 7 on the target, mirrored in its twin in the same transaction. */
const write = (qty: number) =>
  `BEGIN; UPDATE app.orders SET qty = ${qty} WHERE id = 7; UPDATE twin.orders SET qty = ${qty} WHERE id = 7; COMMIT`;
const FENCE_MESSAGE = /moved back to .*; writes are refused/;
const NOT_IN_FORCE =
  /the fence on app\.customers, app\.order_items, app\.orders is not in force on the target \(its trigger shadowpack_mfence_\w+ was disabled/;

async function fenceTrigger(m: StagedMove): Promise<string> {
  const [f] = await m.tgt(`SELECT DISTINCT tgname AS t FROM pg_trigger WHERE tgname LIKE 'shadowpack\\_mfence\\_%'`);
  return f!.t as string;
}

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('attacks on the revert of a move', () => {
  it.each([
    ['psql', 'DISABLE TRIGGER'],
    ['runner', 'ENABLE REPLICA TRIGGER'],
  ] as const)(
    '%s: the target fence changed by %s after 92 lets a write through; the last round refuses until it is ENABLE ALWAYS again, then the write arrives',
    async (executor, how) => {
      const m = await cutOver(`ra_fence_${executor}`);
      await m.tgt(write(5000));
      await m.psql('91-revert.source.sql');
      await m.psql('92-revert.target.sql');
      await expect(m.tgt(write(4999))).rejects.toThrow(FENCE_MESSAGE);
      const fence = await fenceTrigger(m);
      await m.tgt(`ALTER TABLE app.orders ${how} ${fence}`);
      // A writer open across the last round: its write commits after the round's snapshot.
      const open = new pg.Client({ connectionString: m.pair.target.url });
      await open.connect();
      try {
        await open.query('BEGIN');
        await open.query('UPDATE app.orders SET qty = 5001 WHERE id = 7');
        await open.query('UPDATE twin.orders SET qty = 5001 WHERE id = 7');
        const last = async () => {
          if (executor === 'psql') return m.outcome('93-revert.source.sql');
          const out = await m.cli('run', '--stage', 'revert');
          return out.code === 0 ? 'ok' : out.stderr;
        };
        let refused = await last();
        await open.query('COMMIT');
        if (refused === 'ok') {
          refused = `reverted: ${JSON.stringify((await compareMoveWithTwins(m.pair.target.url, m.pair.source.url)).tables.orders)}`;
        }
        expect(refused).toMatch(NOT_IN_FORCE);
        await m.tgt(`ALTER TABLE app.orders ENABLE ALWAYS TRIGGER ${fence}`);
        await expect(m.tgt(write(5002))).rejects.toThrow(FENCE_MESSAGE);
        expect(await last()).toBe('ok');
      } finally {
        await open.end();
      }
      const same = await compareMoveWithTwins(m.pair.target.url, m.pair.source.url);
      expect(same.equal, JSON.stringify(same.tables)).toBe(true);
      const [row] = await m.src(`SELECT qty FROM app.orders WHERE id = 7`);
      expect(row!.qty).toBe(5001);
    },
    60_000,
  );
});
