/**
 * The tool's triggers turned off or out of ENABLE ALWAYS (the bulk-load idiom ALTER TABLE ...
 * DISABLE/ENABLE TRIGGER USER, or ENABLE TRIGGER USER alone). Writes may have gone uncaptured:
 * before the swap every stage refuses and abort is the way on; after it revert refuses and cleanup
 * still finishes. Checked at each stage's start and again under the swap's and the revert's lock.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable, psql, type Exit } from '../helpers/rebuild.js';
import { readPlanDir } from '../../src/planning/plan-dir.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { stageInfo, type StageName } from '../../src/compile/stages.js';
import { compareWithTwin, createDemoSchema } from '../../src/dev/workload.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const databases: FreshDatabase[] = [];

afterAll(async () => {
  for (const db of databases.splice(0)) await db.drop().catch(() => undefined);
});

type Executor = 'runner' | 'psql';

async function setUp(prefix: string, until: StageName): Promise<{ db: FreshDatabase; plan: LoadedPlan }> {
  const db = await freshDatabase(prefix);
  databases.push(db);
  await withClient(db.url, (c) => createDemoSchema(c, 2_000));
  const plan = await planTable(db.url, 'app', 'orders');
  // With psql, the quicker way: what is tested is the stage after these.
  for (const s of plan.manifest.stages.filter((x) => !x.offPath)) {
    const r = await psql(db.url, join(plan.dir, s.file));
    expect(r.code, r.stderr).toBe(0);
    if (s.name === until) break;
  }
  return { db, plan };
}

function stage(executor: Executor, plan: LoadedPlan, url: string, name: StageName): Promise<Exit> {
  return executor === 'runner'
    ? cli(['run', '--plan', plan.dir, '--url', url, '--stage', name])
    : psql(url, join(plan.dir, stageInfo(name).file));
}

function expectRefused(r: Exit, executor: Executor, message: RegExp): void {
  expect(r.code, r.stdout).toBe(executor === 'psql' ? 3 : 2);
  expect(r.stderr).toMatch(message);
}

/** The bulk-load idiom, with writes made while the tool's triggers were off (mirrored in the twin). */
const BULK_LOAD = `
  BEGIN;
  ALTER TABLE app.orders DISABLE TRIGGER USER;
  INSERT INTO app.orders (id, customer_id, email, qty) SELECT g, 1, 'bulk' || g, 1 FROM generate_series(500001, 500050) g;
  UPDATE app.orders SET qty = 7 WHERE id <= 30;
  ALTER TABLE app.orders ENABLE TRIGGER USER;
  COMMIT;
  INSERT INTO app.orders_twin SELECT id, customer_id, email, qty, note, created_at FROM app.orders WHERE id > 500000;
  UPDATE app.orders_twin SET qty = 7 WHERE id <= 30;`;

