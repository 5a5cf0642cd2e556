import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, planTable } from '../helpers/rebuild.js';
import { createDemoSchema, startWriters } from '../../src/dev/workload.js';

describe('shadowpack verify', () => {
  let db: FreshDatabase;
  beforeAll(async () => {
    db = await freshDatabase('verify');
    await withClient(db.url, (c) => createDemoSchema(c, 20_000));
  });
  afterAll(async () => db?.drop());

  it('passes under load before and after the swap, and fails when a row of the copy is altered by hand', async () => {
    const plan = await planTable(db.url, 'app', 'orders', { batchPages: 20 });
    let r = await cli(['verify', '--plan', plan.dir, '--url', db.url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('nothing to verify');
    const writers = await startWriters({ connectionString: db.url }, 3, 1);
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'catchup']);
    expect(r.code, r.stderr).toBe(0);
    // While the writers keep going: what is not in the log must be equal.
    r = await cli(['verify', '--plan', plan.dir, '--url', db.url, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const before = JSON.parse(r.stdout) as { pass: boolean; compared: number; side: string };
    expect(before).toMatchObject({ pass: true, side: 'before-swap' });
    expect(before.compared).toBeGreaterThan(15_000);
    await writers.stop();

    const copy = `app."_sp_${plan.manifest.runId}_new"`;
    const altered = await withClient(db.url, async (c) => {
      const k = await c.query<{ id: number }>(
        `SELECT id FROM ${copy} WHERE id NOT IN (SELECT k1 FROM shadowpack."log_${plan.manifest.runId}") LIMIT 1`,
      );
      await c.query(`UPDATE ${copy} SET note = 'altered by hand' WHERE id = $1`, [k.rows[0]!.id]);
      return k.rows[0]!.id;
    });
    r = await cli(['verify', '--plan', plan.dir, '--url', db.url]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL: .* \d+ rows compared, 0 missing, 0 extra, 1 different/);
    // Newcomer review finding 21: the key of the row that differs.
    expect(r.stdout).toContain(`\n  keys (id): (${altered}) different\n`);
    const json = await cli(['verify', '--plan', plan.dir, '--url', db.url, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ pass: false, changed: 1, differingKeys: `(${altered}) different` });
    expect(r.stdout).toContain(
      `\n  the copy differs: do not swap; find out why (--ranges N names the key ranges), then shadowpack run --plan ${plan.dir} --stage abort\n`,
    );
    // Put it right (the log re-reads the row from the table), swap, verify against the old table.
    await withClient(db.url, async (c) => {
      await c.query(
        `UPDATE app.orders SET note = note WHERE id IN (SELECT id FROM ${copy} WHERE note = 'altered by hand')`,
      );
    });
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'swap']);
    expect(r.code, r.stderr).toBe(0);
    r = await cli(['verify', '--plan', plan.dir, '--url', db.url]);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^PASS: .* against the old table/);
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
  });

  it("names the differing keys when a superuser verifies another owner's table (through the owner's verify function)", async () => {
    const role = `sp_verify_owner_${process.pid}`;
    await withClient(db.url, (c) =>
      c.query(`
      CREATE ROLE ${role};
      GRANT USAGE, CREATE ON SCHEMA app TO ${role};
      CREATE TABLE app.owned (id int PRIMARY KEY, v text);
      INSERT INTO app.owned SELECT g, 'x' || g FROM generate_series(1, 300) g;
      ALTER TABLE app.owned OWNER TO ${role};`),
    );
    const plan = await planTable(db.url, 'app', 'owned');
    let r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'catchup']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      // The route is taken: the verify function belongs to the table's owner, and we are a superuser who is not.
      const fn = await c.query(`SELECT pg_get_userbyid(proowner) AS owner FROM pg_proc WHERE proname = $1`, [
        `vowner_${plan.manifest.runId}`,
      ]);
      expect(fn.rows[0]?.owner).toBe(role);
      await c.query(
        `UPDATE app."_sp_${plan.manifest.runId}_new" SET v = 'by hand' WHERE id IN (7, 250); DELETE FROM app."_sp_${plan.manifest.runId}_new" WHERE id = 9`,
      );
    });
    r = await cli(['verify', '--plan', plan.dir, '--url', db.url]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('\n  keys (id): (7) different; (9) missing; (250) different\n');
    r = await cli(['run', '--plan', plan.dir, '--url', db.url, '--stage', 'abort']);
    expect(r.code, r.stderr).toBe(0);
    // Roles outlive the database: leave none behind.
    await withClient(db.url, (c) => c.query(`DROP TABLE app.owned; DROP OWNED BY ${role}; DROP ROLE ${role}`));
  });
});
