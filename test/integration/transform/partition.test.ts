import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { freshDatabase, withClient, type FreshDatabase } from '../../helpers/db.js';
import { cli, leftovers } from '../../helpers/rebuild.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../../src/dev/workload.js';
import type { PlanManifest } from '../../../src/compile/compile.js';
import { planCommand } from '../../../src/cli/commands/plan.js';

const ROWS = 3000;
const PARTITION = ['--partition-by', 'range(created_at)', '--interval', '1 month', '--partitions-ahead', '12'];

/**
 * The demo table, made partitionable: no foreign key into it and no unique constraint without
 * created_at (both refused, see below). Rows spread over January to June 2026; the writers insert
 * rows dated now(), which falls in one of the 12 partitions ahead or in the DEFAULT one.
 */
async function demo(prefix: string): Promise<FreshDatabase> {
  const db = await freshDatabase(prefix);
  await withClient(db.url, async (c) => {
    await createDemoSchema(c, ROWS);
    await c.query(`
      DROP TABLE app.order_items;
      ALTER TABLE app.orders DROP CONSTRAINT orders_email_key, DROP CONSTRAINT orders_customer_id_fkey;
      UPDATE app.orders SET created_at = created_at + (id % 6) * interval '1 month';
      UPDATE app.orders_twin t SET created_at = o.created_at FROM app.orders o WHERE o.id = t.id;`);
  });
  return db;
}

/** Rows whose partition does not hold their created_at, and rows per partition. */
async function placement(c: pg.ClientBase): Promise<{ misplaced: number; perPartition: Record<string, number> }> {
  const r = await c.query<{ part: string; n: number; bad: number }>(`
    SELECT o.tableoid::regclass::text AS part, count(*)::int AS n,
           count(*) FILTER (WHERE NOT (
             CASE WHEN b.bound = 'DEFAULT' THEN NOT EXISTS (
                    SELECT FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
                     WHERE i.inhparent = 'app.orders'::regclass AND p.oid <> o.tableoid
                       AND o.created_at >= substring(pg_get_expr(p.relpartbound, p.oid) FROM 'FROM \\(''([^'']+)''\\)')::timestamptz
                       AND o.created_at < substring(pg_get_expr(p.relpartbound, p.oid) FROM 'TO \\(''([^'']+)''\\)')::timestamptz)
                  ELSE o.created_at >= substring(b.bound FROM 'FROM \\(''([^'']+)''\\)')::timestamptz
                   AND o.created_at < substring(b.bound FROM 'TO \\(''([^'']+)''\\)')::timestamptz
             END))::int AS bad
      FROM app.orders o
      JOIN LATERAL (SELECT pg_get_expr(relpartbound, oid) AS bound FROM pg_class WHERE oid = o.tableoid) b ON true
     GROUP BY 1 ORDER BY 1`);
  return {
    misplaced: r.rows.reduce((s, x) => s + x.bad, 0),
    perPartition: Object.fromEntries(r.rows.map((x) => [x.part, x.n])),
  };
}

/**
 * A writer that changes the partition column: after the swap the row moves to another partition,
 * before it the apply must put it in the right one. The twin gets the same change.
 */
function moveRows(url: string): { stop(): Promise<number> } {
  let running = true;
  let moved = 0;
  const done = withClient(url, async (c) => {
    while (running) {
      await c.query('BEGIN');
      const r = await c.query<{ id: number }>(
        "UPDATE app.orders SET created_at = created_at + interval '33 days' WHERE id = (SELECT id FROM app.orders_twin ORDER BY random() LIMIT 1) RETURNING id",
      );
      if (r.rows[0])
        await c.query(
          'UPDATE app.orders_twin t SET created_at = o.created_at FROM app.orders o WHERE o.id = t.id AND t.id = $1',
          [r.rows[0].id],
        );
      await c.query('COMMIT');
      moved += r.rowCount ?? 0;
      await new Promise((res) => setTimeout(res, 20));
    }
  });
  return {
    stop: async () => {
      running = false;
      await done;
      return moved;
    },
  };
}

