import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli } from '../helpers/rebuild.js';
import { readBloat, type BloatRequest, type TableBloat } from '../../src/introspect/bloat.js';

/** name, rows, fraction deleted: reclaimable bytes follow rows × fraction, each at least 1.5× the next. */
const BLOATED: readonly [string, number, number][] = [
  ['huge_holes', 40_000, 0.9],
  ['big_holes', 40_000, 0.6],
  ['mid_holes', 20_000, 0.8],
  ['some_holes', 40_000, 0.25],
  ['small_holes', 10_000, 0.4],
  ['few_holes', 20_000, 0.05],
  ['packed', 20_000, 0],
];

/** What `bloat --json` prints, read in process (the CLI itself is tested once below). */
async function listing(
  url: string,
  req: Partial<BloatRequest> = {},
): Promise<{ estimate: string; tables: readonly TableBloat[] }> {
  const r = await withClient(url, (c) => readBloat(c, { schemas: [], minRatio: 0, minSizeBytes: 0, ...req }));
  return { estimate: r.pgstattuple ? 'pgstattuple_approx' : 'statistics', tables: r.tables };
}

/** The order a DBA gets by hand: exact pgstattuple, free space plus dead tuples. */
async function manualOrder(url: string): Promise<string[]> {
  return withClient(url, async (c) =>
    (
      await c.query<{ t: string }>(`
    SELECT t FROM (
      SELECT format('%s.%s', n.nspname, c.relname) AS t,
             (s).free_space + (s).dead_tuple_len AS reclaimable
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL (SELECT pgstattuple(c.oid) AS s) x
       WHERE n.nspname = 'b' AND c.relkind = 'r') y
    ORDER BY reclaimable DESC, t`)
    ).rows.map((r) => r.t),
  );
}

