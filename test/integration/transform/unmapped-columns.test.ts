import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freshDatabase, withClient, type FreshDatabase } from '../../helpers/db.js';
import { cli, psql } from '../../helpers/rebuild.js';
import type { PlanManifest } from '../../../src/compile/compile.js';
import { planCommand } from '../../../src/cli/commands/plan.js';
import type { TransformArgs } from '../../../src/compile/transform/spec.js';

/**
 * Columns one side of the copy has and the mapping does not fill: a column dropped by --alter (the
 * old table has it; revert writes to the old table) and a column added by --alter (the rebuilt table
 * has it; catch-up writes to the copy). The apply re-writes every logged row; these columns must keep
 * the value the written table already held, and only keys new to it get the column default.
 */

const ROWS = 2000;

/** `key`: the id column's definition; `email`: its constraint ('' where --partition-by cannot carry UNIQUE). */
async function orders(prefix: string, key = 'serial PRIMARY KEY', email = 'UNIQUE'): Promise<FreshDatabase> {
  const db = await freshDatabase(prefix);
  await withClient(db.url, (c) =>
    c.query(`
    CREATE TABLE public.orders (id ${key}, v integer NOT NULL, email text ${email}, status text NOT NULL DEFAULT 'new');
    INSERT INTO public.orders (v, email, status)
    SELECT g, CASE WHEN g % 5 <> 0 THEN 'e' || g END, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3] FROM generate_series(1, ${ROWS}) g;
    CREATE TABLE public.twin (id integer PRIMARY KEY, v integer NOT NULL, email text, status text NOT NULL);
    INSERT INTO public.twin SELECT id, v, email, status FROM public.orders;
    ANALYZE public.orders`),
  );
  return db;
}

interface Writers {
  stop(): Promise<{ commits: number; errors: number; lastError: string | null }>;
}

/**
 * Writers that never name `status` (the rebuilt table has no such column), mirroring each write into
 * the twin in the same transaction. The twin holds what the table must hold: an insert gets the
 * default; a row keeps its status through updates; a key change made while the table has no status
 * column (after the swap) counts as a new row for the old table, so its status becomes the default.
 * They touch keys from `lowest` to ROWS (and the keys they create).
 */
