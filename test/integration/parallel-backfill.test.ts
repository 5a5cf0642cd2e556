/**
 * The backfill and the build in several sessions at once: `run --jobs 4`, and 02-backfill.sql and
 * 03-build.sql in four psql sessions, under writers that keep a twin. A test lock on the copy holds
 * every session's first INSERT (or index build), so the four sessions are seen to hold a range (an
 * item) each at the same moment (parallelism shown, not assumed); then one psql session is killed
 * (or the whole runner), and what it held is done by the others, or by the run that resumes. The
 * twin and the catalog are the judges.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { catalogSnapshot, cli, leftovers, planTable, psql, ROOT, type Exit } from '../helpers/rebuild.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';

const ROWS = 40_000;
const JOBS = 4;
/**
 * How long a session waits for the test's lock (the plan's lock_timeout): the first session to reach
 * it waits until the last one has, and under load the last can start far more than the default
 * 30 s later; a session that gave up would leave the wait for all four unmet.
 */
const HELD_MS = 300_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const databases: FreshDatabase[] = [];

afterAll(async () => {
  for (const db of databases.splice(0)) await db.drop().catch(() => undefined);
});

async function prepared(prefix: string): Promise<FreshDatabase> {
  const db = await freshDatabase(prefix);
  databases.push(db);
  await withClient(db.url, (c) => createDemoSchema(c, ROWS));
  return db;
}

interface Running {
  readonly child: ChildProcess;
  readonly done: Promise<Exit>;
  /** Set when the process has ended: a wait for its sessions then fails at once, saying why. */
  exit: Exit | null;
  /** Resolves once its stderr matches `re`; rejects if the process ends first. */
  said(re: RegExp): Promise<void>;
}

function start(command: string, args: string[]): Running {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const l of listeners) l();
  });
  const running: Running = {
    child,
    exit: null,
    done: new Promise<Exit>((res) =>
      child.on('close', (code, signal) => {
        running.exit = { code, signal, stdout, stderr };
        for (const l of listeners) l();
        res(running.exit);
      }),
    ),
    said: (re) =>
      new Promise<void>((res, rej) => {
        const check = () => {
          if (re.test(stderr)) res();
          else if (running.exit !== null)
            rej(new Error(`${command} ended before saying ${re}: ${ended(running.exit)}`));
          else return;
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      }),
  };
  return running;
}

const ended = (e: Exit) => `exit ${e.code ?? e.signal}; stderr: ${e.stderr.slice(-1500)}`;

const runner = (plan: LoadedPlan, url: string, ...args: string[]) =>
  start(process.execPath, [
    '--import',
    'tsx',
    join(ROOT, 'src/cli/main.ts'),
    'run',
    '--plan',
    plan.dir,
    '--url',
    url,
    ...args,
  ]);
