import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { catalogSnapshot, cli, leftovers, planTable, psql } from '../helpers/rebuild.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';
import { redact } from '../../src/cli/connection.js';
import { shellWord } from '../../src/cli/next-steps.js';

const ROWS = 40_000;
/** Small batches so every stage overlaps with the writers. */
const OPTIONS = { batchPages: 40 };

async function prepared(prefix: string): Promise<FreshDatabase> {
  const db = await freshDatabase(prefix);
  await withClient(db.url, (c) => createDemoSchema(c, ROWS));
  return db;
}

async function expectEqualsTwin(url: string): Promise<void> {
  await withClient(url, async (c) => {
    const cmp = await compareWithTwin(c);
    expect(cmp).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
    expect(cmp.rows).toBeGreaterThan(ROWS / 2);
  });
}

describe.each(['runner', 'psql'] as const)('full rebuild under concurrent writers (%s)', (executor) => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await prepared(`rebuild_${executor}`);
  });
  afterAll(async () => db?.drop());

  it('ends with the table equal to its twin, every index and constraint under its original name, nothing left behind', async () => {
    const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
    const plan = await planTable(db.url, 'app', 'orders', OPTIONS);
    const writers = await startWriters({ connectionString: db.url }, 4, 1);
    await new Promise((r) => setTimeout(r, 300));
    if (executor === 'runner') {
      const r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
      expect(r.stderr + r.stdout).toContain('done');
      expect(r.code).toBe(0);
    } else {
      for (const s of plan.manifest.stages.filter((x) => !x.offPath)) {
        const r = await psql(db.url, join(plan.dir, s.file));
        expect(r.stderr, s.file).not.toMatch(/ERROR/);
        expect(r.code, s.file).toBe(0);
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    expect(stats.commits).toBeGreaterThan(20);
    await expectEqualsTwin(db.url);
    await withClient(db.url, async (c) => {
      const after = await catalogSnapshot(c, 'app', 'orders');
      expect(after.indexes).toEqual(before.indexes);
      expect(after.constraints).toEqual(before.constraints);
      expect(after.signature).toBe(before.signature);
      expect(await leftovers(c)).toEqual([]);
      // The serial sequence continues and still belongs to the table.
      const owned = await c.query("SELECT pg_get_serial_sequence('app.orders', 'id') AS s");
      expect(owned.rows[0].s).toBe('app.orders_id_seq');
      const max = await c.query<{ m: number }>('SELECT max(id) AS m FROM app.orders');
      const next = await c.query<{ id: number }>(
        'INSERT INTO app.orders (customer_id, qty) VALUES (1, 1) RETURNING id',
      );
      expect(next.rows[0]!.id).toBeGreaterThan(max.rows[0]!.m);
      // Foreign keys in and out work against the rebuilt table.
      await expect(c.query("INSERT INTO app.order_items (order_id, sku) VALUES (-1, 'x')")).rejects.toThrow(
        /foreign key/,
      );
      await expect(c.query('INSERT INTO app.orders (customer_id, qty) VALUES (-1, 1)')).rejects.toThrow(/foreign key/);
    });
  });
});

describe('abort before the swap', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await prepared('abort');
  });
  afterAll(async () => db?.drop());

  it.each(['preflight', 'setup', 'backfill', 'build', 'catchup'] as const)(
    'after %s leaves the table exactly as it was and no tool object',
    async (until) => {
      const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
      const plan = await planTable(db.url, 'app', 'orders', OPTIONS);
      const writers = await startWriters({ connectionString: db.url }, 2, 1);
      const r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', until]);
      expect(r.code, r.stderr).toBe(0);
      if (until === 'catchup') {
        // Revert before the swap says what to do instead (finding 20).
        const early = await psql(db.url, join(plan.dir, '91-revert.sql'));
        expect(early.code).not.toBe(0);
        expect(early.stderr).toContain(
          'HINT:  Revert runs between the swap and cleanup. Before the swap, the abort stage removes the run',
        );
      }
      const a = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'abort']);
      expect(a.code, a.stderr).toBe(0);
      const stats = await writers.stop();
      expect(stats.errors, stats.lastError ?? '').toBe(0);
      await withClient(db.url, async (c) => {
        expect(await catalogSnapshot(c, 'app', 'orders')).toEqual(before);
        expect(await leftovers(c)).toEqual([]);
      });
      await expectEqualsTwin(db.url);
    },
  );
});

