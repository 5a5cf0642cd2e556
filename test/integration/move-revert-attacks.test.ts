/**
 * Attacks on the revert of a --reversible move (issue 15), source 14 -> target 17, psql file by file and the
 * runner. The target's fence turned off after 92-revert.target.sql (DISABLE TRIGGER, or ENABLE REPLICA TRIGGER)
 * lets a write through: a transaction open on the target across 93-revert.source.sql commits after the last
 * round's snapshot and stays on the target only. Before the fix 93 went through and orders row 7 had qty 5001 on
 * the target (its twin too) and the cut-over's value on the source. Now the last round refuses until the fence is
 * ENABLE ALWAYS again on every table of the group; the writes it let through were captured and come back.
 * DISABLE TRIGGER ALL on the target (a bulk load) makes the revert refuse before any fence. A user trigger
 * enabled ALWAYS or REPLICA on the source fired for every row the revert applied (the source got
 * 'note 7 [stamped]', the target has 'note 7'); the rounds now refuse while one is enabled so, naming it.
 * A transaction that turns the target's capture off and on again around a write and commits while 92 waits for its
 * lock got past 92's check (made before the lock): the target was fenced, 93 refused (capture) and both cleanups
 * refused, so neither side took writes. 92 now checks after its lock step and refuses; the target stays live.
 * The capture altered after 92 (ENABLE TRIGGER ALL, then ENABLE ALWAYS on the fence and the capture): 93 refused,
 * 08-cleanup.target.sql refused at revert-fenced and 08-cleanup.source.sql while the target was fenced, so again
 * neither side took writes. 08-cleanup.target.sql now gives the revert up while the source is still 'reverting'
 * (it locks the source's state row as 93 does first): the target's fence goes and it is live again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../helpers/db.js';
import { compareMoveWithTwins, MOVE_COLUMNS, MOVE_GROUP } from '../helpers/move-fixture.js';
import { MOVE_SOURCE_MISSING, startMoveServers, type MovePair, type MoveServers } from '../helpers/move-servers.js';
import { newStagedMove, waitingFor, waitUntil, type StagedMove } from '../helpers/move-stage-runner.js';

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
  /the fence on app\.customers, app\.order_items, app\.orders is not in force on the target \(its trigger shadowpack_mfence_\w+ or shadowpack_mfencerow_\w+ was disabled/;

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
      const rowFence = fence.replace('_mfence_', '_mfencerow_');
      await m.tgt(`ALTER TABLE app.orders ${how} ${fence}, ${how} ${rowFence}`);
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
        await m.tgt(`ALTER TABLE app.orders ENABLE ALWAYS TRIGGER ${fence}, ENABLE ALWAYS TRIGGER ${rowFence}`);
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

  it('psql and runner: DISABLE TRIGGER ALL on the target, a write, ENABLE TRIGGER ALL: the revert refuses (capture) before any fence, the target stays live and the window ends', async () => {
    const m = await cutOver('ra_bulk');
    await m.tgt(`ALTER TABLE app.orders DISABLE TRIGGER ALL`);
    await m.tgt(write(6000));
    await m.tgt(`ALTER TABLE app.orders ENABLE TRIGGER ALL`);
    const CAPTURE =
      /writes to .* on the target may have been missed \(a capture trigger there was disabled or altered since the cut-over\)/;
    expect(await m.outcome('91-revert.source.sql')).toMatch(CAPTURE);
    const run = await m.cli('run', '--stage', 'revert');
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(CAPTURE);
    expect(await m.outcome('92-revert.target.sql')).not.toBe('ok');
    // Neither side is fenced for the revert: the target takes writes, and the window ends with the cleanups.
    await m.tgt(write(6001));
    expect(await m.outcome('08-cleanup.target.sql')).toBe('ok');
    expect(await m.outcome('08-cleanup.source.sql')).toBe('ok');
    await m.tgt(write(6002));
    const [row] = await m.tgt(`SELECT qty FROM app.orders WHERE id = 7`);
    expect(row!.qty).toBe(6002);
  }, 60_000);

  it('psql: the capture turned off and on by a transaction that commits while 92 waits for its lock: 92 refuses and the target stays live (no pair where both sides refuse writes)', async () => {
    const m = await cutOver('ra_race');
    await m.psql('91-revert.source.sql');
    const [cap] = await m.tgt(
      `SELECT DISTINCT tgname AS t FROM pg_trigger WHERE tgname LIKE 'shadowpack\\_mcapture\\_%'`,
    );
    const capture = cap!.t as string;
    const bulk = new pg.Client({ connectionString: m.pair.target.url });
    await bulk.connect();
    let fenced: string;
    try {
      await bulk.query('BEGIN');
      await bulk.query(`ALTER TABLE app.orders DISABLE TRIGGER ${capture}`);
      await bulk.query('UPDATE app.orders SET qty = 8000 WHERE id = 7');
      await bulk.query('UPDATE twin.orders SET qty = 8000 WHERE id = 7');
      await bulk.query(`ALTER TABLE app.orders ENABLE ALWAYS TRIGGER ${capture}`);
      const fence = m.outcome('92-revert.target.sql');
      await waitUntil(m.pair.target.url, waitingFor(`relation = 'app.orders'::regclass`), '92 waits for app.orders');
      await bulk.query('COMMIT');
      fenced = await fence;
    } finally {
      await bulk.end();
    }
    if (fenced === 'ok') {
      // Before the fix: the target fenced, and neither the last round nor either cleanup can go on.
      fenced = [
        await m.outcome('93-revert.source.sql'),
        await m.outcome('08-cleanup.target.sql'),
        await m.outcome('08-cleanup.source.sql'),
      ].join(' | ');
    }
    expect(fenced).toMatch(
      /the capture or the columns of app\.customers, app\.order_items, app\.orders on the target changed since the cut-over; the target is not fenced/,
    );
    await m.tgt(write(8001));
    expect(await m.outcome('08-cleanup.target.sql')).toBe('ok');
    expect(await m.outcome('08-cleanup.source.sql')).toBe('ok');
    await m.tgt(write(8002));
  }, 60_000);

  it('psql and runner: the capture altered on the target after 92 (ENABLE TRIGGER ALL, then ENABLE ALWAYS again): 93 refuses, and 08-cleanup.target.sql gives the revert up, so the target is live again', async () => {
    const m = await cutOver('ra_stuck');
    await m.tgt(write(9000));
    await m.psql('91-revert.source.sql');
    // Run again, 91 finds its columns, schema and foreign tables made and says nothing (it printed fourteen
    // "… already exists, skipping" notices); a write between comes back with its rounds.
    await m.tgt(write(9001));
    expect(await m.psql('91-revert.source.sql')).toBe('');
    const [brought] = await m.src(`SELECT qty FROM app.orders WHERE id = 7`);
    expect(brought!.qty).toBe(9001);
    await m.psql('92-revert.target.sql');
    await expect(m.tgt(write(9100))).rejects.toThrow(FENCE_MESSAGE);
    const fence = await fenceTrigger(m);
    const [cap] = await m.tgt(
      `SELECT DISTINCT tgname AS t FROM pg_trigger WHERE tgname LIKE 'shadowpack\\_mcapture\\_%'`,
    );
    const capture = cap!.t as string;
    await m.tgt(`ALTER TABLE app.orders ENABLE TRIGGER ALL`);
    await m.tgt(`ALTER TABLE app.orders ENABLE ALWAYS TRIGGER ${fence}`);
    await m.tgt(`ALTER TABLE app.orders ENABLE ALWAYS TRIGGER ${capture}`);
    await expect(m.tgt(write(9002))).rejects.toThrow(FENCE_MESSAGE);
    const CAPTURE =
      /writes to .* on the target may have been missed \(a capture trigger there was disabled or altered since the cut-over\)/;
    expect(await m.outcome('93-revert.source.sql')).toMatch(CAPTURE);
    const run = await m.cli('run', '--stage', 'revert');
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(CAPTURE);
    // Both sides refuse writes now; each names the way out.
    const plain = await m.cli('run');
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(
      /or give it up with --stage cleanup \(the source is not live yet: the target stays or becomes live, the source keeps its fence\)/,
    );
    await expect(m.src(`UPDATE app.orders SET qty = 1 WHERE id = 7`)).rejects.toThrow(
      /after it the revert does: 91-revert\.source\.sql, 92-revert\.target\.sql, 93-revert\.source\.sql/,
    );
    // The way out: the source is not live (still 'reverting'), so the target gives the revert up. It locks the
    // source's state row as 93 does first: while another session holds it, cleanup waits, and when that session
    // changed the row meanwhile, it refuses and changes nothing.
    const [state] = await m.src(
      `SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'shadowpack' AND c.relname ~ '^move_[0-9a-f]+$'`,
    );
    const holder = new pg.Client({ connectionString: m.pair.source.url });
    await holder.connect();
    let raced: string;
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT stage FROM ${state!.t as string} FOR UPDATE`);
      const cleanup = m.outcome('08-cleanup.target.sql');
      await waitUntil(m.pair.source.url, waitingFor(`locktype = 'transactionid'`), 'cleanup waits for the source row');
      await holder.query(`UPDATE ${state!.t as string} SET updated_at = now()`);
      await holder.query('COMMIT');
      raced = await cleanup;
    } finally {
      await holder.end();
    }
    expect(raced).toMatch(
      /the source's revert state changed while this file waited for it; the revert is not given up/,
    );
    await expect(m.tgt(write(9002))).rejects.toThrow(FENCE_MESSAGE);
    expect(await m.outcome('08-cleanup.target.sql')).toBe('ok');
    expect(await m.outcome('08-cleanup.source.sql')).toBe('ok');
    expect(await m.outcome('93-revert.source.sql')).not.toBe('ok');
    await m.tgt(write(9003));
    const [row] = await m.tgt(`SELECT qty FROM app.orders WHERE id = 7`);
    expect(row!.qty).toBe(9003);
    const same = await compareMoveWithTwins(m.pair.target.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same.tables)).toBe(true);
    expect(await m.tgt(`SELECT tgname FROM pg_trigger WHERE tgname = '${fence}'`)).toEqual([]);
    // The source stays fenced, as after a cut-over without a revert.
    await expect(m.src(`UPDATE app.orders SET qty = 1 WHERE id = 7`)).rejects.toThrow(
      /moved to .*; writes are refused/,
    );
    const again = await m.cli('run');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/this move is done/);
  }, 60_000);

  it('psql, then the runner: user triggers enabled ALWAYS or REPLICA on the source would fire for the rows the revert applies; the rounds refuse, naming them, until they fire for ordinary sessions only', async () => {
    const m = await cutOver('ra_always');
    // As a logical-replication setup has them: they fire under session_replication_role = replica too.
    await m.src(
      `CREATE FUNCTION app.stamp_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := coalesce(NEW.note, '') || ' [stamped]'; RETURN NEW; END $$`,
    );
    await m.src(
      `CREATE FUNCTION app.stamp_name() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := NEW.name || ' [stamped]'; RETURN NEW; END $$`,
    );
    await m.src(
      `CREATE TRIGGER orders_stamp BEFORE INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.stamp_note()`,
    );
    await m.src(`ALTER TABLE app.orders ENABLE ALWAYS TRIGGER orders_stamp`);
    await m.src(
      `CREATE TRIGGER customers_stamp BEFORE INSERT ON app.customers FOR EACH ROW EXECUTE FUNCTION app.stamp_name()`,
    );
    await m.src(`ALTER TABLE app.customers ENABLE REPLICA TRIGGER customers_stamp`);
    await m.tgt(write(7000));
    await m.tgt(
      `BEGIN; UPDATE app.customers SET name = 'on target' WHERE id = 3; UPDATE twin.customers SET name = 'on target' WHERE id = 3; COMMIT`,
    );
    // Before the check the revert went through and the source had 'note 7 [stamped]' where the target has 'note 7'.
    expect(await m.outcome('91-revert.source.sql')).toContain(
      'user triggers on the source would fire for the rows the revert applies: customers_stamp on app.customers (ENABLE REPLICA), orders_stamp on app.orders (ENABLE ALWAYS)',
    );
    await m.src(`ALTER TABLE app.orders ENABLE TRIGGER orders_stamp`);
    await m.src(`ALTER TABLE app.customers ENABLE TRIGGER customers_stamp`);
    const run = await m.cli('run', '--stage', 'revert');
    expect(run.code, run.stderr).toBe(0);
    await m.src(`ALTER TABLE app.orders ENABLE ALWAYS TRIGGER orders_stamp`);
    await m.src(`ALTER TABLE app.customers ENABLE REPLICA TRIGGER customers_stamp`);
    const same = await compareMoveWithTwins(m.pair.target.url, m.pair.source.url);
    expect(same.equal, JSON.stringify(same.tables)).toBe(true);
    const [row] = await m.src(`SELECT qty, note FROM app.orders WHERE id = 7`);
    expect(row).toEqual({ qty: 7000, note: 'note 7' });
  }, 60_000);
});