describe('--partition-by range(col) --interval under concurrent writers', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await demo('partition');
  });
  afterAll(async () => db?.drop());

  it('rebuilds the table as monthly partitions; every row, old or written during the run, lands in its partition', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sp-part-')), 'orders');
    const p = await cli([
      'plan',
      '--table',
      'app.orders',
      '--out',
      out,
      '--url',
      db.url,
      '--batch-pages',
      '5',
      '--verify-before-swap',
      ...PARTITION,
    ]);
    expect(p.code, p.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as PlanManifest;
    // The data's range is recorded in the plan: the bounds, and so the scripts, follow from it alone.
    expect(manifest.transform.spec.partition).toEqual({
      column: 'created_at',
      interval: { unit: 'month', step: 1 },
      ahead: 12,
      dataRange: { min: '2026-01-01', max: '2026-06-01' },
    });
    const setup = readFileSync(join(out, manifest.stages.find((s) => s.name === 'setup')!.file), 'utf8');
    expect(setup).toContain('PARTITION BY RANGE ("created_at")');
    expect(setup).toContain('CREATE TABLE "app"."orders_p202601" PARTITION OF');
    expect(setup).toContain(`FOR VALUES FROM ('2027-06-01 00:00:00+00') TO ('2027-07-01 00:00:00+00')`);

    const writers = await startWriters({ connectionString: db.url }, 3, 1);
    const movers = moveRows(db.url);
    const u = await cli(['run', '--plan', out, '--url', db.url, '--until', 'catchup']);
    expect(u.code, u.stderr).toBe(0);
    // verify reads the partitioned copy without ONLY: every row compared, none missing.
    const v = await cli(['verify', '--plan', out, '--url', db.url]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const r = await cli(['run', '--plan', out, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).toMatch(/verify passed/);
    const moved = await movers.stop();
    expect(moved).toBeGreaterThan(5);
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    expect(stats.commits).toBeGreaterThan(10);

    await withClient(db.url, async (c) => {
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
      const kind = await c.query<{ k: string; key: string }>(
        "SELECT c.relkind::text AS k, pg_get_constraintdef(x.oid) AS key FROM pg_class c JOIN pg_constraint x ON x.conrelid = c.oid AND x.contype = 'p' WHERE c.oid = 'app.orders'::regclass",
      );
      expect(kind.rows[0]).toEqual({ k: 'p', key: 'PRIMARY KEY (id, created_at)' });
      const parts = (
        await c.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'app.orders'::regclass",
        )
      ).rows[0]!.n;
      expect(parts).toBe(6 + 12 + 1);
      const placed = await placement(c);
      expect(placed.misplaced).toBe(0);
      for (let m = 1; m <= 6; m++)
        expect(placed.perPartition[`app.orders_p20260${m}`], `month ${m}`).toBeGreaterThan(0);
      // Rows the writers inserted during the run are dated now(): in their month's partition, or DEFAULT beyond the range.
      const now = (
        await c.query<{ part: string }>("SELECT to_char(now() AT TIME ZONE 'UTC', '\"app.orders_p\"YYYYMM') AS part")
      ).rows[0]!.part;
      const written = await c.query<{ part: string }>(
        "SELECT DISTINCT tableoid::regclass::text AS part FROM app.orders WHERE created_at > '2026-08-01'",
      );
      expect(written.rows.length).toBeGreaterThan(0);
      const expected = now <= 'app.orders_p202706' ? now : 'app.orders_default';
      // (The mover may have pushed some of them on by 33 days: placement above checks each row's bound.)
      expect(written.rows.map((x) => x.part)).toContain(expected);
      // Out of range, both ways: the DEFAULT partition takes it, no write fails.
      await c.query(
        "INSERT INTO app.orders (customer_id, qty, created_at) VALUES (1, 1, '1999-12-31'), (1, 1, '2099-01-01')",
      );
      const def = await c.query<{ part: string }>(
        "SELECT DISTINCT tableoid::regclass::text AS part FROM app.orders WHERE created_at < '2000-01-01' OR created_at > '2090-01-01'",
      );
      expect(def.rows).toEqual([{ part: 'app.orders_default' }]);
      expect((await placement(c)).misplaced).toBe(0);
      // Autovacuum is back on every partition.
      const off = await c.query(
        "SELECT relname FROM pg_class WHERE relname LIKE 'orders\\_%' AND array_to_string(reloptions, ',') LIKE '%autovacuum_enabled%'",
      );
      expect(off.rows).toEqual([]);
      expect(await leftovers(c)).toEqual([]);
    });
  });
});

