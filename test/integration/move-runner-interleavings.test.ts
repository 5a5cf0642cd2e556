/**
 * Interleavings of move-interleavings.test.ts (psql) with the runner on one side (issue 15), source 14 -> target
 * 17: a second session holds an advisory lock or a table lock at an exact point of a stage.
 * - the runner's catch-up beside a psql catch-up whose round waits before its DELETE, a row deleted on the source
 *   in between: the rounds take turns, the row does not come back;
 * - the runner's cut-over started while a psql cut-over waits inside its round: it refuses (the cut-over is done:
 *   its first word to the source waits for the rounds' lock), and the target keeps what the application wrote there
 *   since;
 * - two catch-ups pruning the same log entries (psql's prune held on one): the second waits instead of failing to
 *   serialize (a CI failure, fixed by taking the rounds' lock in the prune);
 * - a CLUSTER queued behind the runner's backfill batch: the batch after it stops with the rewrite message, abort
 *   goes through.
 * All passed when written; they pin that the runner, which reads both sides' states to choose what to run, adds no
 * race to the SQL's own guards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareMoveWithTwins } from '../helpers/move-fixture.js';
import { MOVE_SOURCE_MISSING, startMoveServers, type MovePair, type MoveServers } from '../helpers/move-servers.js';
import { newStagedMove, waitingFor, waitUntil } from '../helpers/move-stage-runner.js';

let servers: MoveServers;
let root: string;
const pairs: MovePair[] = [];

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-ril-'));
}, 120_000);

afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

const ROUNDS = { catchupTarget: 50, lockTimeoutMs: 15_000 };

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('move interleavings with the runner', () => {
  it('the runner catches up beside a psql catch-up whose round waits; a row deleted in between does not come back', async () => {
    const m = await newStagedMove(servers, root, 'ril_rounds', ROUNDS);
    pairs.push(m.pair);
    const built = await m.cli('run', '--until', 'build');
    expect(built.code, built.stderr).toBe(0);
    await m.tgt(`CREATE TABLE public.hooked (pid int);
                 CREATE FUNCTION public.hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   IF EXISTS (SELECT FROM public.hooked WHERE pid = pg_backend_pid()) THEN PERFORM pg_advisory_xact_lock_shared(4243); END IF;
                   RETURN NULL; END $$;
                 CREATE TRIGGER hold BEFORE DELETE ON app.customers FOR EACH STATEMENT EXECUTE FUNCTION public.hold()`);
    const [k] = await m.src(`WITH c AS (INSERT INTO app.customers (name) VALUES ('short-lived') RETURNING *)
                             INSERT INTO twin.customers SELECT id, referrer_id, name, email, mood, address, ref, created_at FROM c RETURNING id`);
    const holder = new pg.Client({ connectionString: m.pair.target.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(4243)');
      const first = m.outcome('05-catchup.target.sql', 'INSERT INTO public.hooked VALUES (pg_backend_pid())');
      await waitUntil(m.pair.target.url, waitingFor(`locktype = 'advisory'`), 'the psql round waits before its DELETE');
      await m.src(
        `BEGIN; DELETE FROM app.customers WHERE id = ${k!.id}; DELETE FROM twin.customers WHERE id = ${k!.id}; COMMIT`,
      );
      const second = m.cli('run', '--until', 'catchup');
      // The runner's round waits for the psql round's lock on the state row.
      await waitUntil(
        m.pair.target.url,
        `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event <> 'advisory' AND datname = current_database()) AS ok`,
        'the runner waits for the psql round',
      );
      await holder.query('SELECT pg_advisory_unlock(4243)');
      expect(await first).toBe('ok');
      const out = await second;
      expect(out.code, out.stderr).toBe(0);
    } finally {
      await holder.end();
    }
    await m.tgt(`DROP TRIGGER hold ON app.customers; DROP FUNCTION public.hold(); DROP TABLE public.hooked`);
    const cut = await m.cli('run');
    expect(cut.code, cut.stderr).toBe(0);
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
  }, 60_000);

  it("two catch-ups prune the same log entries: the second waits for the first's commit instead of failing to serialize", async () => {
    // Seen in CI (1 run in ~10): the runner's prune, whose source transaction (REPEATABLE READ through
    // postgres_fdw) began while psql's prune was deleting the same entries, failed with SQLSTATE 40001.
    const m = await newStagedMove(servers, root, 'ril_prune', ROUNDS);
    pairs.push(m.pair);
    const built = await m.cli('run', '--until', 'build');
    expect(built.code, built.stderr).toBe(0);
    await m.src(
      `BEGIN; UPDATE app.customers SET name = name || '+' WHERE id <= 5; UPDATE twin.customers SET name = name || '+' WHERE id <= 5; COMMIT`,
    );
    // The first session to delete a log entry (psql's prune, through its server) takes 4245 for good and waits for
    // 4244 holding the entry's row lock; any other session deletes without waiting.
    const logs = await m.src(
      `SELECT c.oid::regclass::text AS log FROM pg_class c WHERE c.relnamespace = 'shadowpack'::regnamespace AND c.relkind = 'r' AND c.relname LIKE 'mlog%'`,
    );
    expect(logs.length).toBe(3);
    await m.src(`CREATE FUNCTION public.hold_prune() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   IF pg_try_advisory_lock(4245) THEN PERFORM pg_advisory_xact_lock_shared(4244); END IF;
                   RETURN OLD; END $$;
                 ${logs.map((r) => `CREATE TRIGGER hold_prune BEFORE DELETE ON ${r.log} FOR EACH ROW EXECUTE FUNCTION public.hold_prune();`).join('\n')}`);
    const holder = new pg.Client({ connectionString: m.pair.source.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(4244)');
      const first = m.outcome('05-catchup.target.sql');
      await waitUntil(m.pair.source.url, waitingFor(`locktype = 'advisory'`), "psql's prune waits holding an entry");
      const second = m.cli('run', '--until', 'catchup');
      // The runner waits on a row lock: the rounds' state row on the target, or (the defect) the entry on the source.
      const notAdvisory = waitingFor(`locktype <> 'advisory'`);
      const end = Date.now() + 20_000;
      for (;;) {
        const [t] = await m.tgt(notAdvisory);
        const [s] = await m.src(notAdvisory);
        if (t!.ok || s!.ok) break;
        if (Date.now() > end) throw new Error('timed out waiting until the runner waits for a row lock');
        await new Promise((res) => setTimeout(res, 25));
      }
      await holder.query('SELECT pg_advisory_unlock(4244)');
      expect(await first).toBe('ok');
      const out = await second;
      expect(out.code, out.stderr).toBe(0);
    } finally {
      await holder.end();
    }
    await m.src(
      `${logs.map((r) => `DROP TRIGGER hold_prune ON ${r.log};`).join('\n')} DROP FUNCTION public.hold_prune()`,
    );
    const cut = await m.cli('run');
    expect(cut.code, cut.stderr).toBe(0);
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
  }, 60_000);

  it('the runner started while a psql cut-over waits inside its round refuses; the live target keeps its writes', async () => {
    const m = await newStagedMove(servers, root, 'ril_cut', ROUNDS);
    pairs.push(m.pair);
    const caught = await m.cli('run', '--until', 'catchup');
    expect(caught.code, caught.stderr).toBe(0);
    // A key logged before the fence, so the cut-over's round deletes from order_items.
    await m.src(
      `BEGIN; UPDATE app.order_items SET qty = 70 WHERE order_id = 2 AND line = 1; UPDATE twin.order_items SET qty = 70 WHERE order_id = 2 AND line = 1; COMMIT`,
    );
    const fenced = await m.cli('run', '--until', 'fence');
    expect(fenced.code, fenced.stderr).toBe(0);
    await m.tgt(`CREATE FUNCTION public.hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(1); RETURN NULL; END $$;
                 CREATE TRIGGER hold BEFORE DELETE ON app.order_items FOR EACH STATEMENT EXECUTE FUNCTION public.hold()`);
    const holder = new pg.Client({ connectionString: m.pair.target.url });
    await holder.connect();
    let late;
    try {
      await holder.query('SELECT pg_advisory_lock(1)');
      const cutover = m.outcome('07-cutover.target.sql');
      await waitUntil(m.pair.target.url, waitingFor(`locktype = 'advisory'`), 'the psql cut-over waits in its round');
      const runner = m.cli('run');
      await waitUntil(
        m.pair.target.url,
        `SELECT count(*) = 2 AS ok FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
        'the runner waits for the psql cut-over',
      );
      await holder.query('SELECT pg_advisory_unlock(1)');
      expect(await cutover).toBe('ok');
      late = await runner;
    } finally {
      await holder.end();
    }
    await m.tgt(`UPDATE app.order_items SET qty = 999 WHERE order_id = 2 AND line = 1`);
    expect(late.code).toBe(2);
    expect(late.stderr).toMatch(
      // Its first word to the source waits for the rounds' lock, which psql's cut-over holds until it is done.
      /the cut-over is done; the target is live .*Go on with 08-cleanup\.target\.sql/,
    );
    await m.tgt(`DROP TRIGGER hold ON app.order_items; DROP FUNCTION public.hold()`);
    const cleanup = await m.cli('run', '--until', 'cleanup');
    expect(cleanup.code, cleanup.stderr).toBe(0);
    const [row] = await m.tgt(`SELECT qty FROM app.order_items WHERE order_id = 2 AND line = 1`);
    expect(row!.qty).toBe(999);
  }, 60_000);
  it("a CLUSTER queued behind a batch of the runner's backfill stops the next batch with the rewrite message; abort goes through", async () => {
    let pages = 0;
    const m = await newStagedMove(servers, root, 'ril_rewrite', {}, async (c) => {
      await c.query(`CLUSTER app.orders USING orders_pkey`);
      await c.query(`DELETE FROM app.order_items WHERE order_id <= 200; DELETE FROM twin.order_items WHERE order_id <= 200;
                     DELETE FROM app.orders WHERE id <= 200; DELETE FROM twin.orders WHERE id <= 200`);
      pages = Number((await c.query<{ p: string }>(`SELECT pg_relation_size('app.orders') / 8192 AS p`)).rows[0]!.p);
      return { batchPages: Math.ceil(pages / 2) };
    });
    pairs.push(m.pair);
    expect(pages).toBeGreaterThanOrEqual(2);
    const setup = await m.cli('run', '--until', 'setup');
    expect(setup.code, setup.stderr).toBe(0);
    await m.tgt(`CREATE FUNCTION public.hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NULL; END $$;
                 CREATE TRIGGER hold AFTER INSERT ON app.orders FOR EACH STATEMENT EXECUTE FUNCTION public.hold()`);
    const holder = new pg.Client({ connectionString: m.pair.target.url });
    const rewriter = new pg.Client({ connectionString: m.pair.source.url });
    await holder.connect();
    await rewriter.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(4242)');
      const backfill = m.cli('run', '--until', 'backfill');
      await waitUntil(m.pair.target.url, waitingFor(`locktype = 'advisory'`), 'batch 1 of orders waits on the hook');
      await rewriter.query('BEGIN');
      const rewrite = rewriter.query(
        'LOCK TABLE app.orders IN ACCESS EXCLUSIVE MODE; CLUSTER app.orders USING orders_pkey',
      );
      await waitUntil(
        m.pair.source.url,
        waitingFor(`relation = 'app.orders'::regclass AND mode = 'AccessExclusiveLock'`),
        'the rewrite waits',
      );
      await holder.query('SELECT pg_advisory_unlock(4242)');
      await rewrite;
      await waitUntil(
        m.pair.source.url,
        waitingFor(`relation = 'app.orders'::regclass AND mode = 'AccessShareLock'`),
        'batch 2 waits for the rewrite',
      );
      await rewriter.query('COMMIT');
      const out = await backfill;
      expect(out.code).toBe(2);
      expect(out.stderr).toMatch(/was rewritten .* during the backfill/);
    } finally {
      await holder.end();
      await rewriter.end();
    }
    await m.tgt(`DROP TRIGGER hold ON app.orders; DROP FUNCTION public.hold()`);
    const aborted = await m.cli('run', '--stage', 'abort');
    expect(aborted.code, aborted.stderr).toBe(0);
  }, 60_000);
});
