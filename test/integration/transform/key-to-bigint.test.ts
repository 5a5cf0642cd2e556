import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { freshDatabase, withClient, type FreshDatabase } from '../../helpers/db.js';
import { catalogSnapshot, cli, leftovers } from '../../helpers/rebuild.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../../src/dev/workload.js';
import type { PlanManifest } from '../../../src/compile/compile.js';

const ROWS = 3000;
const INT_MAX = 2147483647;

/** The demo table, with some keys right below 2^31 − 1 and some negative ones (twin and child rows follow). */
async function prepared(prefix: string): Promise<FreshDatabase> {
  const db = await freshDatabase(prefix);
  await withClient(db.url, async (c) => {
    await createDemoSchema(c, ROWS);
    await c.query(`
      UPDATE app.orders SET id = ${INT_MAX} - (id - 1) WHERE id BETWEEN 1 AND 20;
      UPDATE app.orders_twin SET id = ${INT_MAX} - (id - 1) WHERE id BETWEEN 1 AND 20;
      UPDATE app.orders SET id = -id WHERE id BETWEEN 21 AND 40;
      UPDATE app.orders_twin SET id = -id WHERE id BETWEEN 21 AND 40;
      INSERT INTO app.order_items (order_id, sku) VALUES (${INT_MAX}, 'edge'), (-21, 'negative');`);
  });
  return db;
}

async function columnType(c: pg.ClientBase, table: string, column: string): Promise<string> {
  const r = await c.query<{ t: string }>(
    'SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2',
    [table, column],
  );
  return r.rows[0]!.t;
}

async function sequenceShape(c: pg.ClientBase): Promise<{ type: string; max: string }> {
  const r = await c.query<{ type: string; max: string }>(
    "SELECT seqtypid::regtype::text AS type, seqmax::text AS max FROM pg_sequence WHERE seqrelid = 'app.orders_id_seq'::regclass",
  );
  return r.rows[0]!;
}

async function runPlan(url: string, dir: string, extra: string[] = []): Promise<void> {
  const r = await cli(['run', '--plan', dir, '--url', url, ...extra]);
  expect(r.code, r.stderr).toBe(0);
}

async function expectTwin(url: string): Promise<void> {
  await withClient(url, async (c) => {
    expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
  });
}

describe('--key-to-bigint under concurrent writers', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await prepared('k2b');
  });
  afterAll(async () => db?.drop());

  it('widens the key and its sequence, keeps every row (edge and negative keys too), and the referencing plan widens the child', async () => {
    const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
    const out = join(mkdtempSync(join(tmpdir(), 'sp-k2b-')), 'orders');
    const p = await cli([
      'plan',
      '--table',
      'app.orders',
      '--out',
      out,
      '--url',
      db.url,
      '--key-to-bigint',
      '--with-referencing',
      '--batch-pages',
      '5',
    ]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain(`${out}-app.order_items`);
    const manifest = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as PlanManifest;
    expect(manifest.transform.differences).toContain('column id: integer → bigint (row key)');
    expect(manifest.stages.find((s) => s.name === 'swap')!.hazards).not.toContain('REFERENCING_KEY_NOT_WIDENED');
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toContain('`id` ← `"id"`');

    const writers = await startWriters({ connectionString: db.url }, 3, 1, ROWS);
    await runPlan(db.url, out, ['--until', 'cleanup']);
    // The child's swap moves its foreign key to app.orders while the writers use both tables:
    // the lock step takes ACCESS EXCLUSIVE on app.orders up front, so no deadlock with them.
    await runPlan(db.url, `${out}-app.order_items`, ['--until', 'cleanup']);
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    expect(stats.commits).toBeGreaterThan(10);
    await expectTwin(db.url);

    await withClient(db.url, async (c) => {
      expect(await columnType(c, 'app.orders', 'id')).toBe('bigint');
      expect(await columnType(c, 'app.order_items', 'order_id')).toBe('bigint');
      expect(await columnType(c, 'app.orders', 'customer_id')).toBe('integer');
      expect(await sequenceShape(c)).toEqual({ type: 'bigint', max: '9223372036854775807' });
      const after = await catalogSnapshot(c, 'app', 'orders');
      expect(after.indexes).toEqual(before.indexes);
      expect(after.constraints).toEqual(before.constraints);
      expect(await leftovers(c)).toEqual([]);
      const edge = await c.query<{ n: string }>(
        `SELECT count(*) AS n FROM app.orders WHERE id > ${INT_MAX - 20} OR id < 0`,
      );
      // Writers may have deleted a few of them; the twin comparison above checks each one.
      expect(Number(edge.rows[0]!.n)).toBeGreaterThan(20);
      // The sequence goes past 2^31 − 1 now, and the child accepts such a key.
      await c.query(`SELECT setval('app.orders_id_seq', ${INT_MAX})`);
      const r = await c.query<{ id: string }>('INSERT INTO app.orders (customer_id, qty) VALUES (1, 1) RETURNING id');
      expect(r.rows[0]!.id).toBe(String(INT_MAX + 1));
      await c.query('INSERT INTO app.order_items (order_id, sku) VALUES ($1, $2)', [r.rows[0]!.id, 'beyond']);
      await expect(c.query("INSERT INTO app.order_items (order_id, sku) VALUES (9000000000, 'none')")).rejects.toThrow(
        /foreign key/,
      );
    });
  });
});