const BEFORE_SWAP =
  /stage \S+ refused: writes to "app"\."orders" may have been missed, so the copy cannot be trusted \(trigger _sp_\w+_capture on "app"\."orders" is ENABLE, not ENABLE ALWAYS/;
const ABORT_HINT = /Abort is the only safe way on/;
const AFTER_SWAP =
  /stage \S+ refused: writes to "app"\."orders" since the swap may be missing from the old table, so revert cannot be trusted \(trigger _sp_\w+_rcapture on "app"\."orders" is ENABLE, not ENABLE ALWAYS/;
const CLEANUP_HINT = /Run the cleanup stage to finish/;

async function expectEqualsTwinAndClean(url: string): Promise<void> {
  await withClient(url, async (c) => {
    expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
    expect(await leftovers(c)).toEqual([]);
  });
}

async function waitFor(what: string, c: pg.ClientBase, sql: string): Promise<void> {
  const until = Date.now() + 20_000;
  while (((await c.query(sql)).rowCount ?? 0) === 0) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Runs `name` while a second session holds SHARE on `blocked` (the copy or the old table), so the
 * stage's catch-up waits before it takes its lock; meanwhile ENABLE TRIGGER USER turns the tool's
 * triggers from ALWAYS into plain ENABLE. Only the check under the stage's lock can notice.
 */
async function changeTriggersBeforeTheLock(
  executor: Executor,
  plan: LoadedPlan,
  url: string,
  name: StageName,
  blocked: string,
): Promise<Exit> {
  const holder = new pg.Client({ connectionString: url });
  const admin = new pg.Client({ connectionString: url });
  for (const c of [holder, admin]) {
    c.on('error', () => undefined);
    await c.connect();
  }
  try {
    await holder.query('BEGIN');
    await holder.query(`LOCK TABLE ${blocked} IN SHARE MODE`);
    const running = stage(executor, plan, url, name);
    await waitFor(
      `${name} to wait for ${blocked}`,
      admin,
      `SELECT FROM pg_locks WHERE relation = '${blocked}'::regclass AND NOT granted`,
    );
    await admin.query('ALTER TABLE app.orders ENABLE TRIGGER USER');
    await holder.query('COMMIT');
    return await running;
  } finally {
    for (const c of [holder, admin]) await c.end().catch(() => undefined);
  }
}

describe.each(['runner', 'psql'] as const)(
  "the tool's triggers changed by ALTER TABLE ... TRIGGER USER (%s)",
  (executor) => {
    it('before the swap: the bulk-load idiom makes the next stage refuse; abort leaves the table as it is', async () => {
      const { db, plan } = await setUp(`trg_before_${executor}`, 'build');
      await withClient(db.url, (c) => c.query(BULK_LOAD));
      const r = await stage(executor, plan, db.url, 'catchup');
      expectRefused(r, executor, BEFORE_SWAP);
      expect(r.stderr).toMatch(ABORT_HINT);
      // Refused before doing anything: the run is where it was.
      await withClient(db.url, async (c) => {
        expect((await c.query('SELECT stage FROM shadowpack.runs')).rows).toEqual([{ stage: 'build' }]);
      });
      // The same SQL either way: psql, the quicker one, runs the way out.
      const abort = await stage('psql', plan, db.url, 'abort');
      expect(abort.code, abort.stderr).toBe(0);
      await expectEqualsTwinAndClean(db.url);
    });

    it('after the swap: ENABLE TRIGGER USER alone makes revert refuse; cleanup still finishes', async () => {
      const { db, plan } = await setUp(`trg_after_${executor}`, 'swap');
      await withClient(db.url, async (c) => {
        await c.query('ALTER TABLE app.orders ENABLE TRIGGER USER');
        // A replica-role writer (a logical replication apply worker, say) is no longer captured.
        await c.query(
          'BEGIN; SET LOCAL session_replication_role = replica; UPDATE app.orders SET qty = 9 WHERE id <= 10; COMMIT',
        );
        await c.query('UPDATE app.orders_twin SET qty = 9 WHERE id <= 10');
      });
      const r = await stage(executor, plan, db.url, 'revert');
      expectRefused(r, executor, AFTER_SWAP);
      expect(r.stderr).toMatch(CLEANUP_HINT);
      const cleanup = await stage('psql', plan, db.url, 'cleanup');
      expect(cleanup.code, cleanup.stderr).toBe(0);
      await expectEqualsTwinAndClean(db.url);
    });
  },
);

describe("the tool's triggers changed while a stage waits before its lock", () => {
  it('the swap refuses under its lock (psql); abort leaves the table as it is', async () => {
    const { db, plan } = await setUp('trg_swap_locked', 'catchup');
    const id = plan.manifest.runId;
    // One entry for the swap's catch-up to apply, so that it waits for the copy.
    await withClient(db.url, (c) =>
      c.query('UPDATE app.orders SET qty = 3 WHERE id = 1; UPDATE app.orders_twin SET qty = 3 WHERE id = 1'),
    );
    const r = await changeTriggersBeforeTheLock('psql', plan, db.url, 'swap', `app._sp_${id}_new`);
    expectRefused(r, 'psql', /stage swap-locked refused: writes to "app"\."orders" may have been missed/);
    await withClient(db.url, async (c) => {
      expect((await c.query('SELECT stage FROM shadowpack.runs')).rows).toEqual([{ stage: 'catchup' }]);
    });
    const abort = await stage('psql', plan, db.url, 'abort');
    expect(abort.code, abort.stderr).toBe(0);
    await expectEqualsTwinAndClean(db.url);
  });

  it('revert refuses under its lock (runner); cleanup still finishes', async () => {
    const { db, plan } = await setUp('trg_revert_locked', 'swap');
    const id = plan.manifest.runId;
    await withClient(db.url, (c) =>
      c.query('UPDATE app.orders SET qty = 4 WHERE id = 2; UPDATE app.orders_twin SET qty = 4 WHERE id = 2'),
    );
    const r = await changeTriggersBeforeTheLock('runner', plan, db.url, 'revert', `app._sp_${id}_old`);
    expectRefused(
      r,
      'runner',
      /stage revert-locked refused: writes to "app"\."orders" since the swap may be missing from the old table/,
    );
    await withClient(db.url, async (c) => {
      expect((await c.query('SELECT stage FROM shadowpack.runs')).rows).toEqual([{ stage: 'swap' }]);
    });
    const cleanup = await stage('psql', plan, db.url, 'cleanup');
    expect(cleanup.code, cleanup.stderr).toBe(0);
    await expectEqualsTwinAndClean(db.url);
  });

  it("with --partition-by, a partition's own trigger changed makes revert refuse (psql)", async () => {
    const db = await freshDatabase('trg_partition');
    databases.push(db);
    await withClient(db.url, (c) =>
      c.query(
        'CREATE TABLE public.p (n int PRIMARY KEY, v text); INSERT INTO public.p SELECT g, md5(g::text) FROM generate_series(1, 500) g',
      ),
    );
    const dir = join(mkdtempSync(join(tmpdir(), 'sp-trg-')), 'plan');
    const planned = await cli([
      'plan',
      '--url',
      db.url,
      '--table',
      'public.p',
      '--out',
      dir,
      '--partition-by',
      'range(n)',
      '--interval',
      '100',
    ]);
    expect(planned.code, planned.stderr).toBe(0);
    const plan = readPlanDir(dir);
    for (const s of plan.manifest.stages.filter((x) => !x.offPath)) {
      const r = await psql(db.url, join(plan.dir, s.file));
      expect(r.code, r.stderr).toBe(0);
      if (s.name === 'swap') break;
    }
    // ENABLE TRIGGER USER on one partition by name: its clone of the reverse capture no longer fires for replica-role writers.
    const part = await withClient(db.url, async (c) => {
      const name = (
        await c.query<{ p: string }>(
          "SELECT inhrelid::regclass::text AS p FROM pg_inherits WHERE inhparent = 'public.p'::regclass ORDER BY 1 LIMIT 1",
        )
      ).rows[0]!.p;
      await c.query(`ALTER TABLE ${name} ENABLE TRIGGER USER`);
      return name;
    });
    const r = await stage('psql', plan, db.url, 'revert');
    expectRefused(
      r,
      'psql',
      new RegExp(
        `revert cannot be trusted \\(trigger _sp_\\w+_rcapture on "public"\\."${part.replace(/^public\./, '')}" is ENABLE, not ENABLE ALWAYS`,
      ),
    );
    const cleanup = await stage('psql', plan, db.url, 'cleanup');
    expect(cleanup.code, cleanup.stderr).toBe(0);
  });
});

/**
 * Disables the tool's trigger whose name ends in `suffix`, writes (mirrored in the twin) while it is off,
 * and puts it back to ENABLE ALWAYS by name: it then looks intact.
 */
async function disableAndPutBack(url: string, suffix: 'capture' | 'rcapture', qty: number): Promise<void> {
  await withClient(url, async (c) => {
    const trigger = (
      await c.query<{ t: string }>(
        `SELECT tgname AS t FROM pg_trigger WHERE tgrelid = 'app.orders'::regclass AND tgname LIKE '\\_sp\\_%\\_${suffix}'`,
      )
    ).rows[0]!.t;
    await c.query(`ALTER TABLE app.orders DISABLE TRIGGER "${trigger}"`);
    await c.query(`UPDATE app.orders SET qty = ${qty} WHERE id <= 20`);
    await c.query(`UPDATE app.orders_twin SET qty = ${qty} WHERE id <= 20`);
    await c.query(`ALTER TABLE app.orders ENABLE ALWAYS TRIGGER "${trigger}"`);
  });
}

describe("the tool's own trigger disabled, then put back to ENABLE ALWAYS by name", () => {
  const ALTERED =
    /trigger _sp_\w+_r?capture on "app"\."orders" was altered \(disabled and enabled again\?\) after the run created it/;

  it('before the swap: the next stage refuses (psql); abort leaves the table as it is', async () => {
    const { db, plan } = await setUp('trg_roundtrip_before', 'build');
    await disableAndPutBack(db.url, 'capture', 11);
    const r = await stage('psql', plan, db.url, 'catchup');
    expectRefused(r, 'psql', ALTERED);
    expect(r.stderr).toMatch(ABORT_HINT);
    const abort = await stage('psql', plan, db.url, 'abort');
    expect(abort.code, abort.stderr).toBe(0);
    await expectEqualsTwinAndClean(db.url);
  });

  it('after the swap: revert refuses (runner); cleanup still finishes', async () => {
    const { db, plan } = await setUp('trg_roundtrip_after', 'swap');
    await disableAndPutBack(db.url, 'rcapture', 12);
    const r = await stage('runner', plan, db.url, 'revert');
    expectRefused(r, 'runner', ALTERED);
    expect(r.stderr).toMatch(CLEANUP_HINT);
    const cleanup = await stage('psql', plan, db.url, 'cleanup');
    expect(cleanup.code, cleanup.stderr).toBe(0);
    await expectEqualsTwinAndClean(db.url);
  });
});