describe('--partition-by: revert under writers', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await demo('partition_revert');
  });
  afterAll(async () => db?.drop());

  it('carries writes to the partitioned table back to the old one, which becomes the table again', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sp-part-')), 'orders');
    const p = await cli(['plan', '--table', 'app.orders', '--out', out, '--url', db.url, ...PARTITION]);
    expect(p.code, p.stderr).toBe(0);
    let writers = await startWriters({ connectionString: db.url }, 2, 1);
    const s = await cli(['run', '--plan', out, '--url', db.url, '--until', 'swap']);
    expect(s.code, s.stderr).toBe(0);
    // Writes to the partitioned table, then the revert under writers.
    await withClient(db.url, async (c) => {
      await c.query('SELECT pg_sleep(0.3)');
      expect(
        (await c.query<{ k: string }>("SELECT relkind::text AS k FROM pg_class WHERE oid = 'app.orders'::regclass"))
          .rows[0]!.k,
      ).toBe('p');
      // TRUNCATE of one partition by name would empty it behind the revert's back: refused like TRUNCATE of the table.
      await expect(c.query('TRUNCATE app.orders_p202602')).rejects.toThrow(
        /TRUNCATE of "app"."orders" is refused while shadowpack rebuilds it/,
      );
      await expect(c.query('TRUNCATE app.orders')).rejects.toThrow(/is refused while shadowpack rebuilds it/);
    });
    let stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    // After the swap verify reads the partitioned live table without ONLY, against the old one.
    const v = await cli(['verify', '--plan', out, '--url', db.url, '--ranges', '4']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    writers = await startWriters({ connectionString: db.url }, 2, 1);
    const movers = moveRows(db.url);
    const r = await cli(['run', '--plan', out, '--url', db.url, '--stage', 'revert']);
    expect(await movers.stop()).toBeGreaterThan(0);
    stats = await writers.stop();
    expect(r.code, r.stderr).toBe(0);
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await withClient(db.url, async (c) => {
      expect(
        (await c.query<{ k: string }>("SELECT relkind::text AS k FROM pg_class WHERE oid = 'app.orders'::regclass"))
          .rows[0]!.k,
      ).toBe('r');
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
      expect(await leftovers(c)).toEqual([]);
      const parts = await c.query("SELECT relname FROM pg_class WHERE relname ~ '^orders_(p[0-9]+|default)$'");
      expect(parts.rows).toEqual([]);
    });
  });
});

describe('--partition-by refusals', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('partition_refuse');
    await withClient(db.url, (c) => createDemoSchema(c, 100));
  });
  afterAll(async () => db?.drop());

  it.each([
    [
      ['--partition-by', 'range(created_at)', '--interval', '1 month'],
      /foreign key app\.order_items\.order_items_order_id_fkey points at this table/,
    ],
    [['--partition-by', 'range(note)', '--interval', '1 month'], /column note is text/],
    [['--partition-by', 'range(created_at)', '--interval', '1 week'], /--interval must be/],
    [['--partition-by', 'created_at', '--interval', '1 month'], /--partition-by takes range\(column\)/],
  ])('refuses %j at plan time with the reason, and writes no plan', async (flags, reason) => {
    const out = join(mkdtempSync(join(tmpdir(), 'sp-part-')), 'orders');
    const p = await cli(['plan', '--table', 'app.orders', '--out', out, '--url', db.url, ...flags]);
    expect(p.code).toBe(2);
    expect(p.stderr.trim().split('\n')).toHaveLength(1);
    expect(p.stderr).toMatch(reason);
    expect(existsSync(join(out, 'plan.json'))).toBe(false);
  });

  it('refuses a unique constraint without the partition column and a NULL-able column', async () => {
    await withClient(db.url, (c) => c.query('DROP TABLE app.order_items'));
    const out = join(mkdtempSync(join(tmpdir(), 'sp-part-')), 'orders');
    const plan = (by: string) =>
      planCommand(
        { table: 'app.orders', out, url: db.url, options: {}, transform: { partitionBy: by, interval: '1 month' } },
        () => undefined,
      );
    await expect(plan('range(created_at)')).rejects.toThrow(
      /foreign key orders_customer_id_fkey would have to be added NOT VALID/,
    );
    await withClient(db.url, (c) => c.query('ALTER TABLE app.orders DROP CONSTRAINT orders_customer_id_fkey'));
    await expect(plan('range(created_at)')).rejects.toThrow(
      /unique constraint orders_email_key does not include created_at/,
    );
    await withClient(db.url, (c) =>
      c.query('ALTER TABLE app.orders DROP CONSTRAINT orders_email_key; ALTER TABLE app.orders ADD COLUMN due date'),
    );
    await expect(plan('range(due)')).rejects.toThrow(/column due allows NULL/);
    await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
  });
});

