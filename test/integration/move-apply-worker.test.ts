/**
 * A logical replication subscription writing into a table of the group (issue 15), source 14 -> target 17, psql.
 * Its apply worker runs with session_replication_role = replica and fires row triggers only, never statement
 * triggers (PostgreSQL's documentation, "Logical Replication Architecture"). The capture trigger (AFTER ROW,
 * ENABLE ALWAYS) logged its writes on the source, but the fence and the target's deny trigger were statement
 * triggers only: after 06-fence.source.sql the worker went on writing on the source, and what it wrote after the
 * cut-over's snapshot stayed there (customers 100003: on the source, not on the live target); before the cut-over
 * a worker on the target wrote rows that no round removes. Both now have a row-level twin (ENABLE ALWAYS).
 * The revert's fence on the target (92-revert.target.sql) likewise: before, a worker on the target went on
 * applying after it. A replicated TRUNCATE fires statement-level TRUNCATE triggers: the TRUNCATE guard refuses it (with the guard
 * disabled it emptied the source's app.order_items, which no change log records).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/dev/embedded-server.js';
import { withClient } from '../helpers/db.js';
import { compareMoveWithTwins } from '../helpers/move-fixture.js';
import {
  MOVE_SOURCE_MISSING,
  SOURCE_MAJOR,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';
import { newStagedMove, waitUntil, type StagedMove } from '../helpers/move-stage-runner.js';

let servers: MoveServers;
let root: string;
let publisher: EmbeddedServer | undefined;
const REVERT_PASSWORD_ENV = 'SHADOWPACK_REVERT_FDW_PASSWORD';
const savedRevertPassword = process.env[REVERT_PASSWORD_ENV];
const pairs: MovePair[] = [];
const subscriptions: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-apply-'));
}, 120_000);

afterAll(async () => {
  if (savedRevertPassword === undefined) delete process.env[REVERT_PASSWORD_ENV];
  else process.env[REVERT_PASSWORD_ENV] = savedRevertPassword;
  for (const drop of subscriptions) await drop().catch(() => undefined);
  await publisher?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

const CAUGHT_UP = [
  '00-preflight.source.sql',
  '00-preflight.target.sql',
  '01-setup.source.sql',
  '02-setup.target.sql',
  '03-backfill.target.sql',
  '04-build.target.sql',
  '05-catchup.target.sql',
];

/**
 * A database `db` on a publisher (wal_level logical, started once for the file) with app.customers (id, name) and
 * app.order_items (its key and two columns) in publication sp_pub.
 */
async function publish(db: string): Promise<{ pub: (sql: string) => Promise<unknown>; conninfo: string }> {
  publisher ??= await startEmbeddedPostgres({
    major: SOURCE_MAJOR,
    settings: { wal_level: 'logical', shared_buffers: '16MB', max_connections: '20' },
  });
  await withClient(publisher.url, (c) => c.query(`CREATE DATABASE ${db}`));
  const u = new URL(publisher.url);
  u.pathname = `/${db}`;
  const pub = (sql: string) => withClient(u.toString(), (c) => c.query(sql));
  await pub(`CREATE SCHEMA app; CREATE TABLE app.customers (id integer PRIMARY KEY, name text NOT NULL);
             CREATE TABLE app.order_items (order_id bigint, line integer, sku text NOT NULL, qty integer NOT NULL, PRIMARY KEY (order_id, line));
             CREATE PUBLICATION sp_pub FOR TABLE app.customers, app.order_items`);
  const conninfo = `host=${u.hostname} port=${u.port} dbname=${db} user=${decodeURIComponent(u.username)} password=${decodeURIComponent(u.password)}`;
  return { pub, conninfo };
}

/**
 * A subscription `name` on `url` to a publisher database of its own (no initial copy), and a function that inserts
 * customer `id` on the publisher (then runs `more` in the same transaction) and resolves to whether the
 * subscriber's apply worker applied it. The worker fills the columns the publisher lacks from their defaults: ref
 * draws from app.shared_ref_seq (not transactional), so the sequence moving shows that the worker tried the row;
 * its transaction is over (committed, or rolled back and the worker gone) once it holds no lock on the table.
 */
async function subscribe(url: string, name: string): Promise<(id: number, more?: string) => Promise<boolean>> {
  const { pub, conninfo } = await publish(`${name}_pub`);
  const on = (sql: string) => withClient(url, (c) => c.query(sql));
  await on(`CREATE SUBSCRIPTION ${name} CONNECTION '${conninfo}' PUBLICATION sp_pub WITH (copy_data = false)`);
  subscriptions.push(() => on(`DROP SUBSCRIPTION IF EXISTS ${name}`));
  return async (id: number, more = '') => {
    const [{ v }] = (await on(`SELECT (last_value, is_called)::text AS v FROM app.shared_ref_seq`)).rows as [
      { v: string },
    ];
    await pub(`BEGIN; INSERT INTO app.customers VALUES (${id}, 'from the subscription ${id}'); ${more}; COMMIT`);
    await waitUntil(
      url,
      `SELECT (last_value, is_called)::text <> '${v}' AS ok FROM app.shared_ref_seq`,
      `an apply of ${id}`,
    );
    await waitUntil(
      url,
      `SELECT NOT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                           WHERE a.backend_type = 'logical replication worker' AND l.relation = 'app.customers'::regclass) AS ok`,
      `the end of the apply of ${id}`,
    );
    const [{ n }] = (await on(`SELECT count(*)::int AS n FROM app.customers WHERE id = ${id}`)).rows as [{ n: number }];
    return n === 1;
  };
}

