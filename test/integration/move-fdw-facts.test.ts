/**
 * The postgres_fdw facts the cross-cluster move (issue 15, design/cross-cluster.md §4.12) is built on, checked
 * between a PostgreSQL 14 source and the suite's PostgreSQL 17 target. If one of these stops holding, the move's
 * consistency argument (docs/cross-cluster.md) no longer holds either.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../helpers/db.js';
import {
  createTestForeignServer,
  freshMovePair,
  SOURCE_MAJOR,
  MOVE_SOURCE_MISSING,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';

let servers: MoveServers;
let pair: MovePair;

beforeAll(async () => {
  servers = await startMoveServers();
  pair = await freshMovePair(servers, 'fdw_facts');
  await withClient(pair.source.url, (c) =>
    c.query(`
      CREATE TABLE public.t (id int PRIMARY KEY, b bytea, v text);
      INSERT INTO public.t SELECT g, '\\x01ff'::bytea, repeat('x', 100) FROM generate_series(1, 2000) g;
      CREATE TABLE public.log (id bigint GENERATED ALWAYS AS IDENTITY, xid xid8 NOT NULL DEFAULT pg_current_xact_id(), k int);
      CREATE VIEW public.snap AS SELECT pg_catalog.pg_current_snapshot()::text AS snap;
      CREATE VIEW public.settings AS
        SELECT pg_catalog.current_setting('bytea_output') AS bytea_output,
               pg_catalog.current_setting('statement_timeout') AS statement_timeout,
               pg_catalog.current_setting('application_name') AS application_name,
               pg_catalog.current_setting('search_path') AS search_path,
               pg_catalog.current_setting('server_version_num') AS server_version_num;`),
  );
  await createTestForeignServer(pair, {
    options: '-c bytea_output=escape -c statement_timeout=12345',
    application_name: 'shadowpack:fdw-facts',
    fetch_size: '10000',
  });
  await withClient(pair.target.url, (c) =>
    c.query(`
      CREATE FOREIGN TABLE public.ft (id int, b bytea, v text) SERVER src OPTIONS (schema_name 'public', table_name 't');
      CREATE FOREIGN TABLE public.flog (id bigint, xid xid8, k int) SERVER src OPTIONS (schema_name 'public', table_name 'log');
      CREATE FOREIGN TABLE public.fsnap (snap text) SERVER src OPTIONS (schema_name 'public', table_name 'snap');
      CREATE FOREIGN TABLE public.fsettings (bytea_output text, statement_timeout text, application_name text,
        search_path text, server_version_num text) SERVER src OPTIONS (schema_name 'public', table_name 'settings');`),
  );
}, 120_000);

afterAll(async () => {
  await pair?.drop();
  await servers?.stop();
});

async function remoteSql(c: pg.ClientBase, sql: string, params: unknown[] = []): Promise<string> {
  const r = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN (VERBOSE) ${sql}`, params);
  return r.rows.map((x) => x['QUERY PLAN']).join('\n');
}

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)(
  `postgres_fdw between PostgreSQL ${SOURCE_MAJOR} (source) and the suite's server (target)`,
  () => {
    it('installs on both sides', async () => {
      const versions = await Promise.all(
        [pair.source.url, pair.target.url].map((url) =>
          withClient(url, async (c) => {
            await c.query('CREATE EXTENSION IF NOT EXISTS postgres_fdw');
            const r = await c.query<{ major: number; ext: string }>(
              `SELECT current_setting('server_version_num')::int / 10000 AS major,
                    (SELECT extversion FROM pg_extension WHERE extname = 'postgres_fdw') AS ext`,
            );
            return r.rows[0]!;
          }),
        ),
      );
      expect(versions[0]!.major).toBe(SOURCE_MAJOR);
      expect(versions[1]!.major).toBeGreaterThanOrEqual(SOURCE_MAJOR);
      expect(versions.every((v) => v.ext)).toBe(true);
    });

    it('ships ctid range quals (constants and parameters) and the source runs a TID Range Scan', async () => {
      await withClient(pair.target.url, async (c) => {
        const constant = await remoteSql(
          c,
          `SELECT id FROM public.ft WHERE ctid >= '(1,0)'::tid AND ctid < '(3,0)'::tid`,
        );
        expect(constant).toContain(
          `Remote SQL: SELECT id FROM public.t WHERE ((ctid >= '(1,0)')) AND ((ctid < '(3,0)'))`,
        );
        // A generic plan (as inside a plpgsql function after five calls) sends the bounds as remote parameters.
        await c.query('SET plan_cache_mode = force_generic_plan');
        await c.query(`PREPARE range(tid, tid) AS SELECT id FROM public.ft WHERE ctid >= $1 AND ctid < $2`);
        const generic = await remoteSql(c, `EXECUTE range('(1,0)', '(3,0)')`);
        expect(generic).toContain(
          'Remote SQL: SELECT id FROM public.t WHERE ((ctid >= $1::tid)) AND ((ctid < $2::tid))',
        );
        const n = await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM public.ft WHERE ctid >= '(1,0)'::tid AND ctid < '(3,0)'::tid`,
        );
        const local = await withClient(pair.source.url, (s) =>
          s.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM public.t WHERE ctid >= '(1,0)'::tid AND ctid < '(3,0)'::tid`,
          ),
        );
        expect(n.rows[0]!.n).toBe(local.rows[0]!.n);
        expect(n.rows[0]!.n).toBeGreaterThan(0);
      });
      const plan = await withClient(pair.source.url, (s) =>
        s.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN SELECT id FROM public.t WHERE ctid >= '(1,0)'::tid AND ctid < '(3,0)'::tid`,
        ),
      );
      expect(plan.rows[0]!['QUERY PLAN']).toMatch(/^Tid Range Scan on t/);
    });

    it('ships pg_visible_in_snapshot in a scan and runs the prune DELETE as a direct remote modify', async () => {
      await withClient(pair.target.url, async (c) => {
        const scan = await remoteSql(
          c,
          `SELECT k FROM public.flog WHERE pg_visible_in_snapshot(xid, $1::pg_snapshot)`,
          ['10:10:'],
        );
        expect(scan).toContain(
          `Remote SQL: SELECT k FROM public.log WHERE (pg_visible_in_snapshot(xid, '10:10:'::pg_snapshot))`,
        );
        const prune = await remoteSql(
          c,
          `DELETE FROM public.flog WHERE pg_visible_in_snapshot(xid, '10:10:'::pg_snapshot)`,
        );
        expect(prune).toContain('Foreign Delete on public.flog');
        expect(prune).toContain(
          `Remote SQL: DELETE FROM public.log WHERE (pg_visible_in_snapshot(xid, '10:10:'::pg_snapshot))`,
        );
        const agg = await remoteSql(c, `SELECT count(*) FROM public.fsnap`);
        expect(agg).toContain('Remote SQL: SELECT count(*) FROM public.snap');
      });
    });

    it("accepts libpq 'options' on the foreign server and the settings take effect, except the ones postgres_fdw pins", async () => {
      const r = await withClient(pair.target.url, (c) => c.query('SELECT * FROM public.fsettings'));
      expect(r.rows[0]).toMatchObject({
        bytea_output: 'escape',
        statement_timeout: '12345ms',
        application_name: 'shadowpack:fdw-facts',
        // postgres_fdw sets search_path after connecting: 'options' cannot change it (views must schema-qualify).
        search_path: 'pg_catalog',
      });
      // bytea travels as the source's text output and is read back by the target's input function:
      // bytea_output changes nothing in the data, only in text computed on the source (hashes).
      const b = await withClient(pair.target.url, (c) =>
        c.query<{ b: Buffer }>('SELECT b FROM public.ft WHERE id = 1'),
      );
      expect(b.rows[0]!.b).toEqual(Buffer.from([0x01, 0xff]));
    });

    for (const isolation of ['READ COMMITTED', 'REPEATABLE READ'] as const) {
      it(`reads one source snapshot for the whole target transaction (${isolation}): the snapshot read through a view is the one later scans use`, async () => {
        await withClient(pair.target.url, async (c) => {
          await c.query(`BEGIN ISOLATION LEVEL ${isolation}`);
          const s1 = (await c.query<{ snap: string }>('SELECT snap FROM public.fsnap')).rows[0]!.snap;
          // A write committed on the source between the target's first and later remote reads.
          const marker = isolation === 'READ COMMITTED' ? 1001 : 1002;
          const committed = await withClient(pair.source.url, (s) =>
            s.query<{ xid: string }>('INSERT INTO public.log (k) VALUES ($1) RETURNING xid::text', [marker]),
          );
          const inTxn = await c.query<{ seen: number; visible: boolean }>(
            `SELECT count(*) FILTER (WHERE k = $1)::int AS seen,
                  pg_visible_in_snapshot($2::xid8, $3::pg_snapshot) AS visible FROM public.flog`,
            [marker, committed.rows[0]!.xid, s1],
          );
          const s2 = (await c.query<{ snap: string }>('SELECT snap FROM public.fsnap')).rows[0]!.snap;
          await c.query('COMMIT');
          expect(inTxn.rows[0]).toEqual({ seen: 0, visible: false });
          expect(s2).toBe(s1);
          const after = await c.query<{ seen: number }>('SELECT count(*)::int AS seen FROM public.flog WHERE k = $1', [
            marker,
          ]);
          expect(after.rows[0]!.seen).toBe(1);
        });
      });
    }

    it('opens one remote connection per user mapping: a read under another role (SECURITY DEFINER) sees another snapshot', async () => {
      await withClient(pair.target.url, async (c) => {
        const src = new URL(pair.source.url);
        await c.query(`CREATE ROLE fdw_facts_definer NOLOGIN`);
        await c.query(`GRANT USAGE ON FOREIGN SERVER src TO fdw_facts_definer`);
        await c.query(`GRANT SELECT ON public.fsnap TO fdw_facts_definer`);
        await c.query(
          `CREATE USER MAPPING FOR fdw_facts_definer SERVER src OPTIONS (user '${decodeURIComponent(src.username)}', password '${decodeURIComponent(src.password)}')`,
        );
        await c.query(`CREATE FUNCTION public.snap_as_definer() RETURNS text LANGUAGE sql SECURITY DEFINER
                       SET search_path = pg_catalog AS 'SELECT snap FROM public.fsnap'`);
        await c.query(`ALTER FUNCTION public.snap_as_definer() OWNER TO fdw_facts_definer`);
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        const mine = (await c.query<{ snap: string }>('SELECT snap FROM public.fsnap')).rows[0]!.snap;
        await withClient(pair.source.url, (s) => s.query('INSERT INTO public.log (k) VALUES (1003)'));
        const definers = (await c.query<{ snap: string }>('SELECT public.snap_as_definer() AS snap')).rows[0]!.snap;
        await c.query('COMMIT');
        expect(definers).not.toBe(mine);
      });
    });
  },
);