const psqlFile = (url: string, file: string) =>
  start('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file]);

/**
 * Polls until `sql` returns a row. Fails at once, with its stderr, when a process in `alive` has
 * ended meanwhile (the sessions it ran are gone: no wait could succeed), so a timeout means only
 * that the server never got there; the clock starts when the processes are known to be running.
 */
async function waitFor(
  what: string,
  c: pg.ClientBase,
  sql: string,
  {
    params = [],
    alive = [],
    timeoutMs = 60_000,
  }: { params?: unknown[]; alive?: readonly Running[]; timeoutMs?: number } = {},
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    // pg_stat_activity is read once per transaction: the holder's open transaction would see it frozen.
    await c.query('SELECT pg_stat_clear_snapshot()');
    if (((await c.query(sql, params)).rowCount ?? 0) > 0) return;
    const gone = alive.find((r) => r.exit !== null);
    if (gone !== undefined) throw new Error(`waiting for ${what}, a process ended: ${ended(gone.exit!)}`);
    if (Date.now() > until) {
      const act = await c.query(
        `SELECT a.pid, a.application_name, a.state, a.wait_event_type, a.wait_event, left(a.query, 60) AS q, (SELECT string_agg(l.relation::regclass::text || ':' || l.mode, ',') FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted) AS waiting FROM pg_stat_activity a WHERE a.datname = current_database()`,
      );
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(act.rows)}`);
    }
    await sleep(20);
  }
}

/** Backfill sessions of this run whose INSERT waits for the test's lock on the copy: each holds a range. */
const waitingSessions = (id: string, n: number) => `
  SELECT FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted AND l.relation = 'app._sp_${id}_new'::regclass
   WHERE a.application_name = 'shadowpack/${id}/backfill' HAVING count(*) = ${n}`;

async function finishWithPsql(plan: LoadedPlan, url: string, from: string): Promise<void> {
  const stages = plan.manifest.stages.filter((s) => !s.offPath);
  for (const s of stages.slice(stages.findIndex((x) => x.name === from))) {
    const r = await psql(url, join(plan.dir, s.file));
    expect(r.stderr, s.file).not.toMatch(/ERROR/);
    expect(r.code, s.file).toBe(0);
  }
}

async function expectEqualsTwin(url: string): Promise<void> {
  await withClient(url, async (c) => {
    const cmp = await compareWithTwin(c);
    expect(cmp).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
    expect(cmp.rows).toBeGreaterThan(ROWS / 2);
    expect(await leftovers(c)).toEqual([]);
  });
}

describe('the backfill in four sessions at once, under writers', () => {
  it(`run --jobs ${JOBS}: four sessions hold a range each; killed there, the next run --jobs ${JOBS} resumes at the run's rows/s ceiling; equal to the twin`, async () => {
    const db = await prepared('parallel_runner');
    const rate = 10_000;
    const plan = await planTable(db.url, 'app', 'orders', {
      batchPages: 20,
      advisoryWaitSeconds: 30,
      maxRowsPerSecond: rate,
      waitLockTimeoutMs: HELD_MS,
    });
    const id = plan.manifest.runId;
    const writers = await startWriters({ connectionString: db.url }, 3, 2);
    const setup = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'setup']);
    expect(setup.code, setup.stderr).toBe(0);
    const holder = new pg.Client({ connectionString: db.url });
    holder.on('error', () => undefined);
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE app._sp_${id}_new IN SHARE MODE`);
      const first = runner(plan, db.url, '--jobs', String(JOBS), '--until', 'cleanup');
      // The wait's clock starts when the runner starts the stage: starting node under load took 27 s
      // at a load of 36, and in a fresh-clone npm test the wait once timed out with no session of
      // the runner connected yet.
      await first.said(/» backfill /);
      await waitFor(`${JOBS} sessions holding a range each`, holder, waitingSessions(id, JOBS), { alive: [first] });
      // The runner dies with four ranges claimed and none copied: every claim ends with its session.
      first.child.kill('SIGKILL');
      expect((await first.done).signal).toBe('SIGKILL');
      await waitFor(
        'the sessions to end',
        holder,
        `SELECT FROM (SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'shadowpack/${id}/backfill') a WHERE n = 0`,
      );
      await holder.query('COMMIT');
    } finally {
      await holder.end().catch(() => undefined);
    }
    const second = await runner(plan, db.url, '--jobs', String(JOBS), '--until', 'cleanup').done;
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/done/);
    // The ceiling is the run's, not each session's: four sessions together copy no faster than it
    // (less the last batch of each, paced after it ran). Per session it would take a quarter of this.
    const backfillMs = Number(/backfill (\d+) ms/.exec(second.stdout)?.[1]);
    const copied = Number(/backfill: ([\d,]+) rows/.exec(second.stdout)?.[1]?.replaceAll(',', ''));
    expect(copied).toBeGreaterThan(ROWS / 2);
    expect(backfillMs).toBeGreaterThanOrEqual(((copied - JOBS * 2_500) / rate) * 1000);
    await sleep(200);
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await expectEqualsTwin(db.url);
  }, 240_000);

  it(`02-backfill.sql and 03-build.sql in ${JOBS} psql sessions: one killed holding a range (an index), the others copy (build) it; equal to the twin`, async () => {
    const db = await prepared('parallel_psql');
    const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
    const plan = await planTable(db.url, 'app', 'orders', {
      batchPages: 20,
      advisoryWaitSeconds: 30,
      buildMaintenanceWorkMemMb: 96,
      waitLockTimeoutMs: HELD_MS,
    });
    // The build sessions' memory: in the script, and in the review as jobs × setting.
    expect(plan.files.get('03-build.sql')).toContain("SET maintenance_work_mem = '96MB';");
    expect(plan.files.get('README.md')).toContain('jobs × 96 MB in all (1 session: 96 MB, 2: 192 MB, 4: 384 MB)');
    const id = plan.manifest.runId;
    const writers = await startWriters({ connectionString: db.url }, 3, 2);
    for (const f of ['00-preflight.sql', '01-setup.sql']) {
      const r = await psql(db.url, join(plan.dir, f));
      expect(r.code, r.stderr).toBe(0);
    }
    const holder = new pg.Client({ connectionString: db.url });
    holder.on('error', () => undefined);
    await holder.connect();
    let sessions: Running[] = [];
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE app._sp_${id}_new IN SHARE MODE`);
      sessions = Array.from({ length: JOBS }, () => psqlFile(db.url, join(plan.dir, '02-backfill.sql')));
      await waitFor(`${JOBS} sessions holding a range each`, holder, waitingSessions(id, JOBS), { alive: sessions });
      // psql killed: its server session notices within client_connection_check_interval (1 s) and ends.
      sessions[0]!.child.kill('SIGKILL');
      await waitFor('the killed session to end', holder, waitingSessions(id, JOBS - 1), { alive: sessions.slice(1) });
      await holder.query('COMMIT');
    } finally {
      await holder.end().catch(() => undefined);
    }
    const exits = await Promise.all(sessions.map((s) => s.done));
    expect(exits[0]!.signal).toBe('SIGKILL');
    for (const e of exits.slice(1)) {
      expect(e.stderr).not.toMatch(/ERROR/);
      expect(e.code, e.stderr).toBe(0);
    }
    await withClient(db.url, async (c) => {
      const st = (
        await c.query('SELECT stage, backfill_next, backfill_end FROM shadowpack.runs WHERE run_id = $1', [id])
      ).rows[0];
      expect(st).toMatchObject({ stage: 'backfill' });
      expect(Number(st.backfill_next)).toBe(Number(st.backfill_end));
      expect(Number((await c.query(`SELECT count(*) AS n FROM shadowpack.ranges_${id}`)).rows[0].n)).toBe(0);
    });
    // The build in four sessions too: the test's lock on the copy holds each one's first index build,
    // so each is seen holding an item of its own; one is killed there, and its item is built by the
    // others' second pass.
    const builder = new pg.Client({ connectionString: db.url });
    builder.on('error', () => undefined);
    await builder.connect();
    try {
      await builder.query('BEGIN');
      await builder.query(`LOCK TABLE app._sp_${id}_new IN ROW EXCLUSIVE MODE`);
      sessions = Array.from({ length: JOBS }, () => psqlFile(db.url, join(plan.dir, '03-build.sql')));
      const holdingItems = (n: number) => `SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid)
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid > 5460043 AND a.application_name = 'shadowpack/${id}/build'
        HAVING count(DISTINCT l.classid) = ${n}`;
      await waitFor(`${JOBS} build sessions holding an item each`, builder, holdingItems(JOBS), { alive: sessions });
      sessions[1]!.child.kill('SIGKILL');
      await waitFor('the killed build session to end', builder, holdingItems(JOBS - 1), {
        alive: sessions.filter((_, i) => i !== 1),
      });
      await builder.query('COMMIT');
    } finally {
      await builder.end().catch(() => undefined);
    }
    const built = await Promise.all(sessions.map((s) => s.done));
    expect(built[1]!.signal).toBe('SIGKILL');
    for (const e of built.filter((_, i) => i !== 1)) {
      expect(e.stderr).not.toMatch(/ERROR/);
      expect(e.code, e.stderr).toBe(0);
    }
    await finishWithPsql(plan, db.url, 'catchup');
    await sleep(200);
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await expectEqualsTwin(db.url);
    await withClient(db.url, async (c) => expect(await catalogSnapshot(c, 'app', 'orders')).toEqual(before));
  }, 240_000);

  it('a session that waits longer than a second for another to settle the log says so and goes on', async () => {
    const db = await freshDatabase('parallel_settle_wait');
    databases.push(db);
    await withClient(db.url, (c) => createDemoSchema(c, 2_000));
    const plan = await planTable(db.url, 'app', 'orders');
    const id = plan.manifest.runId;
    for (const f of ['00-preflight.sql', '01-setup.sql']) {
      const r = await psql(db.url, join(plan.dir, f));
      expect(r.code, r.stderr).toBe(0);
    }
    // The lock the settling session holds (the run's two keys as one bigint), held here instead.
    const settleKey = (BigInt(0x53504b) << 32n) | BigInt(parseInt(id.slice(0, 7), 16));
    const holder = new pg.Client({ connectionString: db.url });
    holder.on('error', () => undefined);
    await holder.connect();
    let backfill: Running;
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [settleKey.toString()]);
      backfill = psqlFile(db.url, join(plan.dir, '02-backfill.sql'));
      await waitFor(
        'the backfill to wait for the settle lock',
        holder,
        `SELECT FROM shadowpack.runs WHERE run_id = $1 AND backfill_next = backfill_end`,
        { params: [id], alive: [backfill] },
      );
      await sleep(1_500);
    } finally {
      await holder.end().catch(() => undefined);
    }
    const r = await backfill.done;
    expect(r.stderr).toMatch(/shadowpack:wait another session settling the change log/);
    expect(r.stderr).not.toMatch(/ERROR/);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect((await c.query('SELECT stage FROM shadowpack.runs WHERE run_id = $1', [id])).rows[0]).toEqual({
        stage: 'backfill',
      });
    });
  });
});

