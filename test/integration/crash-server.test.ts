/**
 * The server side of a crash: the tool's backend terminated in the middle of a
 * stage, and PostgreSQL restarted (immediate shutdown, crash recovery) in the
 * middle of an apply round of the catch-up. Each time the next run resumes and
 * the table ends equal to its twin, with nothing of the tool left.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable } from '../helpers/rebuild.js';
import type { StageName } from '../../src/compile/stages.js';
import { UserError } from '../../src/model/errors.js';
import { run } from '../../src/run/runner.js';
import { readState } from '../../src/run/state.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';
import { restartImmediate, startEmbeddedPostgres, type EmbeddedServer } from '../../src/dev/embedded-server.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function expectWhole(url: string, minRows: number): Promise<void> {
  await withClient(url, async (c) => {
    const cmp = await compareWithTwin(c);
    expect(cmp).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
    expect(cmp.rows).toBeGreaterThanOrEqual(minRows);
    expect(await leftovers(c)).toEqual([]);
  });
}

/**
 * The pid of the tool's session for `stage` while it is in the middle of its work, or null: writing
 * (a transaction with an xid), or, unless `writing` is required, inside a procedure call.
 */
async function busyToolBackend(
  admin: pg.ClientBase,
  runId: string,
  stage: StageName,
  writing: boolean,
): Promise<number | null> {
  const r = await admin.query<{ pid: number }>(
    // The run id comes from schema and table only: another test file's run on app.orders in another
    // database of the same server has the same application_name, and must not be terminated.
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND state = 'active'
        AND (backend_xid IS NOT NULL OR (NOT $2 AND query LIKE 'CALL %'))`,
    [`shadowpack/${runId}/${stage}`, writing],
  );
  return r.rows[0]?.pid ?? null;
}

describe("the tool's backend terminated in the middle of a stage", () => {
  let db: FreshDatabase;
  afterAll(async () => db?.drop());

  it('is resumed by the next run, stage after stage, with nothing lost', async () => {
    db = await freshDatabase('crash_terminate');
    await withClient(db.url, (c) => createDemoSchema(c, 20_000));
    // Small batches and rounds, so each stage is busy long enough to be caught writing.
    const plan = await planTable(db.url, 'app', 'orders', {
      batchPages: 4,
      catchupTarget: 0,
      catchupRounds: 40,
      advisoryWaitSeconds: 30,
    });
    const connection = { connectionString: db.url };
    const writers = await startWriters(connection, 2, 2);
    const admin = new pg.Client(connection);
    await admin.connect();
    const hit: string[] = [];
    // The last run's failure, or null once a run went through to the end (cleanup).
    let outcome: unknown = null;
    try {
      for (const stage of ['backfill', 'catchup', 'swap'] as const) {
        let terminated = false;
        const watcher = (async () => {
          const deadline = Date.now() + 60_000;
          while (!terminated && Date.now() < deadline) {
            const pid = await busyToolBackend(admin, plan.manifest.runId, stage, false);
            if (pid !== null) {
              const r = await admin.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [pid]);
              terminated = r.rows[0]!.ok;
              if (terminated) hit.push(stage);
            }
            await sleep(5);
          }
        })();
        outcome = await run({ plan, connection, onEvent: () => undefined }).then(
          () => null,
          (e: unknown) => e,
        );
        terminated = true;
        await watcher;
        if (hit.at(-1) === stage) {
          // The runner says what happened and that running again is safe.
          expect(outcome).toBeInstanceOf(UserError);
          expect((outcome as UserError).message).toMatch(/lost the connection during stage \w+ .*safe to resume/);
          const state = await readState(admin, plan.manifest);
          expect(state, stage).not.toBeNull();
        } else {
          expect(outcome, `stage ${stage} was never caught writing`).toBeNull();
        }
        if (outcome === null) break;
      }
      // A run that was not caught went on to cleanup: the plan is done, and running it again would be refused
      // ('already rebuilt … a plan runs once'). Only a run stopped by the termination is resumed here.
      if (outcome !== null) {
        const done = await run({ plan, connection, onEvent: () => undefined });
        expect(done.finished).toBe(true);
      }
    } finally {
      await admin.end();
      const stats = await writers.stop();
      expect(stats.errors, stats.lastError ?? '').toBe(0);
    }
    // The backfill and the catch-up are long enough to be hit every time; the swap's write is short.
    expect(hit.slice(0, 2)).toEqual(['backfill', 'catchup']);
    await expectWhole(db.url, 10_000);
  });
});

describe('PostgreSQL restarted (immediate shutdown) in the middle of catch-up', () => {
  let server: EmbeddedServer | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  it('is resumed by the next run after crash recovery, with nothing lost', async () => {
    server = await startEmbeddedPostgres({ settings: { shared_buffers: '64MB', max_connections: '50' } });
    const db = await freshDatabase('crash_catchup', server.url);
    await withClient(db.url, (c) => createDemoSchema(c, 30_000));
    const plan = await planTable(db.url, 'app', 'orders', { catchupTarget: 0, catchupRounds: 100 });
    await run({ plan, connection: { connectionString: db.url }, until: 'build', onEvent: () => undefined });
    // A large backlog, so an apply round takes a while: every row changed once, in the table and its twin.
    await withClient(db.url, (c) =>
      c.query(`BEGIN;
        UPDATE app.orders SET note = coalesce(note, '') || ' bulk';
        UPDATE app.orders_twin SET note = coalesce(note, '') || ' bulk';
        COMMIT;`),
    );

    let writers = await startWriters({ connectionString: db.url }, 2, 3);
    const runner = cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
    let crashedAt: string | null = null;
    await withClient(db.url, async (admin) => {
      const deadline = Date.now() + 60_000;
      while (crashedAt === null && Date.now() < deadline) {
        const pid = await busyToolBackend(admin, plan.manifest.runId, 'catchup', true);
        if (pid !== null) crashedAt = `apply round in progress (pid ${pid})`;
        else await sleep(5);
      }
    });
    expect(crashedAt, 'the catch-up was never seen applying').not.toBeNull();
    await restartImmediate(server);
    const failed = await runner;
    await writers.stop();
    expect(failed.code, `${crashedAt}: ${failed.stderr}`).toBe(2);
    expect(failed.stderr).toMatch(
      /CONNECTION_FAILED: lost the connection during stage catchup .*run the same command again/,
    );
    await withClient(db.url, async (c) => {
      const state = await readState(c, plan.manifest);
      // The round in progress was rolled back with the crash: its entries are all still in the log.
      expect(state?.stage).toBe('build');
      expect(state?.backlog ?? 0).toBeGreaterThan(0);
    });

    writers = await startWriters({ connectionString: db.url }, 2, 3);
    const done = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
    await sleep(200);
    const stats = await writers.stop();
    expect(done.code, done.stderr).toBe(0);
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await expectWhole(db.url, 20_000);
    await db.drop();
  });
});
