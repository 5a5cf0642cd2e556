/**
 * The fence changed on the source while the cut-over's one transaction is open (issue 15), source 14 -> target 17,
 * with psql and the runner. 07-cutover.target.sql applies the last round in a source snapshot that must see the
 * fence in force. Before the fix, that was all: a transaction that disabled the fence (or enabled it for replica
 * sessions only) and committed while the cut-over waited after its round (held by a lock on the target), then a
 * write, both committed, and the cut-over went through: orders row 7 was 5001 on the source and 8 on the live
 * target. Now the read of the fence takes ROW EXCLUSIVE on the group's tables on the source, held to the cut-over's
 * commit (the change waits for it, the write behind the change), and requires the fence rows its snapshot sees to
 * be unchanged since (xmax): a change and a write that committed between the snapshot and that lock (held by a
 * SHARE lock on app.customers) make the cut-over refuse; without the xmax check it went through without the write.
 * With --reversible the same holds for the target's fence and 93-revert.source.sql's last round (held after its
 * round by a lock on the source): without the lock the target's write committed inside the revert.
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

const REVERT_PASSWORD_ENV = 'SHADOWPACK_REVERT_FDW_PASSWORD';
let savedRevertPassword: string | undefined;

beforeAll(async () => {
  savedRevertPassword = process.env[REVERT_PASSWORD_ENV];
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-cutover-fence-'));
}, 120_000);

afterAll(async () => {
  if (savedRevertPassword === undefined) delete process.env[REVERT_PASSWORD_ENV];
  else process.env[REVERT_PASSWORD_ENV] = savedRevertPassword;
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

const BEFORE_FENCE = [
  '00-preflight.source.sql',
  '00-preflight.target.sql',
  '01-setup.source.sql',
  '02-setup.target.sql',
  '03-backfill.target.sql',
  '04-build.target.sql',
  '05-catchup.target.sql',
  '06-fence.source.sql',
];

/** A move fenced with psql, or with the runner; the cut-over's statements may wait 15 s for a lock. */
async function fenced(name: string, executor: 'psql' | 'runner'): Promise<StagedMove> {
  const m = await newStagedMove(servers, root, name, { lockTimeoutMs: 15_000 }, undefined, {
    customers: 30,
    orders: 100,
  });
  pairs.push(m.pair);
  if (executor === 'psql') for (const f of BEFORE_FENCE) await m.psql(f);
  else {
    const out = await m.cli('run', '--until', 'fence');
    expect(out.code, out.stderr).toBe(0);
  }
  return m;
}

