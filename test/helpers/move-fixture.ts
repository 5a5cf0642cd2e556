/**
 * The FK group a cross-cluster move test moves (issue 15, design §5.1): app.customers (self-reference)
 * <- app.orders <- app.order_items, with a serial, an identity, a sequence shared through a default, and the
 * column types that travel differently (enum, composite, json/jsonb, bytea, float4/8, numeric, timestamptz,
 * interval, arrays, TOAST-size text, NULLs, a generated column). Twins in schema `twin` on the source hold what
 * the application committed (test/helpers/move-writers.ts writes both in one transaction); after cut-over each
 * target table must equal its twin, row for row.
 */
import pg from 'pg';
import { withClient } from './db.js';

export const MOVE_GROUP = ['customers', 'orders', 'order_items'] as const;
export type MoveTable = (typeof MOVE_GROUP)[number];

/** The columns compared with the twin (every column but the generated one), key first. */
export const MOVE_COLUMNS: { readonly [T in MoveTable]: readonly string[] } = {
  customers: ['id', 'referrer_id', 'name', 'email', 'mood', 'address', 'ref', 'created_at'],
  orders: [
    'id',
    'customer_id',
    'email',
    'qty',
    'price',
    'weight',
    'ratio',
    'doc',
    'attrs',
    'blob',
    'tags',
    'scores',
    'note',
    'placed_at',
    'ttl',
    'ref',
  ],
  order_items: ['order_id', 'line', 'sku', 'qty'],
};

export const MOVE_KEYS: { readonly [T in MoveTable]: readonly string[] } = {
  customers: ['id'],
  orders: ['id'],
  order_items: ['order_id', 'line'],
};

export interface MoveFixtureSize {
  readonly customers: number;
  readonly orders: number;
}

