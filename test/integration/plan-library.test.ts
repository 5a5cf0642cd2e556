import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { freshDatabase, quoteIdent, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli } from '../helpers/rebuild.js';
import {
  planTable,
  readPlanDir,
  resolveOptions,
  resolveTransform,
  UserError,
  writeTablePlan,
} from '../../src/index.js';
import { splitReadme } from '../../src/compile/provenance.js';

// The planning library (src/index.ts) is what `plan` runs: same folder, byte for byte; and the
// --with-referencing plans go through the same checks as the main one.
describe('planTable, the library entry point', () => {
  let db: FreshDatabase;
  const role = `sp_lib_${randomBytes(3).toString('hex')}`;
  const other = `sp_lib_other_${randomBytes(3).toString('hex')}`;
  const third = `sp_lib_third_${randomBytes(3).toString('hex')}`;
  beforeAll(async () => {
    db = await freshDatabase('plan_library');
    await withClient(db.url, (c) =>
      c.query(`
      CREATE ROLE ${quoteIdent(role)} NOLOGIN;
      CREATE ROLE ${quoteIdent(other)} NOLOGIN;
      CREATE ROLE ${quoteIdent(third)} NOLOGIN;
      GRANT ${quoteIdent(other)} TO ${quoteIdent(role)};
      CREATE SCHEMA app;
      GRANT USAGE, CREATE ON SCHEMA app TO ${quoteIdent(role)}, ${quoteIdent(other)};
      GRANT CREATE ON DATABASE ${quoteIdent(db.name)} TO ${quoteIdent(role)};
      GRANT pg_read_all_stats TO ${quoteIdent(role)};
      CREATE TABLE app.parent (id int PRIMARY KEY, note text);
      CREATE TABLE app.kind (id int PRIMARY KEY);
      INSERT INTO app.kind VALUES (1);
      CREATE TABLE app.child (id int PRIMARY KEY, parent_id int REFERENCES app.parent (id), kind_id int REFERENCES app.kind (id));
      INSERT INTO app.parent SELECT g, 'n' || g FROM generate_series(1, 200) g;
      INSERT INTO app.child SELECT g, g FROM generate_series(1, 200) g;
      ALTER TABLE app.parent OWNER TO ${quoteIdent(role)};
      ALTER TABLE app.child OWNER TO ${quoteIdent(other)};
      ALTER TABLE app.kind OWNER TO ${quoteIdent(third)};`),
    );
  });
  afterAll(async () => {
    await db?.drop();
    await withClient(inject('adminUrl'), (c) =>
      c.query(
        `DROP ROLE IF EXISTS ${quoteIdent(role)}; DROP ROLE IF EXISTS ${quoteIdent(other)}; DROP ROLE IF EXISTS ${quoteIdent(third)}`,
      ),
    );
  });

  it('writes exactly the folder `shadowpack plan` writes', async () => {
    const base = mkdtempSync(join(tmpdir(), 'sp-lib-'));
    const r = await cli([
      'plan',
      '--table',
      'app.parent',
      '--out',
      join(base, 'cli'),
      '--url',
      db.url,
      '--batch-pages',
      '7',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const planned = await withClient(db.url, (c) =>
      planTable(c, { schema: 'app', table: 'parent', options: resolveOptions({ batchPages: 7 }) }),
    );
    writeTablePlan(join(base, 'lib'), planned, false);
    const files = readdirSync(join(base, 'cli')).sort();
    expect(readdirSync(join(base, 'lib')).sort()).toEqual(files);
    // Who planned, when and with which command (provenance) differ, and they live only in the README's
    // header, plan.json's provenance and so SHA256SUMS; everything the plan hash covers is the same.
    const withProvenance = ['README.md', 'SHA256SUMS', 'plan.json'];
    for (const f of files.filter((x) => !withProvenance.includes(x)))
      expect(readFileSync(join(base, 'lib', f), 'utf8'), f).toBe(readFileSync(join(base, 'cli', f), 'utf8'));
    const [lib, viaCli] = [readPlanDir(join(base, 'lib')), readPlanDir(join(base, 'cli'))];
    expect(splitReadme(lib.files.get('README.md')!).body).toBe(splitReadme(viaCli.files.get('README.md')!).body);
    const { provenance: libProvenance, ...libManifest } = lib.manifest;
    const { provenance: cliProvenance, ...cliManifest } = viaCli.manifest;
    expect(libManifest).toEqual(cliManifest);
    expect(libProvenance?.command).toBeNull();
    expect(cliProvenance?.command).toMatch(
      /^shadowpack plan --table app\.parent --out \S+ --url '?postgres:\/\/postgres:\*\*\*@/,
    );
    expect(lib.manifest.planHash).toBe(planned.plan.manifest.planHash);
  });

  it('checks the privileges of the --run-as role on each referencing table too, and writes nothing when one lacks them', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sp-lib-')), 'parent');
    const request = {
      schema: 'app',
      table: 'parent',
      options: resolveOptions({}),
      transform: resolveTransform({ keyToBigint: true, withReferencing: true }),
      runAs: role,
    };
    const e = await withClient(db.url, (c) => planTable(c, request)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).code).toBe('PRIVILEGES_MISSING');
    // The main table passes (the role may act as the child's owner); the child's own plan needs more.
    expect((e as UserError).message).toContain('a plan for "app"."child"');
    expect((e as UserError).message).toContain('GRANT REFERENCES (id) ON TABLE app.kind');
    const r = await cli([
      'plan',
      '--table',
      'app.parent',
      '--out',
      out,
      '--url',
      db.url,
      '--key-to-bigint',
      '--with-referencing',
      '--run-as',
      role,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('PRIVILEGES_MISSING');
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}-app.child`)).toBe(false);
  });
});
