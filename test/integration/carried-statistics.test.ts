/**
 * Extended statistics (issue 13): carried like indexes — created on the copy, renamed at the swap,
 * moved back at revert — with their kinds, expressions, target, owner and comment; and reloptions
 * come back in their catalog order (pg_dump prints them so).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { freshDatabase, quoteIdent, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable } from '../helpers/rebuild.js';
import { describeTable } from '../helpers/catalog-describe.js';

describe('extended statistics and reloption order', () => {
  let db: FreshDatabase;
  const owner = `stat_owner_${randomBytes(3).toString('hex')}`;
  beforeAll(async () => {
    db = await freshDatabase('statistics');
    await withClient(db.url, (c) =>
      c.query(`
      CREATE ROLE ${quoteIdent(owner)};
      CREATE SCHEMA st; CREATE SCHEMA stats_elsewhere;
      CREATE TABLE st.t (id int PRIMARY KEY, a int, b int, c text)
        WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02);
      INSERT INTO st.t SELECT g, g % 10, g % 20, 'c' || (g % 7) FROM generate_series(1, 3000) g;
      CREATE STATISTICS st.t_ab (dependencies) ON a, b FROM st.t;
      CREATE STATISTICS st.t_all ON a, b, c FROM st.t;
      CREATE STATISTICS stats_elsewhere."Mixed ""name""" (ndistinct, mcv) ON a, (b + 1), lower(c) FROM st.t;
      CREATE STATISTICS st.t_expr ON (a * 2) FROM st.t;
      ALTER STATISTICS st.t_all SET STATISTICS 321;
      ALTER STATISTICS st.t_ab OWNER TO ${quoteIdent(owner)};
      COMMENT ON STATISTICS st.t_expr IS 'one expression';
      ANALYZE st.t;`),
    );
  });
  afterAll(async () => {
    await db?.drop();
    await withClient(inject('adminUrl'), (c) => c.query(`DROP ROLE IF EXISTS ${quoteIdent(owner)}`));
  });

  it('a full run keeps every statistics object and the reloption order, and the rebuilt table has them computed', async () => {
    const before = await withClient(db.url, (c) => describeTable(c, 'st', 't'));
    expect(before['statistics']).toHaveLength(4);
    expect(before['table']![0]).toMatch(
      /reloptions=\{fillfactor=80,autovacuum_vacuum_scale_factor=0\.05,autovacuum_analyze_scale_factor=0\.02\}/,
    );
    const plan = await planTable(db.url, 'st', 't');
    const r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await describeTable(c, 'st', 't')).toEqual(before);
      expect(await leftovers(c)).toEqual([]);
      // The build's ANALYZE computed them on the copy, so the planner has them from the swap on.
      const built = await c.query<{ n: string }>(
        "SELECT count(*) AS n FROM pg_statistic_ext s JOIN pg_statistic_ext_data d ON d.stxoid = s.oid WHERE s.stxrelid = 'st.t'::regclass",
      );
      expect(Number(built.rows[0]!.n)).toBe(4);
    });
  });

  it('revert gives the original table its statistics objects back under their names', async () => {
    const before = await withClient(db.url, (c) => describeTable(c, 'st', 't'));
    const oid = await withClient(
      db.url,
      async (c) => (await c.query<{ o: number }>("SELECT 'st.t'::regclass::oid AS o")).rows[0]!.o,
    );
    const plan = await planTable(db.url, 'st', 't');
    let r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'swap']);
    expect(r.code, r.stderr).toBe(0);
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'revert']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect((await c.query<{ o: number }>("SELECT 'st.t'::regclass::oid AS o")).rows[0]!.o).toBe(oid);
      expect(await describeTable(c, 'st', 't')).toEqual(before);
      expect(await leftovers(c)).toEqual([]);
    });
  });
});
