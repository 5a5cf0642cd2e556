/**
 * How the target's user mapping logs in to the source (issue 15, `--fdw-auth`): the password of
 * `--fdw-auth password` reaches the target with psql and with the runner without ever being statement
 * text or a bound parameter, so a target logging every statement (log_statement = all,
 * log_min_duration_statement = 0) writes it to no log line and shows it in no pg_stat_activity sample; it
 * is in no plan file and no output, and after abort (psql) or cleanup (runner) in no catalog.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { startEmbeddedPostgres } from '../../src/dev/embedded-server.js';
import { resolvePgBinaries } from '../../src/dev/pg-binaries.js';
import { MOVE_STAGES } from '../../src/compile/move/stages.js';
import { planMove, writeMovePlan } from '../../src/planning/plan-move.js';
import { withClient } from '../helpers/db.js';
import {
  freshMovePair,
  MOVE_SOURCE_MISSING,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';

/** Searched for as MARK: psql's :'var' doubles a backslash (E'…\\x'), so the whole password would miss a leak. */
const MARK = 'Sp-auth-pw 9f3b';
const SECRET = MARK + '\\x';
const SECRET_USER = 'sp_move_auth_secret';
const execFileAsync = promisify(execFile);

let servers: MoveServers;
const pairs: MovePair[] = [];
let root: string;

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-auth-'));
}, 120_000);

afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

function withSecret(url: string): string {
  const u = new URL(url);
  u.username = SECRET_USER;
  u.password = SECRET;
  return u.toString();
}

