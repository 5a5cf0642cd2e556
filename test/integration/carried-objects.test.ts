import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { catalogSnapshot, cli, leftovers, planTable } from '../helpers/rebuild.js';

/** What the table carries besides rows: triggers, policies, privileges, replica identity, column settings. */
describe('objects attached to the table survive the swap and the revert', () => {
  let db: FreshDatabase;
  const role = `sp_reader_${randomBytes(3).toString('hex')}`;
  beforeAll(async () => {
    db = await freshDatabase('carried');
    await withClient(db.url, (c) =>
      c.query(`
      CREATE ROLE ${role} LOGIN PASSWORD 'pw';
      CREATE SCHEMA s;
      GRANT USAGE ON SCHEMA s TO ${role};
      CREATE TABLE s.audit (n bigserial PRIMARY KEY, op text, id int);
      CREATE FUNCTION s.audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO s.audit (op, id) VALUES (TG_OP, coalesce(NEW.id, OLD.id)); RETURN NULL; END $$;
      CREATE TABLE s.t (id serial PRIMARY KEY, owner_name text NOT NULL, secret text, big text, code text NOT NULL);
      CREATE UNIQUE INDEX t_code_key ON s.t (code);
      ALTER TABLE s.t REPLICA IDENTITY USING INDEX t_code_key;
      ALTER TABLE s.t ALTER COLUMN big SET STORAGE EXTERNAL, ALTER COLUMN big SET STATISTICS 700, ALTER COLUMN secret SET COMPRESSION pglz;
      CREATE TRIGGER t_audit AFTER INSERT OR UPDATE OR DELETE ON s.t FOR EACH ROW EXECUTE FUNCTION s.audit();
      CREATE TRIGGER t_off AFTER INSERT ON s.t FOR EACH ROW EXECUTE FUNCTION s.audit();
      ALTER TABLE s.t DISABLE TRIGGER t_off;
      CREATE TRIGGER t_replica AFTER DELETE ON s.t FOR EACH ROW EXECUTE FUNCTION s.audit();
      ALTER TABLE s.t ENABLE REPLICA TRIGGER t_replica;
      ALTER TABLE s.t ENABLE ROW LEVEL SECURITY;
      CREATE POLICY mine ON s.t FOR SELECT TO ${role} USING (owner_name = current_user);
      GRANT SELECT (id, owner_name) ON s.t TO ${role};
      INSERT INTO s.t (owner_name, secret, big, code)
      SELECT CASE WHEN g % 2 = 0 THEN '${role}' ELSE 'someone' END, 's' || g, repeat('b', 100), 'c' || g FROM generate_series(1, 2000) g;
      DELETE FROM s.audit;
    `),
    );
  });
  afterAll(async () => {
    await db?.drop();
    await withClient(db.url.replace(/\/[^/]*$/, '/postgres'), (c) => c.query(`DROP ROLE IF EXISTS ${role}`)).catch(
      () => undefined,
    );
  });

  async function behaves(): Promise<void> {
    await withClient(db.url, async (c) => {
      await c.query('DELETE FROM s.audit');
      await c.query("INSERT INTO s.t (owner_name, code) VALUES ('x', 'new-" + Math.random() + "')");
      await c.query("UPDATE s.t SET secret = 'u' WHERE id = 1");
      // Once per write: t_audit fires, t_off stays off, t_replica does not fire in origin sessions.
      const ops = (await c.query<{ op: string }>('SELECT op FROM s.audit ORDER BY n')).rows.map((r) => r.op);
      expect(ops).toEqual(['INSERT', 'UPDATE']);
    });
    const reader = new pg.Client({ connectionString: db.url.replace(/\/\/[^@]*@/, `//${role}:pw@`) });
    await reader.connect();
    try {
      const seen = await reader.query<{ n: string }>('SELECT count(*) AS n FROM s.t');
      expect(Number(seen.rows[0]!.n)).toBe(1000);
      await expect(reader.query('SELECT secret FROM s.t LIMIT 1')).rejects.toThrow(/permission denied/);
    } finally {
      await reader.end();
    }
  }

  it('keeps the catalog fingerprint and the behaviour after a full run, and after a revert', async () => {
    const before = await withClient(db.url, (c) => catalogSnapshot(c, 's', 't'));
    await behaves();
    let plan = await planTable(db.url, 's', 't');
    let r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await catalogSnapshot(c, 's', 't')).toEqual(before);
      expect(await leftovers(c)).toEqual([]);
    });
    await behaves();

    plan = await planTable(db.url, 's', 't');
    const mid = await withClient(db.url, (c) => catalogSnapshot(c, 's', 't'));
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'swap']);
    expect(r.code, r.stderr).toBe(0);
    await behaves();
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'revert']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await catalogSnapshot(c, 's', 't')).toEqual(mid);
      expect(await leftovers(c)).toEqual([]);
    });
    await behaves();
  });
});