/** Creates the group, its twins and the initial rows on the source. */
export async function createMoveFixture(
  c: pg.ClientBase,
  size: MoveFixtureSize = { customers: 200, orders: 1500 },
): Promise<void> {
  await c.query(`
    DROP SCHEMA IF EXISTS app CASCADE;
    DROP SCHEMA IF EXISTS twin CASCADE;
    CREATE SCHEMA app;
    CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
    CREATE TYPE app.addr AS (street text, zip integer);
    CREATE SEQUENCE app.shared_ref_seq;
    CREATE TABLE app.customers (
      id serial PRIMARY KEY,
      referrer_id integer REFERENCES app.customers (id),
      name text NOT NULL,
      email text UNIQUE,
      mood app.mood,
      address app.addr,
      ref bigint NOT NULL DEFAULT nextval('app.shared_ref_seq'),
      created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE TABLE app.orders (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      customer_id integer NOT NULL REFERENCES app.customers (id),
      email text UNIQUE,
      qty integer NOT NULL CHECK (qty > 0),
      price numeric(12,2),
      weight float8,
      ratio float4,
      doc json,
      attrs jsonb,
      blob bytea,
      tags text[],
      scores integer[],
      note text,
      placed_at timestamptz DEFAULT clock_timestamp(),
      ttl interval,
      ref bigint NOT NULL DEFAULT nextval('app.shared_ref_seq'),
      total numeric GENERATED ALWAYS AS (qty * price) STORED
    );
    CREATE INDEX orders_customer_idx ON app.orders (customer_id);
    CREATE TABLE app.order_items (
      order_id bigint NOT NULL REFERENCES app.orders (id) ON UPDATE CASCADE,
      line integer NOT NULL,
      sku text NOT NULL,
      qty integer NOT NULL,
      PRIMARY KEY (order_id, line)
    );
  `);
  await c.query(
    `INSERT INTO app.customers (referrer_id, name, email, mood, address)
     SELECT NULL, 'customer ' || g, CASE WHEN g % 7 <> 0 THEN 'c' || g || '@example.com' END,
            (ARRAY['sad', 'ok', 'happy', NULL])[1 + g % 4]::app.mood,
            CASE WHEN g % 5 <> 0 THEN ROW('street "' || g || '", with comma', 10000 + g)::app.addr END
       FROM generate_series(1, $1::int) g`,
    [size.customers],
  );
  await c.query(`UPDATE app.customers SET referrer_id = id - 1 WHERE id % 3 = 0`);
  await c.query(
    `INSERT INTO app.orders (customer_id, email, qty, price, weight, ratio, doc, attrs, blob, tags, scores, note, placed_at, ttl)
     SELECT 1 + g % $2::int, CASE WHEN g % 10 <> 0 THEN 'o' || g || '@example.com' END, 1 + g % 9,
            CASE WHEN g % 11 <> 0 THEN (g % 1000) + 0.25 END, g / 7.0, (g / 3.0)::float4,
            CASE WHEN g % 4 <> 0 THEN json_build_object('g', g, 'k', 'v ' || g) END,
            CASE WHEN g % 6 <> 0 THEN jsonb_build_object('n', g, 'a', jsonb_build_array(g, 'x', NULL)) END,
            CASE WHEN g % 8 <> 0 THEN decode(md5(g::text), 'hex') END,
            CASE WHEN g % 9 <> 0 THEN ARRAY['t' || g, NULL, 'quote"d'] END, ARRAY[g, g + 1],
            CASE WHEN g % 50 = 0 THEN repeat(md5(g::text), 200) WHEN g % 3 = 0 THEN NULL ELSE 'note ' || g END,
            timestamptz '2026-01-01 00:00:00.123456+00' + g * interval '1 second',
            CASE WHEN g % 2 = 0 THEN g * interval '1 minute 1.5 seconds' END
       FROM generate_series(1, $1::int) g`,
    [size.orders, size.customers],
  );
  await c.query(`INSERT INTO app.order_items (order_id, line, sku, qty)
                 SELECT o.id, l, 'sku-' || o.id || '-' || l, l FROM app.orders o, generate_series(1, 2) l WHERE o.id % 2 = 0`);
  await c.query(`
    CREATE SCHEMA twin;
    CREATE TABLE twin.customers AS SELECT ${MOVE_COLUMNS.customers.join(', ')} FROM app.customers;
    CREATE TABLE twin.orders AS SELECT ${MOVE_COLUMNS.orders.join(', ')} FROM app.orders;
    CREATE TABLE twin.order_items AS SELECT ${MOVE_COLUMNS.order_items.join(', ')} FROM app.order_items;
    ALTER TABLE twin.customers ADD PRIMARY KEY (id);
    ALTER TABLE twin.orders ADD PRIMARY KEY (id);
    ALTER TABLE twin.order_items ADD PRIMARY KEY (order_id, line);
    ANALYZE app.customers, app.orders, app.order_items, twin.customers, twin.orders, twin.order_items;
  `);
}

// Rendering pinned so the two servers print every value the same way (both >= 12: shortest-exact floats).
const PINNED = `SET bytea_output = 'hex'; SET extra_float_digits = 1; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY';
                SET IntervalStyle = 'postgres'`;

async function tableTexts(c: pg.ClientBase, schema: string, table: MoveTable): Promise<string[]> {
  const cols = MOVE_COLUMNS[table].map((x) => `t.${x}`).join(', ');
  const r = await c.query<{ r: string }>(`SELECT ROW(${cols})::text AS r FROM ${schema}.${table} t`);
  return r.rows.map((x) => x.r);
}

async function rowTexts(url: string, schema: string, table: MoveTable): Promise<string[]> {
  return withClient(url, async (c) => {
    await c.query(PINNED);
    return tableTexts(c, schema, table);
  });
}

export interface TableComparison {
  readonly rows: number;
  /** Rows in the twin and not on the target (multiset difference), and the other way. */
  readonly missing: number;
  readonly extra: number;
  /** A few differing rows, for the failure message. */
  readonly sample: readonly string[];
}