async function startWriters(url: string, count: number, lowest = 1): Promise<Writers> {
  let stopping = false;
  const stats = { commits: 0, errors: 0, lastError: null as string | null };
  const pick = () => lowest + Math.floor(Math.random() * (ROWS + 1 - lowest));
  const loops = Array.from({ length: count }, async (_, w) => {
    const c = new pg.Client({ connectionString: url, application_name: `unmapped-writer-${w}` });
    c.on('error', () => undefined);
    await c.connect();
    let seq = 0;
    while (!stopping) {
      seq++;
      try {
        await c.query('BEGIN');
        for (let i = 0; i < 3; i++) {
          const kind = Math.floor(Math.random() * 100);
          if (kind < 50) {
            const id = pick();
            await c.query('UPDATE public.orders SET v = v + 1 WHERE id = $1', [id]);
            await c.query('UPDATE public.twin SET v = v + 1 WHERE id = $1', [id]);
          } else if (kind < 65) {
            // A unique value moves from one row to another.
            const [a, b] = [pick(), pick()];
            if (a === b) continue;
            const r = await c.query<{ email: string | null }>(
              'SELECT email FROM public.orders WHERE id = $1 FOR UPDATE',
              [a],
            );
            const email = r.rows[0]?.email ?? null;
            await c.query('UPDATE public.orders SET email = NULL WHERE id = $1', [a]);
            await c.query('UPDATE public.twin SET email = NULL WHERE id = $1', [a]);
            if (email !== null) {
              await c.query('UPDATE public.orders SET email = $2 WHERE id = $1', [b, email]);
              await c.query('UPDATE public.twin SET email = $2 WHERE id = $1', [b, email]);
            }
          } else if (kind < 80) {
            const r = await c.query<{ id: number }>(
              'INSERT INTO public.orders (v, email) VALUES ($1, $2) RETURNING id',
              [seq, `w${w}-${seq}-${i}`],
            );
            await c.query("INSERT INTO public.twin VALUES ($1, $2, $3, 'new')", [
              r.rows[0]!.id,
              seq,
              `w${w}-${seq}-${i}`,
            ]);
          } else if (kind < 90) {
            // The row's own columns say which table the name resolved to; the lock it holds keeps the swap out until commit.
            const from = pick();
            const r = await c.query<{ id: number; has_status: boolean }>(
              "UPDATE public.orders SET id = DEFAULT WHERE id = $1 RETURNING id, to_jsonb(orders) ? 'status' AS has_status",
              [from],
            );
            const row = r.rows[0];
            if (row)
              await c.query(`UPDATE public.twin SET id = $2${row.has_status ? '' : ", status = 'new'"} WHERE id = $1`, [
                from,
                row.id,
              ]);
          } else {
            const id = pick();
            await c.query('DELETE FROM public.orders WHERE id = $1', [id]);
            await c.query('DELETE FROM public.twin WHERE id = $1', [id]);
          }
        }
        await c.query('COMMIT');
        stats.commits++;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        if ((e as { code?: string }).code !== '40P01') {
          stats.errors++;
          stats.lastError = (e as Error).message;
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await c.end().catch(() => undefined);
  });
  return {
    async stop() {
      stopping = true;
      await Promise.all(loops);
      return stats;
    },
  };
}

/** Plans public.orders in process (the CLI's own handler; quicker than a process per test). */
async function plan(url: string, alter: string[], transform: TransformArgs = {}): Promise<string> {
  const out = join(mkdtempSync(join(tmpdir(), 'sp-unmapped-')), 'orders');
  await planCommand(
    { table: 'public.orders', out, url, options: { batchPages: 4 }, alter, transform },
    () => undefined,
  );
  return out;
}

const COLS = 'id, v, email, status';

async function twinDifference(
  c: pg.ClientBase,
): Promise<{ missing: number; extra: number; wrongStatus: number; keptStatus: number }> {
  const r = await c.query<{ missing: number; extra: number; wrong: number; kept: number }>(`
    SELECT (SELECT count(*)::int FROM (SELECT ${COLS} FROM public.twin EXCEPT ALL SELECT ${COLS} FROM public.orders) x) AS missing,
           (SELECT count(*)::int FROM (SELECT ${COLS} FROM public.orders EXCEPT ALL SELECT ${COLS} FROM public.twin) x) AS extra,
           (SELECT count(*)::int FROM public.orders o JOIN public.twin t USING (id) WHERE o.status <> t.status) AS wrong,
           (SELECT count(*)::int FROM public.orders WHERE status <> 'new') AS kept`);
  const row = r.rows[0]!;
  return { missing: row.missing, extra: row.extra, wrongStatus: row.wrong, keptStatus: row.kept };
}

describe('revert after --alter "DROP COLUMN status" (status has a default)', () => {
  // The runner's run widens an identity ALWAYS key (the old table's key is integer, the rebuilt one's
  // bigint, and revert inserts with OVERRIDING SYSTEM VALUE); psql's reads back from a partitioned table.
  const variants = [
    {
      via: 'runner',
      key: 'integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY',
      email: 'UNIQUE',
      transform: { keyToBigint: true },
    },
    {
      via: 'psql',
      key: 'serial PRIMARY KEY',
      email: '',
      transform: { partitionBy: 'range(id)', interval: '500', partitionsAhead: 2 },
    },
  ] as const;
  for (const { via, key, email, transform } of variants) {
    it(`keeps each old row's status through the writes made after the swap (revert by ${via})`, async () => {
      const db = await orders(`unmapped_revert_${via}`, key, email);
      try {
        const out = await plan(db.url, ['DROP COLUMN status'], transform);
        const manifest = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as PlanManifest;
        expect(manifest.transform.reverse).not.toBeNull();
        expect(manifest.transform.differences.join('\n')).toMatch(
          via === 'runner' ? /column id: integer → bigint \(row key\)/ : /partition/,
        );
        const writers = await startWriters(db.url, 2);
        const f = await cli(['run', '--plan', out, '--url', db.url, '--until', 'swap']);
        expect(f.code, f.stderr).toBe(0);
        // Writes to the rebuilt table, which has no status column: revert carries them back.
        await new Promise((r) => setTimeout(r, 1000));
        const revertFile = join(out, manifest.stages.find((s) => s.name === 'revert')!.file);
        const b =
          via === 'runner'
            ? await cli(['run', '--plan', out, '--url', db.url, '--stage', 'revert'])
            : await psql(db.url, revertFile);
        expect(b.stderr).not.toMatch(/ERROR/);
        expect(b.code, b.stderr).toBe(0);
        await new Promise((r) => setTimeout(r, 300));
        const stats = await writers.stop();
        expect(stats.errors, stats.lastError ?? '').toBe(0);
        expect(stats.commits).toBeGreaterThan(50);

        await withClient(db.url, async (c) => {
          const d = await twinDifference(c);
          expect(d).toEqual({ missing: 0, extra: 0, wrongStatus: 0, keptStatus: d.keptStatus });
          // The test has teeth: most rows still hold a status other than the default.
          expect(d.keptStatus).toBeGreaterThan(ROWS / 2);
        });
        const readme = readFileSync(join(out, 'README.md'), 'utf8');
        expect(readme).toContain(
          "`status`: kept as it was in the old table for rows that existed before the swap; rows inserted after the swap get its default `'new'::text`",
        );
      } finally {
        await db.drop();
      }
    });
  }
});

describe('forward with --alter ADD COLUMN … DEFAULT nextval(…) / clock_timestamp()', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    // Into a partitioned copy (the apply deletes from and inserts into the partitioned table); alter.test.ts covers
    // an added column with a unique constraint on the copy.
    db = await orders('unmapped_forward', 'serial PRIMARY KEY', '');
    await withClient(db.url, (c) => c.query('CREATE SEQUENCE public.seqno_seq'));
  });
  afterAll(async () => db?.drop());

  it('gives each row its value once: rows updated several times during catch-up keep their first value', async () => {
    const out = await plan(
      db.url,
      [
        "ADD COLUMN seqno bigint NOT NULL DEFAULT nextval('public.seqno_seq')",
        'ADD COLUMN added_at timestamptz NOT NULL DEFAULT clock_timestamp()',
      ],
      { partitionBy: 'range(id)', interval: '500', partitionsAhead: 2 },
    );

    const writers = await startWriters(db.url, 2, 51);
    const values = (c: pg.ClientBase, table: string) =>
      c
        .query<{ id: number; seqno: string; added_at: string }>(
          `SELECT id, seqno, added_at::text FROM ${table} WHERE id <= 50 OR id >= 1000000 ORDER BY id`,
        )
        .then((r) => r.rows);
    const copy = async (c: pg.ClientBase) =>
      (
        await c.query<{ t: string }>(
          "SELECT oid::regclass::text AS t FROM pg_class WHERE relname ~ '^_sp_[0-9a-f]{12}_new$'",
        )
      ).rows[0]!.t;
    const touch = (c: pg.ClientBase) =>
      c.query(`
      UPDATE public.orders SET v = v + 1 WHERE id <= 50; UPDATE public.twin SET v = v + 1 WHERE id <= 50;
      UPDATE public.orders SET v = v + 1 WHERE id >= 1000000; UPDATE public.twin SET v = v + 1 WHERE id >= 1000000`);

    const b = await cli(['run', '--plan', out, '--url', db.url, '--until', 'backfill']);
    expect(b.code, b.stderr).toBe(0);
    const first = await withClient(db.url, async (c) => {
      // Rows new to the copy: they get their value when first applied.
      await c.query(
        "INSERT INTO public.orders (id, v) SELECT g, g FROM generate_series(1000000, 1000009) g; INSERT INTO public.twin SELECT g, g, NULL, 'new' FROM generate_series(1000000, 1000009) g",
      );
      await touch(c);
      const r = await cli(['run', '--plan', out, '--url', db.url, '--until', 'catchup']);
      expect(r.code, r.stderr).toBe(0);
      return values(c, await copy(c));
    });
    expect(first).toHaveLength(60);
    // Applied again here, and once more by the catch-up and the swap that finish the run.
    await withClient(db.url, async (c) => {
      await touch(c);
      const r = await cli(['run', '--plan', out, '--url', db.url, '--stage', 'catchup']);
      expect(r.code, r.stderr).toBe(0);
      expect(await values(c, await copy(c))).toEqual(first);
    });
    await withClient(db.url, touch);
    const r = await cli(['run', '--plan', out, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await withClient(db.url, async (c) => {
      // Writers deleted or re-keyed some of the rows: compare the ones still there.
      const now = await values(c, 'public.orders');
      const firstById = new Map(first.map((x) => [x.id, x]));
      expect(now.filter((x) => firstById.has(x.id)).length).toBeGreaterThan(30);
      for (const x of now) if (firstById.has(x.id)) expect(x).toEqual(firstById.get(x.id));
      expect(await twinDifference(c)).toMatchObject({ missing: 0, extra: 0, wrongStatus: 0 });
      const seq = await c.query<{ dup: number }>(
        'SELECT count(*)::int - count(DISTINCT seqno)::int AS dup FROM public.orders',
      );
      expect(seq.rows[0]!.dup).toBe(0);
    });
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    expect(readme).toMatch(/`seqno`: .*never evaluated again/);
  });
});

describe('columns the mapping does not fill, with names that need quoting', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('unmapped_hostile');
    await withClient(db.url, (c) =>
      c.query(`
      CREATE SCHEMA "Sales ""EU""; drop";
      CREATE TABLE "Sales ""EU""; drop"."order" ("Order Id" serial PRIMARY KEY, "select" text UNIQUE, "say ""hi""" text NOT NULL DEFAULT 'dflt', "名前" text COLLATE "C");
      INSERT INTO "Sales ""EU""; drop"."order" ("select", "say ""hi""", "名前") SELECT 's' || g, 'hi ''' || g, '名' || g FROM generate_series(1, 500) g;
      CREATE TABLE "Sales ""EU""; drop".expected AS SELECT * FROM "Sales ""EU""; drop"."order"`),
    );
  });
  afterAll(async () => db?.drop());

  it('keeps a dropped column through revert and an added one through catch-up', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sp-unmapped-')), 'order');
    await planCommand(
      {
        table: '"Sales ""EU""; drop"."order"',
        out,
        url: db.url,
        options: { batchPages: 2 },
        alter: ['DROP COLUMN "say ""hi"""', 'ADD COLUMN "new ""col""" timestamptz NOT NULL DEFAULT now()'],
      },
      () => undefined,
    );
    const t = '"Sales ""EU""; drop"."order"';
    const b = await cli(['run', '--plan', out, '--url', db.url, '--until', 'build']);
    expect(b.code, b.stderr).toBe(0);
    await withClient(db.url, (c) =>
      c.query(
        `UPDATE ${t} SET "名前" = "名前" || '!' WHERE "Order Id" <= 100; UPDATE "Sales ""EU""; drop".expected SET "名前" = "名前" || '!' WHERE "Order Id" <= 100`,
      ),
    );
    const f = await cli(['run', '--plan', out, '--url', db.url, '--until', 'swap']);
    expect(f.code, f.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      // After the swap, a unique value moves between rows, and rows change.
      await c.query(
        `UPDATE ${t} SET "select" = NULL WHERE "Order Id" = 1; UPDATE ${t} SET "select" = 's1' WHERE "Order Id" = 2; UPDATE ${t} SET "名前" = 'x' WHERE "Order Id" BETWEEN 3 AND 50`,
      );
      await c.query(
        `UPDATE "Sales ""EU""; drop".expected SET "select" = NULL WHERE "Order Id" = 1; UPDATE "Sales ""EU""; drop".expected SET "select" = 's1' WHERE "Order Id" = 2; UPDATE "Sales ""EU""; drop".expected SET "名前" = 'x' WHERE "Order Id" BETWEEN 3 AND 50`,
      );
    });
    // Rows 1-100 were applied again after their batch copied them: they still hold their batch's value,
    // which rows never applied again (101 on, in the same first batch) share.
    const own = await withClient(db.url, (c) =>
      c
        .query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ${t} AS a WHERE "Order Id" <= 100
      AND NOT EXISTS (SELECT FROM ${t} AS b WHERE b."Order Id" > 100 AND b."new ""col""" = a."new ""col""")`,
        )
        .then((x) => x.rows[0]!.n),
    );
    expect(own).toBe(0);
    const r = await cli(['run', '--plan', out, '--url', db.url, '--stage', 'revert']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      const diff = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM (
        (SELECT * FROM ${t} EXCEPT ALL SELECT * FROM "Sales ""EU""; drop".expected) UNION ALL (SELECT * FROM "Sales ""EU""; drop".expected EXCEPT ALL SELECT * FROM ${t})) d`);
      expect(diff.rows[0]!.n).toBe(0);
    });
  });
});
