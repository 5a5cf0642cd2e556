/**
 * Table rewrites and DDL on the source between a move's rounds and around its cut-over (issue 15), source 14 ->
 * target 17, psql. Nothing here failed; it pins what happens: VACUUM FULL between rounds and after the fence is
 * carried (the rounds find rows by key; only the backfill reads pages, and it checks the files); ADD COLUMN after
 * the fence stops the cut-over with the DDL message until it is taken back; ALTER COLUMN … TYPE is refused by
 * PostgreSQL itself (the views the target reads use every column); TRUNCATE after the fence is refused; and a
 * change started while the cut-over's round waits for its lock on the source waits for the cut-over to commit
 * (the round's source transaction holds a lock on the tables from its read of the snapshot row on), so none
 * commits between the snapshot the cut-over applies and its commit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareMoveWithTwins } from '../helpers/move-fixture.js';
import { MOVE_SOURCE_MISSING, startMoveServers, type MovePair, type MoveServers } from '../helpers/move-servers.js';
import { newStagedMove, waitUntil, waitingFor, type StagedMove } from '../helpers/move-stage-runner.js';

let servers: MoveServers;
let root: string;
const pairs: MovePair[] = [];

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-rewrite-'));
}, 120_000);

afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

/** An update of orders row `id`, mirrored in its twin in the same transaction. */
const write = (id: number, qty: number) =>
  `BEGIN; UPDATE app.orders SET qty = ${qty} WHERE id = ${id}; UPDATE twin.orders SET qty = ${qty} WHERE id = ${id}; COMMIT`;

async function staged(name: string): Promise<StagedMove> {
  const m = await newStagedMove(servers, root, name, { lockTimeoutMs: 15_000 }, undefined, {
    customers: 30,
    orders: 100,
  });
  pairs.push(m.pair);
  return m;
}

const DDL = /changed on the source during the move \(DDL\)/;

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('rewrites and DDL on the source', () => {
  it('VACUUM FULL between two rounds and after the fence: every write arrives', async () => {
    const m = await staged('rw_rewrite');
    for (const f of [
      '00-preflight.source.sql',
      '00-preflight.target.sql',
      '01-setup.source.sql',
      '02-setup.target.sql',
      '03-backfill.target.sql',
      '04-build.target.sql',
    ])
      await m.psql(f);
    await m.src(write(3, 301));
    await m.src('VACUUM FULL app.orders');
    await m.src(write(4, 401));
    await m.psql('05-catchup.target.sql');
    await m.src(write(5, 501));
    await m.src('VACUUM FULL app.customers, app.order_items');
    await m.src(write(6, 601));
    await m.psql('05-catchup.target.sql');
    await m.src(write(7, 701));
    await m.psql('06-fence.source.sql');
    await m.src('VACUUM FULL app.orders');
    await m.psql('07-cutover.target.sql');
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
  }, 60_000);

  it('ALTER TABLE … ADD COLUMN after the fence: the cut-over refuses; taken back, it goes through. ALTER COLUMN … TYPE is refused by PostgreSQL (the views the target reads use every column)', async () => {
    const m = await staged('rw_ddl');
    for (const f of [
      '00-preflight.source.sql',
      '00-preflight.target.sql',
      '01-setup.source.sql',
      '02-setup.target.sql',
      '03-backfill.target.sql',
      '04-build.target.sql',
      '05-catchup.target.sql',
    ])
      await m.psql(f);
    await expect(m.src(`ALTER TABLE app.orders ALTER COLUMN scores TYPE bigint[]`)).rejects.toThrow(
      /cannot alter type of a column used by a view or rule/,
    );
    await m.src(write(7, 777));
    await m.psql('06-fence.source.sql');
    // TRUNCATE fires no row trigger: the fence refuses it (as the TRUNCATE guard did before the fence).
    await expect(m.src('TRUNCATE app.order_items')).rejects.toThrow(/app\.order_items moved to .*; writes are refused/);
    await m.src(`ALTER TABLE app.orders ADD COLUMN extra integer DEFAULT 7`);
    expect(await m.outcome('07-cutover.target.sql')).toMatch(DDL);
    await m.src(`ALTER TABLE app.orders DROP COLUMN extra`);
    expect(await m.outcome('07-cutover.target.sql')).toBe('ok');
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
  }, 60_000);

  it("ALTER TABLE … ADD COLUMN while the cut-over's round waits for its lock on the source: it waits for the cut-over to commit", async () => {
    const m = await staged('rw_window');
    for (const f of [
      '00-preflight.source.sql',
      '00-preflight.target.sql',
      '01-setup.source.sql',
      '02-setup.target.sql',
      '03-backfill.target.sql',
      '04-build.target.sql',
      '05-catchup.target.sql',
      '06-fence.source.sql',
    ])
      await m.psql(f);
    const hold = new pg.Client({ connectionString: m.pair.source.url });
    await hold.connect();
    let cut: string;
    try {
      await hold.query('BEGIN; LOCK TABLE app.customers IN SHARE MODE');
      const first = m.outcome('07-cutover.target.sql');
      await waitUntil(
        m.pair.source.url,
        waitingFor(`relation = 'app.customers'::regclass AND mode = 'RowExclusiveLock'`),
        "the cut-over's round waits for its lock on the source",
      );
      // The round's source transaction holds a lock on the group's tables already: the change waits for it.
      const ddl = m.src(`ALTER TABLE app.order_items ADD COLUMN extra integer DEFAULT 7`).then(
        () => 'ok',
        (e: Error) => e.message,
      );
      await waitUntil(
        m.pair.source.url,
        waitingFor(`relation = 'app.order_items'::regclass AND mode = 'AccessExclusiveLock'`),
        'the change waits for the cut-over',
      );
      await hold.query('COMMIT');
      cut = await first;
      expect(await ddl).toBe('ok');
    } finally {
      await hold.end();
    }
    const [cols] = await m.tgt(
      `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 'app.order_items'::regclass AND attname = 'extra'`,
    );
    expect({ cut, extraOnTarget: cols!.n }).toEqual({ cut: 'ok', extraOnTarget: 0 });
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
  }, 60_000);
});