describe.each(['runner', 'psql'] as const)(
  'a range cut smaller by another session between a cut and its claim (%s)',
  (via) => {
    it('copies only the batch it claimed again: no page twice, the copy equals the table', async () => {
      const db = await freshDatabase(`cut_${via}`);
      databases.push(db);
      await withClient(db.url, (c) => createDemoSchema(c, 2_000));
      const plan = await planTable(db.url, 'app', 'orders', { batchPages: 4 });
      const id = plan.manifest.runId;
      const ranges = `shadowpack.ranges_${id}`;
      const ready = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'setup']);
      expect(ready.code, ready.stderr).toBe(0);
      const gate = new pg.Client({ connectionString: db.url, application_name: 'cut-test-gate' });
      const y = new pg.Client({ connectionString: db.url, application_name: 'cut-test-y' });
      for (const c of [gate, y]) {
        c.on('error', () => undefined);
        await c.connect();
      }
      try {
        expect((await gate.query(`SELECT first_page, end_page FROM ${ranges}`)).rows).toEqual([
          { first_page: '0', end_page: expect.any(String) },
        ]);
        // A test trigger holds the session's cut (0,4) + (4,end) uncommitted until the test lets it go.
        await gate.query(`CREATE FUNCTION public.cut_test_hold() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF current_setting('application_name') = 'shadowpack/${id}/backfill' THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF; RETURN NULL; END $$`);
        await gate.query(
          `CREATE TRIGGER cut_test_hold AFTER INSERT ON ${ranges} FOR EACH ROW EXECUTE FUNCTION public.cut_test_hold()`,
        );
        await gate.query('SELECT pg_advisory_lock(4242)');
        const x =
          via === 'psql'
            ? psqlFile(db.url, join(plan.dir, '02-backfill.sql'))
            : runner(plan, db.url, '--stage', 'backfill');
        if (via === 'runner') await x.said(/» backfill /);
        await waitFor(
          'the session to cut its range',
          gate,
          "SELECT FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
          { alive: [x] },
        );
        // Queued behind the cut, an EXCLUSIVE lock on the ranges is granted as the cut commits: the
        // session then waits to claim its batch (0,4) again, and Y cuts that batch with a smaller
        // batch size first, as "control --batch-pages 2" would make it (done here by hand: Y's commit).
        const locked = y.query(`BEGIN; LOCK TABLE ${ranges} IN EXCLUSIVE MODE`);
        await waitFor(
          'Y to queue for the ranges',
          gate,
          `SELECT FROM pg_locks WHERE relation = '${ranges}'::regclass AND mode = 'ExclusiveLock' AND NOT granted`,
        );
        await gate.query('SELECT pg_advisory_unlock(4242)');
        await locked;
        await waitFor(
          'the session to claim its batch again',
          gate,
          `SELECT FROM pg_locks WHERE relation = '${ranges}'::regclass AND mode = 'RowShareLock' AND NOT granted`,
          { alive: [x] },
        );
        await y.query(`UPDATE ${ranges} SET end_page = 2 WHERE first_page = 0 AND end_page = 4`);
        await y.query(`INSERT INTO ${ranges} VALUES (2, 4)`);
        await y.query('COMMIT');
        const r = await x.done;
        expect(r.code, r.stderr).toBe(0);
        // Before the fix the session copied pages 0-4 under the range (0,2), and (2,4) was copied again:
        // 158 rows twice ("expected '2158' to be '2000'"), which the copy's primary key cannot be built over.
        const counts = (
          await gate.query(
            `SELECT (SELECT count(*) FROM app.orders) AS src, (SELECT count(*) FROM app._sp_${id}_new) AS copy`,
          )
        ).rows[0];
        expect(counts.copy).toBe(counts.src);
        await gate.query(`DROP TRIGGER cut_test_hold ON ${ranges}`);
      } finally {
        await gate.end().catch(() => undefined);
        await y.end().catch(() => undefined);
      }
      // No writers: the copy equals the table row for row.
      await withClient(db.url, async (c) => {
        const diff = await c.query(
          `(SELECT * FROM app.orders EXCEPT ALL SELECT * FROM app._sp_${id}_new) UNION ALL (SELECT * FROM app._sp_${id}_new EXCEPT ALL SELECT * FROM app.orders)`,
        );
        expect(diff.rowCount).toBe(0);
      });
    }, 60_000);
  },
);

