/**
 * Throttling and operator control on a real PostgreSQL: a throttle probe the
 * test flips stops the backfill within one batch and lets it go on; pause,
 * resume and a new batch size through `shadowpack control`; a held swap waits
 * for `--release-swap` (run with plain psql); probes refused at plan time.
 * Everything waits on conditions read from the database, never on fixed sleeps.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, psql, type Exit } from '../helpers/rebuild.js';
import { readPlanDir } from '../../src/planning/plan-dir.js';
import { planCommand } from '../../src/cli/commands/plan.js';
import { UserError } from '../../src/model/errors.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';

const databases: FreshDatabase[] = [];
afterAll(async () => {
  for (const db of databases.splice(0)) await db.drop().catch(() => undefined);
});

async function prepared(prefix: string, rows: number): Promise<FreshDatabase> {
  const db = await freshDatabase(prefix);
  databases.push(db);
  await withClient(db.url, async (c) => {
    await createDemoSchema(c, rows);
    // What the probe reads: a stand-in for "replica lag" that the test sets.
    await c.query('CREATE TABLE app.lag (ms numeric NOT NULL); INSERT INTO app.lag VALUES (0)');
  });
  return db;
}

async function planDir(url: string, ...flags: string[]): Promise<LoadedPlan> {
  const dir = join(mkdtempSync(join(tmpdir(), 'sp-throttle-')), 'plan');
  const r = await cli(['plan', '--url', url, '--table', 'app.orders', '--out', dir, ...flags]);
  expect(r.code, r.stderr).toBe(0);
  return readPlanDir(dir);
}

/** Polls until `check` returns a value that is not undefined; fails after timeoutMs. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Observed {
  readonly next: number;
  readonly end: number;
  readonly rowsCopied: number;
  readonly waitingFor: string | null;
  readonly waitedMs: number | null;
  readonly stage: string;
}

async function observe(c: pg.Client, runId: string): Promise<Observed> {
  const r = await c.query(
    `
    SELECT r.backfill_next, r.backfill_end, r.rows_copied, r.stage, k.waiting_for,
           extract(epoch FROM clock_timestamp() - k.waiting_since) * 1000 AS waited_ms
      FROM shadowpack.runs r, shadowpack.control_${runId} k WHERE r.run_id = $1`,
    [runId],
  );
  const row = r.rows[0] as Record<string, unknown>;
  return {
    next: Number(row['backfill_next']),
    end: Number(row['backfill_end']),
    rowsCopied: Number(row['rows_copied']),
    waitingFor: (row['waiting_for'] as string | null) ?? null,
    waitedMs: row['waited_ms'] == null ? null : Number(row['waited_ms']),
    stage: String(row['stage']),
  };
}

function control(plan: LoadedPlan, url: string, ...flags: string[]): Promise<Exit> {
  return cli(['control', '--plan', plan.dir, '--url', url, ...flags]);
}

const BATCH = 5;
const RATE = 3000;

describe('throttling and operator control', () => {
  it('a lagging probe stops the backfill within one batch; pause, resume and batch size work while it runs', async () => {
    const db = await prepared('throttle_probe', 12_000);
    const plan = await planDir(
      db.url,
      '--batch-pages',
      String(BATCH),
      '--max-rows-per-second',
      String(RATE),
      '--throttle-probe',
      'SELECT ms FROM app.lag',
      '--throttle-threshold',
      '100',
    );
    const id = plan.manifest.runId;
    expect(plan.manifest.options).toMatchObject({
      throttleProbe: 'SELECT ms FROM app.lag',
      throttleThreshold: 100,
      maxRowsPerSecond: RATE,
    });
    const writers = await startWriters({ connectionString: db.url }, 2, 5);
    const setup = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'setup']);
    expect(setup.code, setup.stderr).toBe(0);

    await withClient(db.url, async (c) => {
      // Lagging before the backfill starts: not a single batch may run.
      await c.query('UPDATE app.lag SET ms = 500');
      const backfill = cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'backfill']);
      const first = await waitFor('the probe to hold the backfill', async () => {
        const o = await observe(c, id);
        return o.waitingFor?.startsWith('throttle probe returned 500') ? o : undefined;
      });
      expect(first.next).toBe(0);
      expect(first.end).toBeGreaterThan(100);

      // The lag goes away: the backfill goes on, paced by the rows/s ceiling.
      const released = Date.now();
      await c.query('UPDATE app.lag SET ms = 0');
      const moving = await waitFor('the backfill to go on', async () => {
        const o = await observe(c, id);
        return o.next >= 4 * BATCH ? o : undefined;
      });
      const elapsed = Date.now() - released;
      expect(moving.waitingFor).toBeNull();
      // Every batch but the last observed one was paced: rows / ceiling seconds at least (one batch ≤ 500 rows).
      expect(elapsed).toBeGreaterThanOrEqual(((moving.rowsCopied - 500) / RATE) * 1000 * 0.9);

      // Lag again in the middle: at most the batch in flight finishes.
      await c.query('UPDATE app.lag SET ms = 250');
      const flippedAt = (await observe(c, id)).next;
      const held = await waitFor('the probe to hold the backfill again', async () => {
        const o = await observe(c, id);
        return o.waitingFor?.startsWith('throttle probe returned 250') ? o : undefined;
      });
      expect(held.next - flippedAt).toBeLessThanOrEqual(BATCH);
      expect(held.next).toBeLessThan(held.end);
      const still = await waitFor('the throttle to have held for a while', async () => {
        const o = await observe(c, id);
        return (o.waitedMs ?? 0) > 500 ? o : undefined;
      });
      expect(still.next).toBe(held.next);

      const st = await cli(['status', '--plan', plan.dir, '--url', db.url]);
      expect(st.code, st.stderr).toBe(0);
      // No --hold-swap: the swap is never held, so the line does not speak of it (finding 18).
      expect(st.stdout).toMatch(
        /control: running, batch 5 pages, at most 3000 rows\/s; waiting for: throttle probe returned 250, above 100/,
      );
      const noHold = await control(plan, db.url, '--release-swap');
      expect(noHold.code).toBe(2);
      expect(noHold.stderr).toMatch(
        /^shadowpack: BAD_ARGUMENT: --release-swap: \S+ was planned without --hold-swap, so its swap never waits for a release/,
      );

      // The operator pauses; the lag clears; the pause still holds.
      const p = await control(plan, db.url, '--pause');
      expect(p.code, p.stderr).toBe(0);
      expect(p.stdout).toMatch(/app\.orders: paused/);
      await c.query('UPDATE app.lag SET ms = 0');
      const paused = await waitFor('the pause to hold the backfill', async () => {
        const o = await observe(c, id);
        return o.waitingFor?.startsWith('paused by the operator') ? o : undefined;
      });
      expect(paused.next).toBe(held.next);
      const sj = await cli(['status', '--plan', plan.dir, '--url', db.url, '--json']);
      expect(JSON.parse(sj.stdout).control).toMatchObject({
        paused: true,
        batchPages: BATCH,
        waitingFor: expect.stringMatching(/^paused/),
      });

      // Bigger batches, no ceiling, resume: the next batch copies 40 pages.
      const r = await control(plan, db.url, '--resume', '--batch-pages', '40', '--max-rows-per-second', '0', '--json');
      expect(r.code, r.stderr).toBe(0);
      // The reply is the row after the change: the pause it ended is no longer waited for (finding 18).
      expect(JSON.parse(r.stdout).control).toMatchObject({
        paused: false,
        batchPages: 40,
        waitingFor: null,
        waitingSince: null,
      });
      const after = await waitFor('the backfill to resume', async () => {
        const o = await observe(c, id);
        return o.next > paused.next ? o : undefined;
      });
      expect(
        (after.next - paused.next) % 40 === 0 || after.next === after.end,
        `moved from ${paused.next} to ${after.next}`,
      ).toBe(true);
      expect(paused.end - paused.next).toBeGreaterThan(40);

      const b = await backfill;
      expect(b.code, b.stderr).toBe(0);
      expect(b.stderr).toMatch(/waiting: throttle probe returned 500, above 100/);
      expect((await observe(c, id)).stage).toBe('backfill');
    });

    const rest = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
    expect(rest.code, rest.stderr).toBe(0);
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    expect(stats.commits).toBeGreaterThan(0);
    await withClient(db.url, async (c) => {
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
      expect(await leftovers(c)).toEqual([]);
    });
  });

  it('a held swap waits (bounded) until --release-swap, run with plain psql', async () => {
    const db = await prepared('throttle_hold', 3_000);
    // No replica here: the lag check runs between batches and finds nothing to wait for.
    const plan = await planDir(
      db.url,
      '--hold-swap',
      '--hold-wait-seconds',
      '120',
      '--batch-pages',
      '20',
      '--max-replica-lag-ms',
      '1000',
    );
    const id = plan.manifest.runId;
    expect(plan.manifest.options).toMatchObject({ holdSwap: true, holdWaitSeconds: 120, maxReplicaLagMs: 1000 });
    expect(plan.files.get('01-setup.sql')).toContain('FROM pg_stat_replication');
    const writers = await startWriters({ connectionString: db.url }, 2, 5);
    const upTo = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'catchup']);
    expect(upTo.code, upTo.stderr).toBe(0);

    await withClient(db.url, async (c) => {
      // The wait is bounded: with a 1 s bound it stops with one clear message, nothing swapped.
      const err = await c.query(`CALL shadowpack.hold_${id}(1)`).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(/the swap of .*orders.* is held, waiting for release/);
      // The wait ended with the CALL: status does not show it as still waiting (finding 18: it did,
      // with the old start time, long after). A run of the same table in another database of the
      // cluster holds the same advisory key: it is not this run's stage.
      const other = await freshDatabase('throttle_other');
      databases.push(other);
      const objId = parseInt(id.slice(0, 7), 16);
      const st = await withClient(other.url, async (o) => {
        await o.query('SELECT pg_advisory_lock($1, $2)', [0x53504b, objId]);
        return cli(['status', '--plan', plan.dir, '--url', db.url]);
      });
      expect(st.stdout).toMatch(/nothing running now; next: swap/);
      expect(st.stdout).toMatch(/control: running, batch 20 pages, no rows\/s ceiling, swap held\n/);
      const sj = await cli(['status', '--plan', plan.dir, '--url', db.url, '--json']);
      expect(JSON.parse(sj.stdout).control).toMatchObject({ swapReleased: false, waitingFor: null });

      const swap = psql(db.url, join(plan.dir, '05-swap.sql'));
      await waitFor('psql to wait in the hold', async () => {
        const r = await c.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND query LIKE '%hold\\_%' AND state = 'active'`,
          [`shadowpack/${id}/swap`],
        );
        return r.rowCount === 1 ? true : undefined;
      });
      expect((await observe(c, id)).stage).toBe('catchup');
      expect(
        Number((await c.query("SELECT count(*) AS n FROM pg_class WHERE relname LIKE '\\_sp\\_%\\_old'")).rows[0].n),
      ).toBe(0);
      const waiting = await cli(['status', '--plan', plan.dir, '--url', db.url]);
      expect(waiting.stdout).toMatch(/swap held; waiting for: release of the swap/);

      const rel = await control(plan, db.url, '--release-swap');
      expect(rel.code, rel.stderr).toBe(0);
      expect(rel.stdout).toMatch(/swap released\n$/);
      const done = await swap;
      expect(done.code, done.stderr).toBe(0);
      expect((await observe(c, id)).stage).toBe('swap');
    });

    const cleanup = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
    expect(cleanup.code, cleanup.stderr).toBe(0);
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await withClient(db.url, async (c) => {
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
      expect(await leftovers(c)).toEqual([]);
    });
    const gone = await control(plan, db.url, '--pause');
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/^shadowpack: RUN_STATE: no run of app\.orders is set up/);
  });

  it('refuses a bad throttle probe at plan time with one line, writing nothing', async () => {
    const db = await prepared('throttle_bad_probe', 100);
    const cases: [string, RegExp][] = [
      ['SELEC ms FROM app.lag', /--throttle-probe failed when run once read-only .*syntax error/],
      ["SELECT 'high' FROM app.lag", /must return exactly one numeric column/],
      ['SELECT ms FROM app.lag, generate_series(1, 2)', /must return exactly one row \(it returned 2\)/],
      ['WITH d AS (DELETE FROM app.lag RETURNING ms) SELECT count(*) FROM d', /read-only transaction/],
      ['SELECT 1; SELECT 2', /--throttle-probe failed/],
      ['SELECT 1 FROM pg_sleep(5)', /--throttle-probe failed .*statement timeout/],
    ];
    // In-process for speed: the same command the CLI runs, minus the process.
    for (const [probe, message] of cases) {
      const dir = join(mkdtempSync(join(tmpdir(), 'sp-throttle-')), 'plan');
      const options = { throttleProbe: probe, throttleThreshold: 1, throttleProbeTimeoutMs: 300 };
      const err = await planCommand({ table: 'app.orders', out: dir, url: db.url, options }, () => undefined).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, probe).toBeInstanceOf(UserError);
      expect((err as UserError).code, probe).toBe('BAD_OPTION');
      expect((err as UserError).message, probe).toMatch(message);
      expect(existsSync(dir), probe).toBe(false);
    }
    // Through the CLI once: one line on stderr, exit 2.
    const dir = join(mkdtempSync(join(tmpdir(), 'sp-throttle-')), 'plan');
    const r = await cli([
      'plan',
      '--url',
      db.url,
      '--table',
      'app.orders',
      '--out',
      dir,
      '--throttle-probe',
      cases[0]![0],
      '--throttle-threshold',
      '1',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^shadowpack: BAD_OPTION: --throttle-probe failed when run once read-only .*syntax error/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(dir)).toBe(false);
    await withClient(db.url, async (c) => {
      expect(Number((await c.query('SELECT count(*) AS n FROM app.lag')).rows[0].n)).toBe(1);
    });
  });
});
