import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDemoSchema } from '../../src/dev/workload.js';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable, psql } from '../helpers/rebuild.js';

/** Triggers on the demo table: any change a stage made would show here first. */
async function triggers(url: string): Promise<string[]> {
  return withClient(url, async (c) =>
    (
      await c.query<{ t: string }>(
        "SELECT tgname AS t FROM pg_trigger WHERE tgrelid = 'app.orders'::regclass AND NOT tgisinternal ORDER BY 1",
      )
    ).rows.map((r) => r.t),
  );
}

describe('a plan is bound to the database it was made on', () => {
  let a: FreshDatabase;
  let b: FreshDatabase;
  beforeAll(async () => {
    a = await freshDatabase('bind_a');
    b = await freshDatabase('bind_b');
    // Same schema in both: only the binding tells them apart.
    await withClient(a.url, (c) => createDemoSchema(c, 200));
    await withClient(b.url, (c) => createDemoSchema(c, 500));
  });
  afterAll(async () => {
    await a?.drop();
    await b?.drop();
  });

  it('keeps the stage scripts identical and lists binding.sql as an environment file in diff', async () => {
    const pa = await planTable(a.url, 'app', 'orders');
    const pb = await planTable(b.url, 'app', 'orders');
    expect(pa.manifest.binding.file).toBe('binding.sql');
    expect(pa.manifest.environment.systemIdentifier).toMatch(/^\d+$/);
    expect(pa.manifest.environment.databaseOid).not.toBe(pb.manifest.environment.databaseOid);
    for (const s of pa.manifest.stages) expect(pa.files.get(s.file), s.file).toBe(pb.files.get(s.file));
    expect(pa.files.get('binding.sql')).not.toBe(pb.files.get('binding.sql'));
    const printed = await cli(['plan', '--table', 'app.orders', '--out', join(pa.dir, 'again'), '--url', a.url]);
    expect(printed.stdout).toMatch(
      new RegExp(`^bound to database ${a.name} \\(cluster \\d+\\) by .*binding\\.sql$`, 'm'),
    );
    const r = await cli(['diff', pa.dir, pb.dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^SQL identical/);
    const env = r.stdout.slice(r.stdout.indexOf('environment (never part of the SQL):'));
    expect(env).toMatch(/binding\.sql: written for each database/);
    expect(env).toMatch(/databaseOid: \d+ in A, \d+ in B/);
  });

  it('refuses to run against another database, with the runner and with psql, before any change', async () => {
    const plan = await planTable(a.url, 'app', 'orders');
    const before = await triggers(b.url);
    let r = await cli(['run', '--plan', plan.dir, '--url', b.url, '--until', 'cleanup']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /binding\.sql:\d+:\d+: shadowpack: this plan is bound to database sp_bind_a_\S+, not sp_bind_b_/,
    );
    for (const file of ['00-preflight.sql', '01-setup.sql', '90-abort.sql']) {
      r = await psql(b.url, join(plan.dir, file));
      expect(r.code, file).not.toBe(0);
      expect(r.stderr, file).toContain('this plan is bound to database');
    }
    await withClient(b.url, async (c) => expect(await leftovers(c)).toEqual([]));
    expect(await triggers(b.url)).toEqual(before);
    // The same files pass the binding on the database they were made for.
    r = await psql(a.url, join(plan.dir, '00-preflight.sql'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('preflight passed');
  });

  it('stops by itself under psql called without ON_ERROR_STOP: nothing changes on the wrong database, exit non-zero', async () => {
    const plan = await planTable(a.url, 'app', 'orders');
    const before = await triggers(b.url);
    for (const file of ['01-setup.sql', '02-backfill.sql', '90-abort.sql', 'binding.sql']) {
      // Exactly how the newcomer ran it: no -v ON_ERROR_STOP=1, no -q.
      const r = spawnSync('psql', ['-X', '-d', b.url, '-f', join(plan.dir, file)], { encoding: 'utf8' });
      expect(r.status, file).not.toBe(0);
      expect(r.stderr, file).toContain('this plan is bound to database');
      // One refusal with its hint; nothing after it ran (no second error), and no PL/pgSQL CONTEXT lines.
      expect(r.stderr.match(/ERROR:/g), `${file}: ${r.stderr}`).toHaveLength(1);
      expect(r.stderr, file).toMatch(/HINT: {2}Make a plan for this database/);
      expect(r.stderr, file).not.toContain('CONTEXT:');
    }
    await withClient(b.url, async (c) => expect(await leftovers(c)).toEqual([]));
    expect(await triggers(b.url)).toEqual(before);
  });

  it('refuses an edited binding.sql, and falls back to the database OID when pg_control_system is closed', async () => {
    const plan = await planTable(a.url, 'app', 'orders');
    const file = join(plan.dir, 'binding.sql');
    writeFileSync(file, readFileSync(file, 'utf8').replaceAll(a.name, b.name));
    const r = await cli(['run', '--plan', plan.dir, '--url', b.url, '--until', 'cleanup']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PLAN_TAMPERED: .*binding\.sql differs/);
    // Function privileges are per database: closing it here leaves the other tests alone.
    const role = `sp_bind_reader_${process.pid}`;
    await withClient(b.url, (c) =>
      c.query(`REVOKE EXECUTE ON FUNCTION pg_catalog.pg_control_system() FROM PUBLIC;
               CREATE ROLE ${role} LOGIN PASSWORD 'reader';
               GRANT USAGE ON SCHEMA app TO ${role};
               GRANT SELECT ON app.orders TO ${role}`),
    );
    try {
      const reader = new URL(b.url);
      reader.username = role;
      reader.password = 'reader';
      const pr = await planTable(reader.toString(), 'app', 'orders');
      expect(pr.manifest.environment.systemIdentifier).toBeNull();
      expect(pr.files.get('binding.sql')).toContain(`with OID ${pr.manifest.environment.databaseOid}`);
      // Run by the owner (who can read pg_control_system): the plan checks the OID it recorded.
      const ok = await psql(b.url, join(pr.dir, '00-preflight.sql'));
      expect(ok.code, ok.stderr).toBe(0);
    } finally {
      await withClient(b.url, (c) =>
        c.query(`REVOKE ALL ON app.orders FROM ${role}; REVOKE ALL ON SCHEMA app FROM ${role}; DROP ROLE ${role}`),
      );
    }
  });
});