describe('--partition-by: an identity key and an integer column', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('partition_identity');
    await withClient(db.url, (c) =>
      c.query(`
      CREATE TABLE public.events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, bucket integer NOT NULL, note text);
      INSERT INTO public.events (bucket, note) SELECT g % 250 - 20, 'n' || g FROM generate_series(1, 500) g;`),
    );
  });
  afterAll(async () => db?.drop());

  it('partitions by a number interval and keeps the identity going', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sp-part-')), 'events');
    const flags = ['--partition-by', 'range(bucket)', '--interval', '100', '--partitions-ahead', '1'];
    await withClient(db.url, (c) => c.query('CREATE TABLE public.events_p100 (x int)'));
    const taken = await cli(['plan', '--table', 'public.events', '--out', out, '--url', db.url, ...flags]);
    expect(taken.code).toBe(2);
    expect(taken.stderr).toMatch(/public already has events_p100, a name the new partitions need/);
    expect(existsSync(join(out, 'plan.json'))).toBe(false);
    await withClient(db.url, (c) => c.query('DROP TABLE public.events_p100'));
    const refused = await cli([
      'plan',
      '--table',
      'public.events',
      '--out',
      out,
      '--url',
      db.url,
      ...flags,
      '--alter',
      'ADD CONSTRAINT u UNIQUE (note)',
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/cannot go with --partition-by/);
    // --check-data pushes every row through a partitioned copy, as the backfill will.
    const p = await cli(['plan', '--table', 'public.events', '--out', out, '--url', db.url, '--check-data', ...flags]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/check-data: every row of public\.events fits the new shape/);
    const r = await cli(['run', '--plan', out, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      const parts = await c.query<{ part: string; n: number }>(
        'SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM public.events GROUP BY 1 ORDER BY 1',
      );
      expect(parts.rows).toEqual([
        // bucket runs over -20 … 229, each value twice: 40 rows below 0, 60 from 200 on.
        { part: 'events_p0', n: 200 },
        { part: 'events_p100', n: 200 },
        { part: 'events_p200', n: 60 },
        { part: 'events_pm100', n: 40 },
      ]);
      const next = await c.query<{ id: string }>(
        "INSERT INTO public.events (bucket, note) VALUES (1000, 'x') RETURNING id::text",
      );
      expect(next.rows[0]!.id).toBe('501');
      expect(
        (await c.query('SELECT tableoid::regclass::text AS part FROM public.events WHERE bucket = 1000')).rows,
      ).toEqual([{ part: 'events_default' }]);
      expect(await leftovers(c)).toEqual([]);
    });
  });
});

describe('--partition-by with a generated column before the partition column, owned by another role', () => {
  it('refuses setup unless the table owner runs it, with nothing changed (the runner would create that column)', async () => {
    const db = await demo('partition_gen_owner');
    const role = `sp_part_owner_${process.pid}`;
    try {
      await withClient(db.url, (c) =>
        c.query(
          `CREATE ROLE ${role}; ALTER TABLE app.orders OWNER TO ${role}; ALTER TABLE app.orders_twin OWNER TO ${role}`,
        ),
      );
      const out = join(mkdtempSync(join(tmpdir(), 'sp-part-')), 'orders');
      const planned = await cli(['plan', '--table', 'app.orders', '--out', out, '--url', db.url, ...PARTITION]);
      expect(planned.code, planned.stderr).toBe(0);
      const r = await cli(['run', '--plan', out, '--url', db.url, '--until', 'setup']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /setup must run as the table's owner sp_part_owner_\d+: the generated columns total come before the partition column/,
      );
      await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
    } finally {
      await db.drop();
      await withClient(inject('adminUrl'), (c) => c.query(`DROP ROLE IF EXISTS ${role}`)).catch(() => undefined);
    }
  });
});