/** A pair with one small table on the source, the secret role there, and every statement logged on the target. */
async function loggedPair(name: string): Promise<MovePair> {
  const pair = await freshMovePair(servers, name);
  pairs.push(pair);
  await withClient(pair.source.url, (c) =>
    c.query(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${SECRET_USER}') THEN CREATE ROLE ${SECRET_USER} LOGIN SUPERUSER; END IF; END $$;
      ALTER ROLE ${SECRET_USER} PASSWORD ${lit(SECRET)};
      CREATE SCHEMA app; CREATE TABLE app.items (id integer PRIMARY KEY, v text);
      INSERT INTO app.items SELECT g, 'v' || g FROM generate_series(1, 200) g`),
  );
  await withClient(pair.target.url, (c) =>
    c.query(`CREATE SCHEMA app;
      ALTER DATABASE ${pair.target.name} SET log_statement = 'all';
      ALTER DATABASE ${pair.target.name} SET log_min_duration_statement = 0`),
  );
  return pair;
}

async function planFor(pair: MovePair, dir: string): Promise<void> {
  const s = new pg.Client({ connectionString: withSecret(pair.source.url) });
  const t = new pg.Client({ connectionString: pair.target.url });
  await s.connect();
  await t.connect();
  try {
    writeMovePlan(dir, await planMove(s, t, { tables: [{ schema: 'app', table: 'items' }] }), true);
  } finally {
    await s.end();
    await t.end();
  }
}

/** The target server's log (embedded: next to its data directory), read from `from` on. */
async function targetLog(pair: MovePair): Promise<{ file: string; size: () => number; since: (n: number) => string }> {
  const dataDir = await withClient(
    pair.target.url,
    async (c) => (await c.query<{ d: string }>(`SELECT current_setting('data_directory') AS d`)).rows[0]!.d,
  );
  const file = join(dirname(dataDir), 'server.log');
  if (!existsSync(file)) throw new Error(`this test reads the target's server log, expected at ${file}`);
  return {
    file,
    size: () => statSync(file).size,
    since: (n) => readFileSync(file).subarray(n).toString('utf8'),
  };
}

/** Every query text of the target database's sessions, sampled until stopped. */
function sampleActivity(pair: MovePair): { stop: () => Promise<string[]> } {
  const seen = new Set<string>();
  let running = true;
  const c = new pg.Client({ connectionString: pair.target.url });
  const loop = (async () => {
    await c.connect();
    while (running) {
      const r = await c.query<{ q: string }>(
        `SELECT query AS q FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND query <> ''`,
        [pair.target.name],
      );
      for (const row of r.rows) seen.add(row.q);
    }
    await c.end();
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return [...seen];
    },
  };
}

const mappingsWithSecret = (pair: MovePair) =>
  withClient(pair.target.url, async (c) => ({
    mappings: Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM pg_user_mapping')).rows[0]!.n),
    // Read and searched here: a query binding the password would put it in this database's log itself.
    withSecret: (
      await c.query<{ o: string }>(`SELECT coalesce(array_to_string(umoptions, ','), '') AS o FROM pg_user_mappings`)
    ).rows.filter((r) => r.o.includes(MARK)).length,
  }));

/** The lines of `text` holding the secret (none, unless the password leaked). */
const linesWith = (text: string): string[] => text.split('\n').filter((l) => l.includes(MARK));

function planFilesText(dir: string): string {
  return readdirSync(dir)
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('--fdw-auth password: the password is never statement text', () => {
  it('with psql: setup under log_statement = all logs no line and shows no pg_stat_activity sample with it; abort leaves it in no catalog', async () => {
    const pair = await loggedPair('move_auth_psql');
    const dir = join(root, 'psql');
    await planFor(pair, dir);
    const log = await targetLog(pair);
    const from = log.size();
    const sampler = sampleActivity(pair);
    const out: string[] = [];
    const psql = async (file: string) => {
      const side = MOVE_STAGES.find((r) => r.file === file)!.side;
      const url = side === 'source' ? withSecret(pair.source.url) : pair.target.url;
      const r = await execFileAsync('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file], {
        cwd: dir,
        env: { ...process.env, SHADOWPACK_FDW_PASSWORD: SECRET },
      });
      out.push(r.stdout, r.stderr);
    };
    for (const f of [
      '00-preflight.source.sql',
      '00-preflight.target.sql',
      '01-setup.source.sql',
      '02-setup.target.sql',
    ])
      await psql(f);
    await psql('03-backfill.target.sql');
    const samples = await sampler.stop();
    // The mapping holds the password while the move runs (that is the catalog hazard), and it works.
    expect(await mappingsWithSecret(pair)).toEqual({ mappings: 1, withSecret: 1 });
    expect(
      await withClient(pair.target.url, async (c) => (await c.query('SELECT count(*)::int AS n FROM app.items')).rows),
    ).toEqual([{ n: 200 }]);
    const logged = log.since(from);
    expect(logged).toMatch(/statement: .*CREATE FOREIGN TABLE/);
    expect(linesWith(logged)).toEqual([]);
    expect(samples.length).toBeGreaterThan(0);
    expect(samples.filter((s) => s.includes(MARK))).toEqual([]);
    expect(out.join('\n')).not.toContain(MARK);
    expect(planFilesText(dir)).not.toContain(MARK);
    await psql('90-abort.target.sql');
    await psql('90-abort.source.sql');
    expect(await mappingsWithSecret(pair)).toEqual({ mappings: 0, withSecret: 0 });
    expect(linesWith(log.since(from))).toEqual([]);
  });

  it('with the runner: the same under log_statement = all; cleanup leaves it in no catalog; no output line or event has it', async () => {
    const pair = await loggedPair('move_auth_run');
    const dir = join(root, 'run');
    await planFor(pair, dir);
    const log = await targetLog(pair);
    const from = log.size();
    let output = '';
    const io = { out: (l: string) => (output += l + '\n'), err: (t: string) => (output += t) };
    const args = ['--plan', dir, '--url', withSecret(pair.source.url), '--target-url', pair.target.url, '--events'];
    const saved = process.env.SHADOWPACK_FDW_PASSWORD;
    process.env.SHADOWPACK_FDW_PASSWORD = SECRET;
    try {
      expect(await main(['run', ...args, '--until', 'setup'], io)).toBe(0);
      expect(await mappingsWithSecret(pair)).toEqual({ mappings: 1, withSecret: 1 });
      expect(log.since(from)).toMatch(/statement: .*CREATE FOREIGN TABLE/);
      expect(linesWith(log.since(from))).toEqual([]);
      expect(await main(['run', ...args, '--until', 'cleanup'], io)).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.SHADOWPACK_FDW_PASSWORD;
      else process.env.SHADOWPACK_FDW_PASSWORD = saved;
    }
    expect(
      await withClient(pair.target.url, async (c) => (await c.query('SELECT count(*)::int AS n FROM app.items')).rows),
    ).toEqual([{ n: 200 }]);
    expect(await mappingsWithSecret(pair)).toEqual({ mappings: 0, withSecret: 0 });
    expect(linesWith(log.since(from))).toEqual([]);
    expect(output).not.toContain(MARK);
    expect(planFilesText(dir)).not.toContain(MARK);
  });
});

interface Exit {
  readonly code: number;
  readonly out: string;
}

/** psql on one stage file; its exit code (3: ON_ERROR_STOP) and everything it printed. */
async function psqlExit(dir: string, file: string, url: string, env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  try {
    const r = await execFileAsync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file], {
      cwd: dir,
      env: { ...process.env, ...env },
    });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, out: `${x.stdout ?? ''}${x.stderr ?? ''}` };
  }
}