const NOT_IN_FORCE =
  /the fence on app\.customers, app\.order_items, app\.orders is not in force on the source \(its trigger shadowpack_mfence_\w+ or shadowpack_mfencerow_\w+ was disabled/;

/** An update of orders row 7, mirrored in its twin in the same transaction. */
const write = (qty: number) =>
  `BEGIN; UPDATE app.orders SET qty = ${qty} WHERE id = 7; UPDATE twin.orders SET qty = ${qty} WHERE id = 7; COMMIT`;

async function session(url: string): Promise<{ c: pg.Client; pid: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  c.on('error', () => undefined);
  const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  return { c, pid };
}

/** The fence's row-level twin (a logical replication apply worker fires row triggers only). */
const fenceRow = (fence: string): string => fence.replace('_mfence_', '_mfencerow_');

const settle = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: Error) => e.message,
  );

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('the fence changed inside the cut-over', () => {
  it.each([
    ['psql', 'DISABLE TRIGGER'],
    ['runner', 'ENABLE REPLICA TRIGGER'],
  ] as const)(
    '%s: the fence %s by a transaction while the cut-over waits after its last round (a lock on the target), then a write: every write committed before the cut-over is on the target',
    async (executor, how) => {
      const m = await fenced(`cf_${executor}`, executor);
      const [f] = await m.src(
        `SELECT DISTINCT tgname AS t FROM pg_trigger WHERE tgname LIKE 'shadowpack\\_mfence\\_%'`,
      );
      const fence = f!.t as string;
      // Holds the cut-over after its round: its statements on app.orders on the target (owner, deny trigger) wait.
      const hold = await session(m.pair.target.url);
      const ddl = await session(m.pair.source.url);
      const writer = await session(m.pair.source.url);
      try {
        await hold.c.query('BEGIN; LOCK TABLE app.orders IN ACCESS SHARE MODE');
        const cutover =
          executor === 'psql'
            ? m.outcome('07-cutover.target.sql')
            : m.cli('run', '--until', 'cutover').then((o) => (o.code === 0 ? 'ok' : o.stderr));
        await waitUntil(
          m.pair.target.url,
          waitingFor(`relation = 'app.orders'::regclass AND mode = 'AccessExclusiveLock'`),
          'the cut-over waits on the target after its round',
        );
        const disabled = settle(ddl.c.query(`ALTER TABLE app.orders ${how} ${fence}, ${how} ${fenceRow(fence)}`));
        // The change either committed or waits for a lock the cut-over holds on the source.
        await waitUntil(
          m.pair.source.url,
          `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = ${ddl.pid} AND query LIKE 'ALTER TABLE%' AND (state <> 'active' OR wait_event_type = 'Lock')) AS ok`,
          'the fence change committed or waits',
        );
        // A write while the cut-over is open: it waits behind the fence change (and gives up), or commits.
        const wrote = await settle(writer.c.query(`SET lock_timeout = '300ms'; ${write(5001)}`));
        await writer.c.query('ROLLBACK').catch(() => undefined);
        await hold.c.query('COMMIT');
        const cut = await cutover;
        const changed = await disabled;
        const [src] = await m.src(`SELECT qty FROM app.orders WHERE id = 7`);
        const [tgt] = await m.tgt(`SELECT qty FROM app.orders WHERE id = 7`);
        // Without the fix: the change and the write committed inside the cut-over, which went through; the
        // write is on the source only.
        expect({ cut, changed, wrote, source: src!.qty, target: tgt!.qty }).toEqual({
          cut: 'ok',
          changed: 'ok',
          wrote: expect.stringMatching(/lock timeout/),
          source: tgt!.qty,
          target: tgt!.qty,
        });
        const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
        expect(same.equal, JSON.stringify(same)).toBe(true);
      } finally {
        await hold.c.end();
        await ddl.c.end();
        await writer.c.end();
      }
    },
    60_000,
  );
  it.each(['runner', 'psql'] as const)(
    "%s: the fence disabled and a write committed between the cut-over's snapshot and its lock on the source: the cut-over refuses; with the fence ENABLE ALWAYS again it goes through and the write arrives",
    async (executor) => {
      const m = await fenced(`cfs_${executor}`, executor);
      const [f] = await m.src(
        `SELECT DISTINCT tgname AS t FROM pg_trigger WHERE tgname LIKE 'shadowpack\\_mfence\\_%'`,
      );
      const fence = f!.t as string;
      const cutover = () =>
        executor === 'psql'
          ? m.outcome('07-cutover.target.sql')
          : m.cli('run', '--until', 'cutover').then((o) => (o.code === 0 ? 'ok' : o.stderr));
      // Holds the cut-over's lock on the source (app.customers first) after its snapshot was taken.
      const hold = await session(m.pair.source.url);
      try {
        await hold.c.query('BEGIN; LOCK TABLE app.customers IN SHARE MODE');
        const first = cutover();
        await waitUntil(
          m.pair.source.url,
          waitingFor(`relation = 'app.customers'::regclass AND mode = 'RowExclusiveLock'`),
          "the cut-over's round waits for its lock on the source",
        );
        await m.src(`ALTER TABLE app.orders DISABLE TRIGGER ${fence}, DISABLE TRIGGER ${fenceRow(fence)}`);
        await m.src(write(5002));
        await hold.c.query('COMMIT');
        expect(await first).toMatch(NOT_IN_FORCE);
      } finally {
        await hold.c.end();
      }
      await m.src(`ALTER TABLE app.orders ENABLE ALWAYS TRIGGER ${fence}, ENABLE ALWAYS TRIGGER ${fenceRow(fence)}`);
      // A change of the fence that rolled back leaves its xid on the row (xmax): the fence is still in force.
      await m.src(`BEGIN; ALTER TABLE app.customers DISABLE TRIGGER ${fence}; ROLLBACK`);
      const [aborted] = await m.src(
        `SELECT xmax::text <> '0' AS x FROM pg_trigger WHERE tgname = '${fence}' AND tgrelid = 'app.customers'::regclass`,
      );
      expect(aborted!.x).toBe(true);
      expect(await cutover()).toBe('ok');
      const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
      expect(same.equal, JSON.stringify(same)).toBe(true);
      const [row] = await m.tgt(`SELECT qty FROM app.orders WHERE id = 7`);
      expect(row!.qty).toBe(5002);
    },
    60_000,
  );
  it.each(['psql', 'runner'] as const)(
    "--reversible, %s: the target's fence disabled by a transaction while 93-revert.source.sql waits after its last round (a lock on the source), then a write on the target: it waits, and the write does not commit before the revert",
    async (executor) => {
      const m = await newStagedMove(
        servers,
        root,
        `cfr_${executor}`,
        { reversible: true, lockTimeoutMs: 15_000 },
        undefined,
        {
          customers: 30,
          orders: 100,
        },
      );
      pairs.push(m.pair);
      process.env[REVERT_PASSWORD_ENV] = decodeURIComponent(new URL(m.pair.target.url).password);
      const out = await m.cli('run', '--until', 'cutover');
      expect(out.code, out.stderr).toBe(0);
      await m.psql('91-revert.source.sql');
      await m.psql('92-revert.target.sql');
      const [f] = await m.tgt(
        `SELECT DISTINCT tgname AS t FROM pg_trigger WHERE tgname LIKE 'shadowpack\\_mfence\\_%'`,
      );
      const fence = f!.t as string;
      // Holds 93 after its round: it drops the source's fence (ACCESS EXCLUSIVE on each table) last.
      const hold = await session(m.pair.source.url);
      const ddl = await session(m.pair.target.url);
      const writer = await session(m.pair.target.url);
      try {
        await hold.c.query('BEGIN; LOCK TABLE app.orders IN ACCESS SHARE MODE');
        const last =
          executor === 'psql'
            ? m.outcome('93-revert.source.sql')
            : m.cli('run', '--stage', 'revert').then((o) => (o.code === 0 ? 'ok' : o.stderr));
        await waitUntil(
          m.pair.source.url,
          waitingFor(`relation = 'app.orders'::regclass AND mode = 'AccessExclusiveLock'`),
          'the last round of the revert waits on the source after its round',
        );
        const disabled = settle(
          ddl.c.query(`ALTER TABLE app.orders DISABLE TRIGGER ${fence}, DISABLE TRIGGER ${fenceRow(fence)}`),
        );
        await waitUntil(
          m.pair.target.url,
          `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = ${ddl.pid} AND query LIKE 'ALTER TABLE%' AND (state <> 'active' OR wait_event_type = 'Lock')) AS ok`,
          'the fence change committed or waits',
        );
        const wrote = await settle(
          writer.c.query(`SET lock_timeout = '300ms'; UPDATE app.orders SET qty = 6001 WHERE id = 7`),
        );
        await hold.c.query('COMMIT');
        const reverted = await last;
        const changed = await disabled;
        const [src] = await m.src(`SELECT qty FROM app.orders WHERE id = 7`);
        const [tgt] = await m.tgt(`SELECT qty FROM app.orders WHERE id = 7`);
        expect({ reverted, changed, wrote, source: src!.qty, target: tgt!.qty }).toEqual({
          reverted: 'ok',
          changed: 'ok',
          wrote: expect.stringMatching(/lock timeout/),
          source: src!.qty,
          target: src!.qty,
        });
      } finally {
        await hold.c.end();
        await ddl.c.end();
        await writer.c.end();
      }
    },
    60_000,
  );
});