/** A table with a primary key and two unique constraints, its run set up and backfilled. */
async function uniqueTable(prefix: string) {
  const db = await freshDatabase(prefix);
  databases.push(db);
  await withClient(db.url, async (c) => {
    await c.query(`CREATE SCHEMA app;
      CREATE TABLE app.u (id int, a int NOT NULL, b text, c int,
        CONSTRAINT u_pkey PRIMARY KEY (id) WITH (fillfactor = 80), CONSTRAINT u_a_key UNIQUE (a), CONSTRAINT u_b_key UNIQUE (b) INCLUDE (c));
      INSERT INTO app.u SELECT g, g * 7 % 10007, md5(g::text), g % 10 FROM generate_series(1, 3000) g;`);
  });
  const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'u'));
  const plan = await planTable(db.url, 'app', 'u', { advisoryWaitSeconds: 30 });
  const ready = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'backfill']);
  expect(ready.code, ready.stderr).toBe(0);
  return { db, before, plan, id: plan.manifest.runId };
}

/** The rest of the run; then the table's catalog, its constraints' indexes and its rows are as before. */
async function expectUniqueTableRebuilt(
  plan: LoadedPlan,
  url: string,
  before: Awaited<ReturnType<typeof catalogSnapshot>>,
): Promise<void> {
  const rest = await cli(['run', '--plan', plan.dir, '--url', url, '--until', 'cleanup']);
  expect(rest.code, rest.stderr).toBe(0);
  await withClient(url, async (c) => {
    expect(await catalogSnapshot(c, 'app', 'u')).toEqual(before);
    const defs = await c.query<{ d: string }>(
      `SELECT pg_get_indexdef(indexrelid) AS d FROM pg_index WHERE indrelid = 'app.u'::regclass ORDER BY 1`,
    );
    expect(defs.rows.map((r) => r.d)).toEqual([
      'CREATE UNIQUE INDEX u_a_key ON app.u USING btree (a)',
      'CREATE UNIQUE INDEX u_b_key ON app.u USING btree (b) INCLUDE (c)',
      "CREATE UNIQUE INDEX u_pkey ON app.u USING btree (id) WITH (fillfactor='80')",
    ]);
    expect((await c.query('SELECT count(*)::int AS n FROM app.u')).rows[0]).toEqual({ n: 3000 });
    expect(await leftovers(c)).toEqual([]);
  });
}