export interface MoveComparison {
  readonly tables: { readonly [T in MoveTable]: TableComparison };
  /** Target rows whose generated column is not what the target computes from the row. */
  readonly badGenerated: number;
  readonly equal: boolean;
}

function multisetDiff(want: readonly string[], got: readonly string[]): TableComparison {
  const count = new Map<string, number>();
  for (const r of want) count.set(r, (count.get(r) ?? 0) + 1);
  const extra: string[] = [];
  for (const r of got) {
    const n = count.get(r) ?? 0;
    if (n > 0) count.set(r, n - 1);
    else extra.push(r);
  }
  const missing = [...count.entries()].flatMap(([r, n]) => Array.from({ length: n }, () => r));
  return {
    rows: got.length,
    missing: missing.length,
    extra: extra.length,
    sample: [
      ...missing.slice(0, 3).map((r) => `missing ${r.slice(0, 200)}`),
      ...extra.slice(0, 3).map((r) => `extra ${r.slice(0, 200)}`),
    ],
  };
}

/**
 * The oracle's own check: each group table on `url` against its twin there, both read in one snapshot (writers
 * may still be running; each commits a change and its mirror together). Returns the tables that differ, or null
 * when the group's tables are gone there (a move's cleanup dropped them).
 */
export async function compareGroupWithTwins(url: string): Promise<{ [T in MoveTable]?: TableComparison } | null> {
  return withClient(url, async (c) => {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await c.query(PINNED);
    const gone = await c.query('SELECT FROM unnest($1::text[]) t WHERE to_regclass(t) IS NULL', [
      MOVE_GROUP.map((t) => `app.${t}`),
    ]);
    if (gone.rows.length > 0) return null;
    const differs: { [T in MoveTable]?: TableComparison } = {};
    for (const t of MOVE_GROUP) {
      const d = multisetDiff(await tableTexts(c, 'twin', t), await tableTexts(c, 'app', t));
      if (d.missing + d.extra > 0) differs[t] = d;
    }
    await c.query('COMMIT');
    return differs;
  });
}

/** The twins do not hold what committed on the group: the test's writers are wrong, not the move. */
export class MoveOracleDefect extends Error {
  constructor(readonly differs: { readonly [T in MoveTable]?: TableComparison }) {
    super(
      `move oracle defect, not a move failure: the source's group differs from its twins, so the twins do not ` +
        `hold what committed there (a mirror in test/helpers/move-writers.ts or in the test changed a twin row ` +
        `the group's statement did not, or missed one): ${JSON.stringify(differs)}`,
    );
    this.name = 'MoveOracleDefect';
  }
}

/**
 * Each target table against its source twin, row for row, each side read through a fresh connection. First, while
 * the source still has the group's tables (and is not the target itself), the oracle's own check: the source's
 * group against its twins; a difference there throws MoveOracleDefect, never reported as the target's.
 */
export async function compareMoveWithTwins(sourceUrl: string, targetUrl: string): Promise<MoveComparison> {
  if (sourceUrl !== targetUrl) {
    const differs = await compareGroupWithTwins(sourceUrl);
    if (differs !== null && Object.keys(differs).length > 0) throw new MoveOracleDefect(differs);
  }
  const tables = {} as { [T in MoveTable]: TableComparison };
  let equal = true;
  for (const t of MOVE_GROUP) {
    const [want, got] = await Promise.all([rowTexts(sourceUrl, 'twin', t), rowTexts(targetUrl, 'app', t)]);
    tables[t] = multisetDiff(want, got);
    if (tables[t].missing + tables[t].extra > 0) equal = false;
  }
  const badGenerated = await withClient(targetUrl, async (c) =>
    Number(
      (await c.query<{ n: string }>('SELECT count(*) AS n FROM app.orders WHERE total IS DISTINCT FROM qty * price'))
        .rows[0]!.n,
    ),
  );
  return { tables, badGenerated, equal: equal && badGenerated === 0 };
}