/** `shadowpack plan …` in this process: exit code and output. */
async function plan(args: string[]): Promise<Exit> {
  let out = '';
  const code = await main(['plan', ...args], { out: (l) => (out += l + '\n'), err: (t) => (out += t) });
  return { code, out };
}

/** The ERROR lines of a psql run (the HINT follows on its own line, as psql prints it). */
const errorLines = (out: string): string[] => out.split('\n').filter((l) => /ERROR:/.test(l));

const PLAIN_ROLE = 'sp_move_auth_plain';
const PLAIN_PASSWORD = 'plain-role-pw';

/** `url` logged in as a non-superuser of the target server. */
function asPlain(url: string): string {
  const u = new URL(url);
  u.username = PLAIN_ROLE;
  u.password = PLAIN_PASSWORD;
  return u.toString();
}

async function ensurePlainRole(pair: MovePair): Promise<void> {
  await withClient(pair.target.url, (c) =>
    c.query(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${PLAIN_ROLE}') THEN CREATE ROLE ${PLAIN_ROLE} LOGIN; END IF; END $$;
      ALTER ROLE ${PLAIN_ROLE} PASSWORD '${PLAIN_PASSWORD}';
      GRANT ALL ON DATABASE ${pair.target.name} TO ${PLAIN_ROLE}; GRANT ALL ON SCHEMA app TO ${PLAIN_ROLE}`),
  );
}

/** What a refused stage must not have changed: the tool's schemas, servers and mappings of one side. */
const toolObjects = (url: string) =>
  withClient(url, async (c) =>
    (
      await c.query<{ o: string }>(`SELECT 'ns ' || nspname AS o FROM pg_namespace WHERE nspname LIKE 'shadowpack%'
          UNION ALL SELECT 'server ' || srvname FROM pg_foreign_server UNION ALL SELECT 'mapping ' || oid FROM pg_user_mapping
          UNION ALL SELECT 'rel ' || relname FROM pg_class WHERE relnamespace = 'app'::regnamespace ORDER BY 1`)
    ).rows.map((r) => r.o),
  );

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('--fdw-auth pgpass and cert', () => {
  it('pgpass: the mapping holds no password (password_required false); a non-superuser is refused by preflight and setup in one line, changing nothing', async () => {
    const pair = await freshMovePair(servers, 'move_auth_pgpass');
    pairs.push(pair);
    const role = 'sp_move_auth_nopw';
    await withClient(pair.source.url, (c) =>
      c.query(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${role} LOGIN SUPERUSER; END IF; END $$;
        ALTER ROLE ${role} PASSWORD NULL;
        CREATE SCHEMA app; CREATE TABLE app.items (id integer PRIMARY KEY, v text);
        INSERT INTO app.items SELECT g, 'v' || g FROM generate_series(1, 50) g`),
    );
    await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
    await ensurePlainRole(pair);
    // The source lets this role in from the target without a password, as a ~/.pgpass of the target server's
    // OS user would (this test may not write one): a pg_hba line for this database and role only.
    const hba = await withClient(
      servers.sourceAdminUrl,
      async (c) => (await c.query<{ f: string }>("SELECT current_setting('hba_file') AS f")).rows[0]!.f,
    );
    const before = readFileSync(hba, 'utf8');
    const line = `host ${pair.source.name} ${role} 127.0.0.1/32 trust\n`;
    writeFileSync(hba, line + before);
    try {
      await withClient(servers.sourceAdminUrl, (c) => c.query('SELECT pg_reload_conf()'));
      const src = new URL(pair.source.url);
      src.username = role;
      src.password = '';
      const dir = join(root, 'pgpass');
      const made = await plan([
        '--url',
        src.toString(),
        '--target-url',
        pair.target.url,
        '--table',
        'app.items',
        '--fdw-auth',
        'pgpass',
        '--out',
        dir,
      ]);
      expect(made.code).toBe(0);
      expect(made.out).not.toContain('SHADOWPACK_FDW_PASSWORD');
      expect(readFileSync(join(dir, '02-setup.target.sql'), 'utf8')).toContain('password_required');
      expect(readFileSync(join(dir, 'README.md'), 'utf8')).not.toContain('FDW_PASSWORD_IN_CATALOG');
      const targetBefore = await toolObjects(pair.target.url);
      for (const f of ['00-preflight.target.sql', '02-setup.target.sql']) {
        const r = await psqlExit(dir, f, asPlain(pair.target.url));
        expect(r.code).toBe(3);
        expect(errorLines(r.out)).toEqual([
          expect.stringMatching(
            /--fdw-auth pgpass needs a superuser on the target .*sp_move_auth_plain is not one$/,
          ) as unknown as string,
        ]);
      }
      expect(await toolObjects(pair.target.url)).toEqual(targetBefore);
      for (const f of ['00-preflight.source.sql', '00-preflight.target.sql', '01-setup.source.sql']) {
        const side = MOVE_STAGES.find((r) => r.file === f)!.side;
        expect((await psqlExit(dir, f, side === 'source' ? src.toString() : pair.target.url)).code).toBe(0);
      }
      // No password in the environment either: the mapping works without one.
      const env = { SHADOWPACK_FDW_PASSWORD: undefined };
      for (const f of ['02-setup.target.sql', '03-backfill.target.sql'])
        expect(await psqlExit(dir, f, pair.target.url, env)).toMatchObject({ code: 0 });
      expect(
        await withClient(pair.target.url, async (c) => ({
          rows: (await c.query('SELECT count(*)::int AS n FROM app.items')).rows[0],
          options: (await c.query<{ o: string[] }>('SELECT umoptions AS o FROM pg_user_mappings')).rows.map((r) => r.o),
        })),
      ).toEqual({ rows: { n: 50 }, options: [[`user=${role}`, 'password_required=false']] });
      for (const f of ['90-abort.target.sql', '90-abort.source.sql'])
        expect(
          (
            await psqlExit(
              dir,
              f,
              MOVE_STAGES.find((r) => r.file === f)!.side === 'source' ? src.toString() : pair.target.url,
            )
          ).code,
        ).toBe(0);
      expect(await toolObjects(pair.target.url)).toEqual(targetBefore);
    } finally {
      writeFileSync(hba, before);
      await withClient(servers.sourceAdminUrl, (c) => c.query('SELECT pg_reload_conf()'));
    }
  });

  it('cert: needs both paths at plan time; preflight refuses a non-superuser and missing files on the target host in one line', async () => {
    const pair = await loggedPair('move_auth_cert');
    await ensurePlainRole(pair);
    const base = ['--url', withSecret(pair.source.url), '--target-url', pair.target.url, '--table', 'app.items'];
    const dir = join(root, 'cert');
    const without = await plan([...base, '--fdw-auth', 'cert', '--out', dir]);
    expect(without.code).toBe(2);
    expect(without.out.trim().split('\n')).toEqual([
      expect.stringMatching(/--fdw-auth cert needs --fdw-sslcert PATH and --fdw-sslkey PATH/) as unknown as string,
    ]);
    expect(existsSync(dir)).toBe(false);
    const bad = await plan([...base, '--fdw-auth', 'kerberos', '--out', dir]);
    expect(bad).toMatchObject({ code: 2 });
    expect(bad.out).toMatch(/--fdw-auth kerberos is not a mode; use one of scram-passthrough, cert, pgpass, password/);
    const made = await plan([
      ...base,
      '--fdw-auth',
      'cert',
      '--fdw-sslcert',
      '/nowhere/client.crt',
      '--fdw-sslkey',
      '/nowhere/client.key',
      '--out',
      dir,
    ]);
    expect(made.code).toBe(0);
    expect(readFileSync(join(dir, 'binding.target.sql'), 'utf8')).toContain(
      "SET shadowpack.fdw_sslcert = '/nowhere/client.crt';",
    );
    const plain = await psqlExit(dir, '00-preflight.target.sql', asPlain(pair.target.url));
    expect(plain.code).toBe(3);
    expect(errorLines(plain.out)).toEqual([
      expect.stringMatching(/--fdw-auth cert needs a superuser on the target/) as unknown as string,
    ]);
    const missing = await psqlExit(dir, '00-preflight.target.sql', pair.target.url);
    expect(missing.code).toBe(3);
    expect(errorLines(missing.out)).toEqual([
      expect.stringMatching(
        /--fdw-auth cert: \/nowhere\/client\.crt or \/nowhere\/client\.key is not a file on the target host$/,
      ) as unknown as string,
    ]);
  });
});

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('refusals of a move: one line, exit 2, nothing changed', () => {
  it('refuses a downgrade, another encoding, a table without a key, large-object columns, a pre-existing target table (saying whether it is empty), an FK group not closed, an unlogged table', async () => {
    const pair = await freshMovePair(servers, 'move_refuse');
    pairs.push(pair);
    await withClient(pair.source.url, (c) =>
      c.query(`CREATE SCHEMA app;
        CREATE TABLE app.items (id integer PRIMARY KEY, v text);
        CREATE TABLE app.child (id integer PRIMARY KEY, item integer REFERENCES app.items);
        CREATE TABLE app.nokey (v text);
        CREATE TABLE app.blobs (id integer PRIMARY KEY, data oid);
        CREATE UNLOGGED TABLE app.scratch (id integer PRIMARY KEY);
        CREATE TABLE app.lone (id integer PRIMARY KEY)`),
    );
    await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
    const latin1 = `${pair.target.name}_l1`;
    await withClient(servers.targetAdminUrl, (c) =>
      c.query(`CREATE DATABASE ${latin1} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`),
    );
    const latin1Url = new URL(pair.target.url);
    latin1Url.pathname = `/${latin1}`;
    const out = join(root, 'refused');
    const refused = async (target: string, ...tables: string[]) => {
      const r = await plan([
        '--url',
        pair.source.url,
        '--target-url',
        target,
        ...tables.flatMap((t) => ['--table', t]),
        '--out',
        out,
      ]);
      expect(r.code).toBe(2);
      expect(r.out.trim().split('\n')).toHaveLength(1);
      expect(existsSync(out)).toBe(false);
      return r.out;
    };
    try {
      const sourceBefore = await toolObjects(pair.source.url);
      const targetBefore = await toolObjects(pair.target.url);
      // Downgrade: the suite's target as the source of a move to the source server, where that is older (not on
      // the matrix's 17:17 pair, where the planned table is then simply not on the suite's server).
      const major = (url: string) =>
        withClient(url, async (c) =>
          Math.floor(Number((await c.query('SHOW server_version_num')).rows[0].server_version_num) / 10000),
        );
      if ((await major(pair.source.url)) < (await major(pair.target.url))) {
        const down = await plan([
          '--url',
          pair.target.url,
          '--target-url',
          pair.source.url,
          '--table',
          'app.items',
          '--out',
          out,
        ]);
        expect(down.code).toBe(2);
        expect(down.out).toMatch(/older than the source's .*moves never downgrade/);
      }
      expect(await refused(latin1Url.toString(), 'app.items')).toMatch(
        /the target database's encoding is LATIN1, the source's UTF8; create the target database WITH ENCODING 'UTF8'/,
      );
      expect(await refused(pair.target.url, 'app.nokey')).toMatch(
        /no primary key and no unique, non-partial, non-deferrable index over NOT NULL columns; add a primary key/,
      );
      expect(await refused(pair.target.url, 'app.blobs')).toMatch(/column data is of type oid \(large objects/);
      expect(await refused(pair.target.url, 'app.child')).toMatch(
        /not closed under foreign keys: app\.items is bound to it .*--with-fk-closure/,
      );
      expect(await refused(pair.target.url, 'app.scratch')).toMatch(/UNLOGGED/);
      await withClient(pair.target.url, (c) => c.query('CREATE TABLE app.lone (id integer)'));
      expect(await refused(pair.target.url, 'app.lone')).toMatch(/target already has app\.lone \(empty\)/);
      await withClient(pair.target.url, (c) => c.query('INSERT INTO app.lone VALUES (1)'));
      expect(await refused(pair.target.url, 'app.lone')).toMatch(/target already has app\.lone \(not empty\)/);
      await withClient(pair.target.url, (c) => c.query('DROP TABLE app.lone'));
      expect(await toolObjects(pair.source.url)).toEqual(sourceBefore);
      expect(await toolObjects(pair.target.url)).toEqual(targetBefore);
      // A table made on the target after planning: the preflight says the same.
      const dir = join(root, 'refused-preflight');
      expect(
        (
          await plan([
            '--url',
            pair.source.url,
            '--target-url',
            pair.target.url,
            '--table',
            'app.items',
            '--with-fk-closure',
            '--out',
            dir,
          ])
        ).code,
      ).toBe(0);
      await withClient(pair.target.url, (c) =>
        c.query('CREATE TABLE app.items (id integer); INSERT INTO app.items VALUES (1)'),
      );
      const pre = await psqlExit(dir, '00-preflight.target.sql', pair.target.url);
      expect(pre.code).toBe(3);
      expect(errorLines(pre.out)).toEqual([
        expect.stringMatching(/app\.items already exists on the target \(not empty\)$/) as unknown as string,
      ]);
    } finally {
      await withClient(servers.targetAdminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${latin1}`));
    }
  });
});

/** pg-bin-18 is not a devDependency: this describe runs where it is installed (scripts/test-matrix.sh installs it). */
const PG18_MISSING = await resolvePgBinaries(18).then(
  () => undefined,
  (e: Error) => e.message,
);

describe.skipIf(MOVE_SOURCE_MISSING !== undefined || PG18_MISSING !== undefined)(
  '--fdw-auth scram-passthrough (a PostgreSQL 18 target)',
  () => {
    it('a non-superuser moves with no password in any mapping: the target passes on the SCRAM keys of its own login; a target older than 18 is refused at plan time', async () => {
      const role = 'sp_move_auth_scram';
      const pw = 'scram-pass 41d7';
      const pair = await freshMovePair(servers, 'move_auth_scram');
      pairs.push(pair);
      await withClient(pair.source.url, (c) =>
        c.query(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${role} LOGIN SUPERUSER; END IF; END $$;
          SET password_encryption = 'scram-sha-256'; ALTER ROLE ${role} PASSWORD '${pw}';
          CREATE SCHEMA app; CREATE TABLE app.items (id integer PRIMARY KEY, v text);
          INSERT INTO app.items SELECT g, 'v' || g FROM generate_series(1, 50) g`),
      );
      const src = new URL(pair.source.url);
      src.username = role;
      src.password = pw;
      // A target older than 18 is refused before anything is written: the suite's server, or where that runs 18
      // (the matrix's 14:18 and 16:18 pairs) the source's own database, where no missing schema is refused first.
      const major = (url: string) =>
        withClient(url, async (c) =>
          Math.floor(Number((await c.query('SHOW server_version_num')).rows[0].server_version_num) / 10000),
        );
      const olderTarget =
        (await major(pair.target.url)) < 18
          ? pair.target.url
          : (await major(pair.source.url)) < 18
            ? pair.source.url
            : null;
      if (olderTarget !== null) {
        const old = await plan([
          '--url',
          src.toString(),
          '--target-url',
          olderTarget,
          '--table',
          'app.items',
          '--fdw-auth',
          'scram-passthrough',
          '--out',
          join(root, 'scram-old'),
        ]);
        expect(old.code).toBe(2);
        expect(old.out.trim().split('\n')).toEqual([
          expect.stringMatching(
            /--fdw-auth scram-passthrough needs a target of PostgreSQL 18 or newer .*plan with --fdw-auth password/,
          ) as unknown as string,
        ]);
      }
      const verifier = await withClient(
        pair.source.url,
        async (c) =>
          (await c.query<{ p: string }>(`SELECT rolpassword AS p FROM pg_authid WHERE rolname = '${role}'`)).rows[0]!.p,
      );
      expect(verifier).toMatch(/^SCRAM-SHA-256\$/);
      const pg18 = await startEmbeddedPostgres({ major: 18 });
      try {
        const db = 'move_auth_scram_tgt';
        await withClient(pg18.url, async (c) => {
          await c.query(`CREATE ROLE ${role} LOGIN PASSWORD '${verifier}'`);
          await c.query(`CREATE DATABASE ${db} OWNER ${role}`);
        });
        const admin = new URL(pg18.url);
        admin.pathname = `/${db}`;
        await withClient(admin.toString(), (c) =>
          c.query(`CREATE EXTENSION postgres_fdw; GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO ${role};
            CREATE SCHEMA app AUTHORIZATION ${role}`),
        );
        const target = new URL(admin.toString());
        target.username = role;
        target.password = pw;
        const dir = join(root, 'scram');
        const made = await plan([
          '--url',
          src.toString(),
          '--target-url',
          target.toString(),
          '--table',
          'app.items',
          '--fdw-auth',
          'scram-passthrough',
          '--out',
          dir,
        ]);
        expect(made).toMatchObject({ code: 0 });
        const env = { SHADOWPACK_FDW_PASSWORD: undefined };
        for (const f of [
          '00-preflight.source.sql',
          '00-preflight.target.sql',
          '01-setup.source.sql',
          '02-setup.target.sql',
          '03-backfill.target.sql',
        ]) {
          const side = MOVE_STAGES.find((r) => r.file === f)!.side;
          expect(await psqlExit(dir, f, side === 'source' ? src.toString() : target.toString(), env)).toMatchObject({
            code: 0,
          });
        }
        expect(
          await withClient(admin.toString(), async (c) => ({
            rows: (await c.query('SELECT count(*)::int AS n FROM app.items')).rows[0],
            options: (await c.query<{ o: string[] }>('SELECT umoptions AS o FROM pg_user_mappings')).rows.map(
              (r) => r.o,
            ),
          })),
        ).toEqual({ rows: { n: 50 }, options: [[`user=${role}`, 'use_scram_passthrough=true']] });
        for (const f of ['90-abort.target.sql', '90-abort.source.sql']) {
          const side = MOVE_STAGES.find((r) => r.file === f)!.side;
          expect((await psqlExit(dir, f, side === 'source' ? src.toString() : target.toString())).code).toBe(0);
        }
      } finally {
        await pg18.stop();
      }
    }, 120_000);
  },
);