describe.each(['runner', 'psql'] as const)('a primary key and unique constraints built by two sessions (%s)', (via) => {
  it("each session builds a constraint's index under SHARE, so they build at once; the constraints come out as on the table", async () => {
    const { db, before, plan, id } = await uniqueTable(`unique_builds_${via}`);
    // The test's ROW EXCLUSIVE lock on the copy holds every index build and every ADD CONSTRAINT: each
    // session waits with the first item it claimed, and the mode it waits for is the item's lock.
    const holder = new pg.Client({ connectionString: db.url });
    holder.on('error', () => undefined);
    await holder.connect();
    let sessions: Running[] = [];
    const waiting = `SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a USING (pid)
       WHERE NOT l.granted AND l.relation = 'app._sp_${id}_new'::regclass AND a.application_name = 'shadowpack/${id}/build' ORDER BY 1`;
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE app._sp_${id}_new IN ROW EXCLUSIVE MODE`);
      sessions =
        via === 'runner'
          ? [runner(plan, db.url, '--jobs', '2', '--until', 'build')]
          : [0, 1].map(() => psqlFile(db.url, join(plan.dir, '03-build.sql')));
      if (via === 'runner') await sessions[0]!.said(/» build /);
      await waitFor(
        'two build sessions waiting for the copy',
        holder,
        `SELECT FROM (${waiting}) w HAVING count(*) = 2`,
        {
          alive: sessions,
        },
      );
      await holder.query('SELECT pg_stat_clear_snapshot()');
      // SHARE is compatible with itself: once the test lets go, both build at the same time. ADD
      // CONSTRAINT … PRIMARY KEY (…) would wait for ACCESS EXCLUSIVE, one session after the other.
      expect((await holder.query<{ mode: string }>(waiting)).rows.map((r) => r.mode)).toEqual([
        'ShareLock',
        'ShareLock',
      ]);
      await holder.query('COMMIT');
    } finally {
      await holder.end().catch(() => undefined);
    }
    for (const e of await Promise.all(sessions.map((s) => s.done))) {
      expect(e.stderr).not.toMatch(/ERROR/);
      expect(e.code, e.stderr).toBe(0);
    }
    await expectUniqueTableRebuilt(plan, db.url, before);
  }, 60_000);
});

describe.each(['runner', 'psql'] as const)(
  "a session building a constraint's index dies before committing it, after another session passed its item (%s)",
  (via) => {
    it('the other session, attaching the constraint, builds the index itself: no "index … does not exist"; the constraints come out as on the table', async () => {
      const { db, before, plan, id } = await uniqueTable(`unique_builder_dies_${via}`);
      const script = plan.files.get('03-build.sql')!;
      // The first item of the build: the index of a constraint, which an item further on attaches.
      const [, what, tmp, first, objId] =
        /\n-- (index of \S+ \S+), built as (\S+) [^\n]*\n(?:--[^\n]*\n)*DO \$sp\$\nBEGIN\n {2}IF NOT pg_try_advisory_xact_lock\((\d+), (\d+)\)/.exec(
          script,
        )!;
      expect(/pg_try_advisory_xact_lock\((\d+),/.exec(script)![1]).toBe(first);
      expect(what).toMatch(/^index of (primary-key|unique) /);
      expect(script).toMatch(new RegExp(`ADD CONSTRAINT "${tmp}" (PRIMARY KEY|UNIQUE) USING INDEX "${tmp}"`));
      // Build sessions waiting for the copy, with the advisory locks they hold (the run's, and their items).
      const waiting = `SELECT a.pid, array_agg(i.classid::int ORDER BY i.classid) AS items
          FROM pg_stat_activity a
          JOIN pg_locks w ON w.pid = a.pid AND NOT w.granted AND w.relation = 'app._sp_${id}_new'::regclass
          JOIN pg_locks i ON i.pid = a.pid AND i.granted AND i.locktype = 'advisory' AND i.objsubid = 2 AND i.objid = ${objId}
         WHERE a.application_name = 'shadowpack/${id}/build' GROUP BY a.pid`;
      // The test's ROW EXCLUSIVE lock on the copy holds every index build where it starts.
      const holder = new pg.Client({ connectionString: db.url });
      holder.on('error', () => undefined);
      await holder.connect();
      let others: Running[] = [];
      try {
        await holder.query('BEGIN');
        await holder.query(`LOCK TABLE app._sp_${id}_new IN ROW EXCLUSIVE MODE`);
        // The builder: one psql session, alone, claims the first item and waits to build its index.
        const builder = psqlFile(db.url, join(plan.dir, '03-build.sql'));
        await waitFor(
          'the builder to wait holding the first item',
          holder,
          `SELECT FROM (${waiting}) w WHERE ${first} = ANY (items)`,
          {
            alive: [builder],
          },
        );
        await holder.query('SELECT pg_stat_clear_snapshot()');
        const builderPid = (await holder.query<{ pid: number }>(waiting)).rows[0]!.pid;
        // The others pass the first item (its lock is the builder's) and wait with items of their own.
        const sessions = via === 'runner' ? 2 : 1;
        others =
          via === 'runner'
            ? [runner(plan, db.url, '--jobs', String(sessions), '--stage', 'build')]
            : [psqlFile(db.url, join(plan.dir, '03-build.sql'))];
        if (via === 'runner') await others[0]!.said(/» build /);
        await waitFor(
          `${sessions} other session(s) waiting with items past the first`,
          holder,
          `SELECT FROM (${waiting}) w WHERE pid <> ${builderPid} AND NOT ${first} = ANY (items) HAVING count(*) = ${sessions}`,
          { alive: [builder, ...others] },
        );
        // The builder dies before its index is committed (a DBA's pg_terminate_backend, an OOM kill).
        await holder.query('SELECT pg_terminate_backend($1)', [builderPid]);
        const killed = await builder.done;
        expect(killed.code, killed.stderr).not.toBe(0);
        expect(killed.stderr).toMatch(/terminating connection due to administrator command/);
        await holder.query('COMMIT');
      } finally {
        await holder.end().catch(() => undefined);
      }
      // The others reach the first item's constraint before their second pass over the items: the
      // attach waits for no one now, and finds no index. Before 70c8d75 it failed there.
      for (const e of await Promise.all(others.map((s) => s.done))) {
        expect(e.stderr).not.toMatch(/ERROR/);
        expect(e.code, e.stderr).toBe(0);
      }
      await expectUniqueTableRebuilt(plan, db.url, before);
    }, 120_000);
  },
);