describe('--key-to-bigint: hazards and revert', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await prepared('k2b_revert');
  });
  afterAll(async () => db?.drop());

  it('without --with-referencing names the narrow foreign key; revert brings back integer and every write', async () => {
    const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
    const out = join(mkdtempSync(join(tmpdir(), 'sp-k2b-')), 'orders');
    const p = await cli([
      'plan',
      '--table',
      'app.orders',
      '--out',
      out,
      '--url',
      db.url,
      '--key-to-bigint',
      '--batch-pages',
      '5',
    ]);
    expect(p.code, p.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as PlanManifest;
    expect(manifest.stages.find((s) => s.name === 'swap')!.hazards).toContain('REFERENCING_KEY_NOT_WIDENED');
    expect(manifest.transform.narrowReferences).toEqual(['app.order_items.order_items_order_id_fkey']);
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toContain('REFERENCING_KEY_NOT_WIDENED');

    const writers = await startWriters({ connectionString: db.url }, 3, 1, ROWS);
    await runPlan(db.url, out, ['--until', 'swap']);
    await withClient(db.url, async (c) => expect(await columnType(c, 'app.orders', 'id')).toBe('bigint'));
    // Writes to the rebuilt (bigint) table must reach the old one for revert.
    await withClient(db.url, async (c) => {
      for (let i = 0; i < 200; i++) {
        const n = Number(
          (await c.query<{ n: string }>(`SELECT count(*) AS n FROM shadowpack.rlog_${manifest.runId}`)).rows[0]!.n,
        );
        if (n > 10) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('no write reached the reverse log');
    });
    await runPlan(db.url, out, ['--stage', 'revert']);
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await expectTwin(db.url);
    await withClient(db.url, async (c) => {
      expect(await columnType(c, 'app.orders', 'id')).toBe('integer');
      expect(await sequenceShape(c)).toEqual({ type: 'integer', max: String(INT_MAX) });
      expect(await catalogSnapshot(c, 'app', 'orders')).toEqual(before);
      expect(await leftovers(c)).toEqual([]);
    });
  });
});

describe('--key-to-bigint on an identity key', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('k2b_identity');
    await withClient(db.url, (c) =>
      c.query(`
      CREATE SCHEMA app;
      CREATE TABLE app.events (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL);
      INSERT INTO app.events (body) SELECT 'e' || g FROM generate_series(1, 500) g;`),
    );
  });
  afterAll(async () => db?.drop());

  it('gives the identity a bigint sequence that continues, while rows keep arriving', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sp-k2b-')), 'events');
    const p = await cli([
      'plan',
      '--table',
      'app.events',
      '--out',
      out,
      '--url',
      db.url,
      '--key-to-bigint',
      '--batch-pages',
      '1',
    ]);
    expect(p.code, p.stderr).toBe(0);
    let stop = false;
    let inserted = 0;
    const writer = withClient(db.url, async (c) => {
      while (!stop) {
        await c.query("INSERT INTO app.events (body) VALUES ('during')");
        inserted++;
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    const r = await cli(['run', '--plan', out, '--url', db.url, '--until', 'cleanup']);
    stop = true;
    await writer;
    expect(r.code, r.stderr).toBe(0);
    expect(inserted).toBeGreaterThan(5);
    await withClient(db.url, async (c) => {
      expect(await columnType(c, 'app.events', 'id')).toBe('bigint');
      const seq = await c.query<{ type: string; max: string }>(
        "SELECT seqtypid::regtype::text AS type, seqmax::text AS max FROM pg_sequence WHERE seqrelid = pg_get_serial_sequence('app.events', 'id')::regclass",
      );
      expect(seq.rows[0]).toEqual({ type: 'bigint', max: '9223372036854775807' });
      const count = await c.query<{ n: string; d: string }>(
        "SELECT count(*) AS n, count(*) FILTER (WHERE body = 'during') AS d FROM app.events",
      );
      expect(count.rows[0]).toEqual({ n: String(500 + inserted), d: String(inserted) });
      const max = Number((await c.query<{ m: string }>('SELECT max(id) AS m FROM app.events')).rows[0]!.m);
      const next = await c.query<{ id: string }>("INSERT INTO app.events (body) VALUES ('after') RETURNING id");
      expect(Number(next.rows[0]!.id)).toBeGreaterThan(max);
      await c.query(`SELECT setval(pg_get_serial_sequence('app.events', 'id'), ${INT_MAX})`);
      const beyond = await c.query<{ id: string }>("INSERT INTO app.events (body) VALUES ('beyond') RETURNING id");
      expect(beyond.rows[0]!.id).toBe(String(INT_MAX + 1));
      expect(await leftovers(c)).toEqual([]);
    });
  });
});