describe('revert after the swap', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await prepared('revert');
  });
  afterAll(async () => db?.drop());

  it('swaps back with every write made in between, and leaves no tool object', async () => {
    const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
    const oid = await withClient(
      db.url,
      async (c) => (await c.query("SELECT 'app.orders'::regclass::oid AS o")).rows[0].o,
    );
    const plan = await planTable(db.url, 'app', 'orders', OPTIONS);
    const writers = await startWriters({ connectionString: db.url }, 4, 1);
    // A plain run stops after the swap: the revert window is the default (issue 18).
    const r = await cli(['run', '--plan', plan.dir, '--url', db.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^stages: preflight \d+ ms, setup \d+ ms, backfill \d+ ms, build \d+ ms, catchup \d+ ms, swap \d+ ms; total/m,
    );
    // First, before anything runs: which plan, on which database and cluster, and where it stops.
    expect(r.stderr.split('\n')[0]).toBe(
      `plan ${plan.manifest.planHash} for app.orders, bound to database ${db.name}, cluster ${plan.manifest.environment.systemIdentifier}: up to swap (the revert window stays open)`,
    );
    const tail = `--plan ${shellWord(plan.dir)} --url ${shellWord(redact(db.url))}`;
    const hash = `--expect-hash ${plan.manifest.planHash}`;
    expect(r.stdout).toContain(
      [
        'app.orders: swapped; the revert window is open until cleanup',
        '  While it stays open every write to the table still writes a change-log entry (write overhead), and the revert backlog grows;',
        '  close it once you are satisfied:',
        `  check:   shadowpack verify ${tail}`,
        `  go back: shadowpack run ${tail} --stage revert ${hash}`,
        `  finish:  shadowpack run ${tail} --until cleanup ${hash}   (drops the old table: no revert after this)`,
        '  (the password is left out of these commands: give it through PGPASSWORD or ~/.pgpass, or put it back into --url)',
      ].join('\n'),
    );
    const st = await cli(['status', '--plan', plan.dir, '--url', db.url, '--json']);
    expect((JSON.parse(st.stdout) as { state: { stage: string } }).state.stage).toBe('swap');
    // A second plain run does nothing: cleanup needs --until cleanup.
    const again = await cli(['run', '--plan', plan.dir, '--url', db.url]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      /^stages: none \(nothing left to do\); total 0 ms\napp\.orders: swapped; the revert window is open/,
    );
    // A psql user re-running an earlier script is told what comes next after the swap (finding 20).
    const setupAgain = await psql(db.url, join(plan.dir, '01-setup.sql'));
    expect(setupAgain.code).not.toBe(0);
    expect(setupAgain.stderr).toContain(
      'HINT:  The swap is done: go on with the cleanup stage, or revert (before cleanup has started).',
    );
    const backfillAgain = await psql(db.url, join(plan.dir, '02-backfill.sql'));
    expect(backfillAgain.stderr).toContain(
      'stage backfill already ran to the end (the run is at "swap"); the swap is done: go on with the cleanup stage',
    );
    // The application keeps writing to the rebuilt table; revert must carry that back.
    await new Promise((res) => setTimeout(res, 1500));
    const v = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'revert']);
    expect(v.code, v.stderr).toBe(0);
    await new Promise((res) => setTimeout(res, 300));
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await expectEqualsTwin(db.url);
    await withClient(db.url, async (c) => {
      expect((await c.query("SELECT 'app.orders'::regclass::oid AS o")).rows[0].o).toBe(oid);
      expect(await catalogSnapshot(c, 'app', 'orders')).toEqual(before);
      expect(await leftovers(c)).toEqual([]);
    });
  });
});