const onTarget = async (m: StagedMove, id: number) =>
  (await m.tgt(`SELECT count(*)::int AS n FROM app.customers WHERE id = ${id}`))[0]!.n === 1;

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('a subscription applying into the group', () => {
  it('on the source: captured before the fence, refused after it; nothing stays on the source only', async () => {
    const m = await newStagedMove(servers, root, 'aw_src');
    pairs.push(m.pair);
    const applied = await subscribe(m.pair.source.url, 'sp_sub_src');
    for (const f of CAUGHT_UP) await m.psql(f);
    expect(await applied(100001)).toBe(true);
    await m.psql('06-fence.source.sql');
    const afterFence = await applied(100002);
    if (!afterFence) {
      // The row-level fence alone turned off: the worker's retry gets through, and the cut-over refuses until the
      // fence is ENABLE ALWAYS again; then the row it let through arrives.
      const [{ t }] = (await m.src(
        `SELECT DISTINCT tgname AS t FROM pg_trigger WHERE tgname LIKE 'shadowpack\\_mfencerow\\_%'`,
      )) as [{ t: string }];
      await m.src(`ALTER TABLE app.customers DISABLE TRIGGER ${t}`);
      await waitUntil(
        m.pair.source.url,
        `SELECT EXISTS (SELECT FROM app.customers WHERE id = 100002) AS ok`,
        'the retry',
      );
      expect(await m.outcome('07-cutover.target.sql')).toMatch(
        /the fence on .* is not in force on the source \(its trigger shadowpack_mfence_\w+ or shadowpack_mfencerow_\w+ was disabled/,
      );
      await m.src(`ALTER TABLE app.customers ENABLE ALWAYS TRIGGER ${t}`);
    }
    await m.psql('07-cutover.target.sql');
    expect(await onTarget(m, 100001)).toBe(true);
    expect(await onTarget(m, 100002)).toBe(true);
    // Without the row-level fence: one more after the cut-over stays on the source only.
    const afterCutover = afterFence && (await applied(100003));
    await m.src('DROP SUBSCRIPTION sp_sub_src');
    expect({ afterFence, afterCutover, lost: afterCutover && !(await onTarget(m, 100003)) }).toEqual({
      afterFence: false,
      afterCutover: false,
      lost: false,
    });
  }, 60_000);

  it('on the target before the cut-over: refused, so the target equals the source after it', async () => {
    const m = await newStagedMove(servers, root, 'aw_tgt');
    pairs.push(m.pair);
    for (const f of CAUGHT_UP.slice(0, 4)) await m.psql(f);
    const applied = await subscribe(m.pair.target.url, 'sp_sub_tgt');
    const early = await applied(100011);
    await m.tgt('DROP SUBSCRIPTION sp_sub_tgt');
    for (const f of [...CAUGHT_UP.slice(4), '06-fence.source.sql', '07-cutover.target.sql']) await m.psql(f);
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect({ early, equal: same.equal, customers: same.tables.customers }).toEqual({
      early: false,
      equal: true,
      customers: same.tables.customers,
    });
  }, 60_000);

  it('on the source before the fence: a replicated TRUNCATE is refused (the TRUNCATE guard fires for the worker)', async () => {
    const m = await newStagedMove(servers, root, 'aw_trunc');
    pairs.push(m.pair);
    const applied = await subscribe(m.pair.source.url, 'sp_sub_trunc');
    for (const f of CAUGHT_UP) await m.psql(f);
    const [before] = await m.src(`SELECT count(*)::int AS n FROM app.order_items`);
    // One transaction: the customer applied first, then the TRUNCATE; refused, neither stays.
    const both = await applied(100021, 'TRUNCATE app.order_items');
    await m.src('DROP SUBSCRIPTION sp_sub_trunc');
    const [after] = await m.src(`SELECT count(*)::int AS n FROM app.order_items`);
    expect({ both, items: after!.n }).toEqual({ both: false, items: before!.n });
    for (const f of ['06-fence.source.sql', '07-cutover.target.sql']) await m.psql(f);
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
  }, 60_000);

  it("--reversible, on the target after the revert's fence: refused, so nothing stays on the target only", async () => {
    const m = await newStagedMove(servers, root, 'aw_rev', { reversible: true }, undefined, {
      customers: 30,
      orders: 100,
    });
    pairs.push(m.pair);
    process.env[REVERT_PASSWORD_ENV] = decodeURIComponent(new URL(m.pair.target.url).password);
    for (const f of [...CAUGHT_UP, '06-fence.source.sql', '07-cutover.target.sql', '91-revert.source.sql'])
      await m.psql(f);
    const applied = await subscribe(m.pair.target.url, 'sp_sub_rev');
    expect(await applied(100031)).toBe(true);
    await m.psql('92-revert.target.sql');
    const afterFence = await applied(100032);
    await m.psql('93-revert.source.sql');
    const onSource = async (id: number) =>
      (await m.src(`SELECT count(*)::int AS n FROM app.customers WHERE id = ${id}`))[0]!.n === 1;
    expect(await onSource(100031)).toBe(true);
    // Without the row-level fence: one more after the revert stays on the target only.
    const afterRevert = afterFence && (await applied(100033));
    await m.tgt('DROP SUBSCRIPTION sp_sub_rev');
    expect({ afterFence, afterRevert, lost: afterRevert && !(await onSource(100033)) }).toEqual({
      afterFence: false,
      afterRevert: false,
      lost: false,
    });
  }, 60_000);
});
