/**
 * Transactions that outlive a move's stages on the source (issue 15), source 14 -> target 17, with psql and the
 * runner: a REPEATABLE READ transaction whose snapshot and xid predate 01-setup writes to the group after setup
 * (the capture trigger fires: triggers come from the catalog, not from its snapshot) and stays open across the
 * whole backfill and its settling round (its log entries are in progress there, so neither applied nor pruned),
 * then commits; its rows reach the target. Nothing here failed before; it pins the "trigger first, then batches"
 * argument for a writer that began before the trigger existed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareMoveWithTwins } from '../helpers/move-fixture.js';
import { MOVE_SOURCE_MISSING, startMoveServers, type MovePair, type MoveServers } from '../helpers/move-servers.js';
import { newStagedMove, waitUntil } from '../helpers/move-stage-runner.js';

let servers: MoveServers;
let root: string;
const pairs: MovePair[] = [];

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-long-'));
}, 120_000);

afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('a source transaction older than the move', () => {
  it.each(['psql', 'runner'] as const)(
    '%s: begun before setup, writing after it, committed after the backfill: its rows arrive',
    async (executor) => {
      const m = await newStagedMove(servers, root, `lt_${executor}`, { batchPages: 2 });
      pairs.push(m.pair);
      const stage = async (file: string, until: string) => {
        if (executor === 'psql') return void (await m.psql(file));
        const out = await m.cli('run', '--until', until);
        expect(out.code, out.stderr).toBe(0);
      };
      const old = new pg.Client({ connectionString: m.pair.source.url });
      await old.connect();
      try {
        // Its snapshot and xid come before the capture trigger; it holds no lock on the group yet.
        await old.query(
          `BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM app.orders; SELECT pg_current_xact_id()`,
        );
        if (executor === 'psql') {
          await m.psql('00-preflight.source.sql');
          await m.psql('00-preflight.target.sql');
        }
        await stage('01-setup.source.sql', 'setup');
        if (executor === 'psql') await m.psql('02-setup.target.sql');
        await old.query(`UPDATE app.orders SET qty = 31 WHERE id = 11; UPDATE twin.orders SET qty = 31 WHERE id = 11;
          DELETE FROM app.order_items WHERE order_id = 12; DELETE FROM twin.order_items WHERE order_id = 12;
          WITH n AS (INSERT INTO app.customers (name, email) VALUES ('older than the move', 'old@example.com') RETURNING *)
          INSERT INTO twin.customers SELECT id, referrer_id, name, email, mood, address, ref, created_at FROM n`);
        await stage('03-backfill.target.sql', 'backfill');
        const [inFlight] = await m.tgt(`SELECT count(*)::int AS n FROM app.customers WHERE email = 'old@example.com'`);
        expect(inFlight!.n).toBe(0);
        await old.query('COMMIT');
      } finally {
        await old.end();
      }
      if (executor === 'psql') {
        for (const f of [
          '04-build.target.sql',
          '05-catchup.target.sql',
          '06-fence.source.sql',
          '07-cutover.target.sql',
        ])
          await m.psql(f);
      } else {
        const out = await m.cli('run');
        expect(out.code, out.stderr).toBe(0);
      }
      const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
      expect(same.equal, JSON.stringify(same)).toBe(true);
      const [arrived] = await m.tgt(`SELECT count(*)::int AS n FROM app.customers WHERE email = 'old@example.com'`);
      expect(arrived!.n).toBe(1);
    },
    60_000,
  );
  it('runner: a writer open across the fence that writes a second table of the group while the fence waits for it: the fence lets it finish, then fences', async () => {
    const m = await newStagedMove(servers, root, 'lt_deadlock', { lockTimeoutMs: 10_000 });
    pairs.push(m.pair);
    const caught = await m.cli('run', '--until', 'catchup');
    expect(caught.code, caught.stderr).toBe(0);
    const writer = new pg.Client({ connectionString: m.pair.source.url });
    await writer.connect();
    try {
      await writer.query(`BEGIN; UPDATE app.order_items SET qty = 61 WHERE order_id = 5 AND line = 1;
        UPDATE twin.order_items SET qty = 61 WHERE order_id = 5 AND line = 1`);
      const pid = (await writer.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const fence = m.cli('run', '--until', 'fence');
      await waitUntil(
        m.pair.source.url,
        `SELECT EXISTS (SELECT FROM pg_locks l WHERE NOT l.granted AND ${pid} = ANY (pg_blocking_pids(l.pid))) AS ok`,
        'the fence waits for the writer',
      );
      // The fence holds the tables it locked before order_items; the writer now needs one of them.
      const second = await writer
        .query(
          `UPDATE app.customers SET name = 'across the fence' WHERE id = 3; UPDATE twin.customers SET name = 'across the fence' WHERE id = 3`,
        )
        .then(
          () => 'ok',
          (e: Error) => e.message,
        );
      const committed = second === 'ok' ? await writer.query('COMMIT').then(() => 'ok') : second;
      const fenced = await fence;
      expect({ writer: committed, fence: fenced.code === 0 ? 'ok' : fenced.stderr }).toEqual({
        writer: 'ok',
        fence: 'ok',
      });
    } finally {
      await writer.end();
    }
    const cut = await m.cli('run');
    expect(cut.code, cut.stderr).toBe(0);
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
  }, 60_000);
});