describe('shadowpack bloat', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('bloat');
    await withClient(db.url, async (c) => {
      await c.query('CREATE SCHEMA b; CREATE SCHEMA other');
      for (const [name, rows, fraction] of BLOATED) {
        await c.query(`CREATE TABLE b.${name} (id int PRIMARY KEY, v text NOT NULL)`);
        await c.query(`INSERT INTO b.${name} SELECT g, repeat('x', 80) FROM generate_series(1, ${rows}) g`);
        // Deletes spread over every page (not a tail that VACUUM would truncate away).
        if (fraction > 0)
          await c.query(`DELETE FROM b.${name} WHERE (id * 7919) % 1000 < ${Math.round(fraction * 1000)}`);
      }
      await c.query(`
        CREATE TABLE b.nokey (a int, v text);
        INSERT INTO b.nokey SELECT g, repeat('x', 80) FROM generate_series(1, 12000) g;
        DELETE FROM b.nokey WHERE a % 2 = 0;
        CREATE UNLOGGED TABLE b.scratch (id int PRIMARY KEY, v text);
        INSERT INTO b.scratch SELECT g, repeat('x', 80) FROM generate_series(1, 5000) g;
        CREATE TABLE b.parted (id int, d date, PRIMARY KEY (id, d)) PARTITION BY RANGE (d);
        CREATE TABLE other.elsewhere (id int PRIMARY KEY, v text);
        INSERT INTO other.elsewhere SELECT g, repeat('x', 80) FROM generate_series(1, 40000) g;
        DELETE FROM other.elsewhere WHERE id % 10 <> 0;`);
      await c.query('VACUUM ANALYZE');
    });
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('without pgstattuple: estimates from statistics, ranks like a manual pgstattuple check, says why a table is refused', async () => {
    const { estimate, tables } = await listing(db.url, { schemas: ['b'] });
    expect(estimate).toBe('statistics');
    expect(tables.every((t) => t.schema === 'b')).toBe(true);
    // The manual check needs the extension; install it only afterwards, so the listing above ran without it.
    await withClient(db.url, (c) => c.query('CREATE EXTENSION pgstattuple'));
    const manual = await manualOrder(db.url);
    const ours = tables.filter((t) => t.heapBytes > 0).map((t) => `${t.schema}.${t.name}`);
    expect(ours.slice(0, 5)).toEqual(manual.slice(0, 5));
    const byName = new Map(tables.map((t) => [t.name, t]));
    expect(byName.get('huge_holes')!.refusal).toBeNull();
    expect(byName.get('huge_holes')!.ratio).toBeGreaterThan(0.75);
    expect(byName.get('huge_holes')!.method).toBe('statistics');
    expect(byName.get('packed')!.ratio).toBeLessThan(0.1);
    expect(byName.get('nokey')!.refusal).toMatch(/no primary key/);
    expect(byName.get('scratch')!.refusal).toMatch(/UNLOGGED/);
    expect(byName.get('parted')!.refusal).toMatch(/partitioned table/);
    // A rebuild writes the live part again: less than the table, more than nothing.
    const h = byName.get('huge_holes')!;
    expect(h.diskNeededBytes).toBeGreaterThan(0);
    expect(h.diskNeededBytes).toBeLessThan(h.totalBytes - h.reclaimableBytes * 0.8 + h.indexBytes);
    await withClient(db.url, (c) => c.query('DROP EXTENSION pgstattuple'));
  });

  it('with pgstattuple: measures with pgstattuple_approx, same top five; thresholds filter; read-only', async () => {
    await withClient(db.url, (c) => c.query('CREATE EXTENSION pgstattuple'));
    const before = await withClient(
      db.url,
      async (c) => (await c.query<{ n: string }>('SELECT count(*) AS n FROM pg_class')).rows[0]!.n,
    );
    const { estimate, tables } = await listing(db.url);
    expect(estimate).toBe('pgstattuple_approx');
    expect(tables.find((t) => t.name === 'huge_holes')!.method).toBe('pgstattuple_approx');
    // Every schema but the system ones.
    expect(tables.some((t) => t.schema === 'other')).toBe(true);
    const manual = await manualOrder(db.url);
    expect(
      tables
        .filter((t) => t.schema === 'b' && t.heapBytes > 0)
        .map((t) => `${t.schema}.${t.name}`)
        .slice(0, 5),
    ).toEqual(manual.slice(0, 5));
    for (let i = 1; i < tables.length; i++)
      expect(tables[i - 1]!.reclaimableBytes).toBeGreaterThanOrEqual(tables[i]!.reclaimableBytes);

    const filtered = (await listing(db.url, { schemas: ['b'], minRatio: 0.5, minSizeBytes: 4 * 1024 * 1024 })).tables;
    expect(filtered.map((t) => t.name).sort()).toEqual(['big_holes', 'huge_holes']);
    const after = await withClient(
      db.url,
      async (c) => (await c.query<{ n: string }>('SELECT count(*) AS n FROM pg_class')).rows[0]!.n,
    );
    expect(after).toBe(before);
  });

  it('prints a table for people, JSON for scripts, and one line for bad input', async () => {
    const json = await cli(['bloat', '--url', db.url, '--schema', 'b', '--min-size', '4MB', '--json']);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as { tables: TableBloat[] }).tables.map((t) => t.name)).toEqual([
      'huge_holes',
      'big_holes',
      'some_holes',
    ]);
    const r = await cli(['bloat', '--url', db.url, '--schema', 'b', '--min-ratio', '0.3']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/pgstattuple|statistics/);
    expect(lines[1]).toMatch(/^table +size +bloat +reclaimable +disk needed +from +can rebuild$/);
    expect(lines[2]).toMatch(/^b\.huge_holes .* yes$/);
    expect(r.stdout).toMatch(/b\.nokey .* no: .*no primary key/);
    expect(lines.at(-1)).toMatch(/^\d+ of \d+ can be rebuilt, reclaiming about /);
    const bad = await cli(['bloat', '--url', db.url, '--min-size', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--min-size lots: give a size such as 10MB/);
  });
});
