import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers } from '../helpers/rebuild.js';

const CASES: { table: string; code: string; says: RegExp }[] = [
  { table: 'r.missing', code: 'TABLE_NOT_FOUND', says: /does not exist/ },
  { table: 'r.nokey', code: 'NO_USABLE_KEY', says: /no primary key/ },
  { table: 'r.nullable_unique', code: 'NO_USABLE_KEY', says: /no primary key/ },
  { table: 'r.unlogged', code: 'UNSUPPORTED_TABLE', says: /UNLOGGED/ },
  { table: 'r.parted', code: 'UNSUPPORTED_TABLE', says: /partitioned table/ },
  { table: 'r.parted_2026', code: 'UNSUPPORTED_TABLE', says: /partition of/ },
  { table: 'r.parent', code: 'UNSUPPORTED_TABLE', says: /inheritance parent/ },
  { table: 'r.child', code: 'UNSUPPORTED_TABLE', says: /inherits/ },
  { table: 'r.aview', code: 'UNSUPPORTED_TABLE', says: /is a view/ },
  { table: 'r.with_matview', code: 'UNSUPPORTED_OBJECT', says: /materialized view r\.mv_with_matview reads it/ },
  { table: 'r.with_rule', code: 'UNSUPPORTED_OBJECT', says: /rule log_it on table r\.rule_host refers to it/ },
  // Three objects, one line, in catalog order.
  {
    table: 'r.with_rowtype',
    code: 'UNSUPPORTED_OBJECT',
    says: /column whole of view r\.v_whole_row uses the table's row type.*; column x of table r\.rowtype_user uses the table's row type.*; function r\.takes_row\(r\.with_rowtype\) uses the table's row type/,
  },
  {
    table: 'r.with_misc',
    code: 'UNSUPPORTED_OBJECT',
    says: /rule ins on view r\.v_misc refers to it.*; trigger from_misc on table r\.misc_host refers to it.*; type r\.misc_domain uses the table's row type/,
  },
  {
    table: 'r.with_foreign_policy',
    code: 'UNSUPPORTED_OBJECT',
    says: /policy peek on table r\.policy_host refers to it/,
  },
  { table: 'r.with_trigger', code: 'UNSUPPORTED_OBJECT', says: /constraint trigger "t_audit"/ },
  { table: 'r.ft', code: 'UNSUPPORTED_TABLE', says: /foreign table/ },
  {
    table: 'nodot',
    code: 'BAD_TABLE_NAME',
    says: /schema\.table \(for example public\.orders\), exactly as the catalog spells the names$/,
  },
  // Newcomer review finding 34: the closest tables, as --table takes them.
  {
    table: 'R.With_Rule',
    code: 'TABLE_NOT_FOUND',
    says: /"R"\."With_Rule" does not exist in this database; did you mean r\.with_rule\? check --table \(names are taken as written, not folded to lower case\)/,
  },
  { table: 'r.with_rul', code: 'TABLE_NOT_FOUND', says: /did you mean r\.with_rule\?/ },
  {
    table: 'with_rule',
    code: 'BAD_TABLE_NAME',
    says: /give the table as schema\.table .*; did you mean r\.with_rule\?$/,
  },
];

describe('tables shadowpack refuses', () => {
  let db: FreshDatabase;
  let serverVersion = 0;
  beforeAll(async () => {
    db = await freshDatabase('refusals');
    serverVersion = await withClient(db.url, async (c) =>
      Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v),
    );
    await withClient(db.url, (c) =>
      c.query(`
      CREATE SCHEMA r;
      CREATE TABLE r.nokey (a int, b text);
      CREATE TABLE r.nullable_unique (a int UNIQUE, b text);
      CREATE UNLOGGED TABLE r.unlogged (id int PRIMARY KEY);
      CREATE TABLE r.parted (id int, d date, PRIMARY KEY (id, d)) PARTITION BY RANGE (d);
      CREATE TABLE r.parted_2026 PARTITION OF r.parted FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
      CREATE TABLE r.parent (id int PRIMARY KEY);
      CREATE TABLE r.child (x int) INHERITS (r.parent);
      CREATE VIEW r.aview AS SELECT 1 AS one;
      CREATE TABLE r.with_matview (id int PRIMARY KEY);
      CREATE MATERIALIZED VIEW r.mv_with_matview AS SELECT id FROM r.with_matview;
      CREATE TABLE r.with_rule (id int PRIMARY KEY);
      CREATE TABLE r.rule_host (id int);
      CREATE RULE log_it AS ON INSERT TO r.rule_host DO ALSO INSERT INTO r.with_rule VALUES (NEW.id);
      CREATE TABLE r.with_rowtype (id int PRIMARY KEY);
      CREATE TABLE r.rowtype_user (x r.with_rowtype);
      CREATE VIEW r.v_whole_row AS SELECT t AS whole FROM r.with_rowtype t;
      CREATE FUNCTION r.takes_row(r.with_rowtype) RETURNS int LANGUAGE sql AS 'SELECT 1';
      CREATE TABLE r.with_misc (id int PRIMARY KEY);
      CREATE VIEW r.v_misc AS SELECT id FROM r.with_misc;
      CREATE RULE ins AS ON INSERT TO r.v_misc DO INSTEAD INSERT INTO r.with_misc VALUES (NEW.id);
      CREATE TABLE r.misc_host (id int);
      CREATE FUNCTION r.misc_fn() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
      CREATE CONSTRAINT TRIGGER from_misc AFTER INSERT ON r.misc_host FROM r.with_misc FOR EACH ROW EXECUTE FUNCTION r.misc_fn();
      CREATE DOMAIN r.misc_domain AS r.with_misc;
      CREATE TABLE r.with_foreign_policy (id int PRIMARY KEY);
      CREATE TABLE r.policy_host (id int);
      CREATE POLICY peek ON r.policy_host USING (EXISTS (SELECT FROM r.with_foreign_policy f WHERE f.id = policy_host.id));
      CREATE TABLE r.with_trigger (id int PRIMARY KEY);
      CREATE FUNCTION r.audit() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
      CREATE CONSTRAINT TRIGGER t_audit AFTER INSERT ON r.with_trigger DEFERRABLE FOR EACH ROW EXECUTE FUNCTION r.audit();
      CREATE FOREIGN DATA WRAPPER sp_dummy;
      CREATE SERVER sp_dummy_server FOREIGN DATA WRAPPER sp_dummy;
      CREATE FOREIGN TABLE r.ft (id int) SERVER sp_dummy_server;
    `),
    );
  });
  afterAll(async () => db?.drop());

  it.each(CASES)('$table: one line with $code, exit 2, nothing created', async ({ table, code, says }) => {
    const out = join(mkdtempSync(join(tmpdir(), 'sp-refuse-')), 'plan');
    const r = await cli(['plan', '--table', table, '--out', out, '--url', db.url]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`shadowpack: ${code}:`);
    expect(lines[0]).toMatch(says);
    expect(existsSync(out)).toBe(false);
    await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
  });

  // Unlogged sequences exist from PostgreSQL 15 on; older servers cannot build this case.
  it('r.with_identity: an UNLOGGED identity sequence is refused with one line, exit 2, nothing created', async (ctx) => {
    if (serverVersion < 150000) ctx.skip();
    await withClient(db.url, (c) =>
      c.query(`
      CREATE TABLE r.with_identity (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
      ALTER SEQUENCE r.with_identity_id_seq SET UNLOGGED;
    `),
    );
    const out = join(mkdtempSync(join(tmpdir(), 'sp-refuse-')), 'plan');
    const r = await cli(['plan', '--table', 'r.with_identity', '--out', out, '--url', db.url]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('shadowpack: UNSUPPORTED_OBJECT:');
    expect(lines[0]).toMatch(/identity sequence "with_identity_id_seq" of column "id" is UNLOGGED/);
    expect(existsSync(out)).toBe(false);
    await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
  });

  it("refuses a table read by another session's temporary view, and one in a FOR ALL TABLES or FOR TABLES IN SCHEMA publication", async () => {
    const pg = (await import('pg')).default;
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('CREATE TEMP VIEW peeking AS SELECT id FROM r.with_matview');
      const cases: [string, RegExp][] = [
        ['r.with_matview', /temporary view pg_temp_\d+\.peeking of another session reads it/],
      ];
      // FOR TABLES IN SCHEMA exists from PostgreSQL 15 on.
      const version = Number(
        (await holder.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v,
      );
      if (version >= 150000) {
        await holder.query(
          'CREATE SCHEMA rs; CREATE TABLE rs.in_schema_pub (id int PRIMARY KEY); CREATE PUBLICATION p_schema FOR TABLES IN SCHEMA rs',
        );
        cases.push(['rs.in_schema_pub', /publication "p_schema" publishes every table in schema "rs"/]);
      }
      await holder.query('CREATE TABLE r.plain (id int PRIMARY KEY)');
      await holder.query('CREATE PUBLICATION p_all FOR ALL TABLES');
      cases.push(['r.plain', /publication "p_all" is FOR ALL TABLES/]);
      for (const [table, says] of cases) {
        const out = join(mkdtempSync(join(tmpdir(), 'sp-refuse-')), 'plan');
        const r = await cli(['plan', '--table', table, '--out', out, '--url', db.url]);
        expect(r.code).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(says);
        expect(existsSync(out)).toBe(false);
      }
    } finally {
      await holder.query('DROP PUBLICATION IF EXISTS p_all').catch(() => undefined);
      await holder.end();
    }
  });

  it('refuses a temporary table (seen from another session)', async () => {
    const pg = (await import('pg')).default;
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('CREATE TEMP TABLE tmp_orders (id int PRIMARY KEY)');
      const schema = (await holder.query<{ s: string }>('SELECT pg_my_temp_schema()::regnamespace::text AS s')).rows[0]!
        .s;
      const r = await cli([
        'plan',
        '--table',
        `${schema}.tmp_orders`,
        '--out',
        join(mkdtempSync(join(tmpdir(), 'sp-refuse-')), 'plan'),
        '--url',
        db.url,
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/UNSUPPORTED_TABLE: .*temporary table/);
    } finally {
      await holder.end();
    }
  });

  it('a missing or unknown argument gives one line and exit 2, and runs nothing', async () => {
    for (const args of [
      ['plan', '--table', 'r.nokey'],
      ['plan', '--table', 'r.nokey', '--out', '/tmp/x', '--bogus'],
      ['run'],
    ]) {
      const r = await cli([...args, '--url', db.url]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/^shadowpack: BAD_ARGUMENT: /);
    }
  });

  it('never prints the password of a connection that fails', async () => {
    const r = await cli([
      'plan',
      '--table',
      'r.nokey',
      '--out',
      '/tmp/never',
      '--url',
      'postgres://postgres:s3cret-pw@127.0.0.1:1/x',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('CONNECTION_FAILED');
    expect(r.stderr).not.toContain('s3cret-pw');
  });
});
