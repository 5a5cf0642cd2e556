/**
 * A move plan end to end with psql only (issue 15): source PostgreSQL 14 -> target 17, the FK group of
 * test/helpers/move-fixture.ts, every stage run as `psql -X -v ON_ERROR_STOP=1 -d <its side> -f FILE`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOVE_STAGES, moveStagesFor } from '../../src/compile/move/stages.js';
import { planMove, writeMovePlan } from '../../src/planning/plan-move.js';
import { main } from '../../src/cli/main.js';
import { withClient } from '../helpers/db.js';
import { asOnSourceMajor, describeTable } from '../helpers/catalog-describe.js';
import { compareMoveWithTwins, createMoveFixture } from '../helpers/move-fixture.js';
import {
  freshMovePair,
  MOVE_SOURCE_MISSING,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';
import { openSpanning, prepareOne, startMoveWriters } from '../helpers/move-writers.js';

let servers: MoveServers;
let pair: MovePair;
let root: string;
let pair2: MovePair;
let pair3: MovePair;
let dir: string;
let sourceUrl: string;
const SECRET = 'Sp-fdw-secret-7c1e';
const SECRET_USER = 'sp_move_psql_secret';

/** `url` logged in as the role whose password is SECRET. */
function withSecret(url: string): string {
  const u = new URL(url);
  u.username = SECRET_USER;
  u.password = SECRET;
  return u.toString();
}

beforeAll(async () => {
  servers = await startMoveServers();
  pair = await freshMovePair(servers, 'move_psql');
  pair2 = await freshMovePair(servers, 'move_psql_w');
  pair3 = await freshMovePair(servers, 'move_psql_a');
  await withClient(pair.source.url, (c) => createMoveFixture(c, { customers: 60, orders: 400 }));
  await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
  // A password found nowhere else, so the test can look for it in every file and catalog. On a superuser of
  // its own: the source server is shared by the run's move test files, which log in as postgres.
  await withClient(pair.source.url, (c) =>
    c.query(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${SECRET_USER}') THEN CREATE ROLE ${SECRET_USER} LOGIN SUPERUSER; END IF; END $$;
    ALTER ROLE ${SECRET_USER} PASSWORD '${SECRET}'`),
  );
  sourceUrl = withSecret(pair.source.url);
  root = mkdtempSync(join(tmpdir(), 'sp-move-'));
  dir = join(root, 'plan');
}, 120_000);

afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
  await pair3?.drop();
  await pair2?.drop();
  await pair?.drop();
  await servers?.stop();
});

const GROUP = [
  { schema: 'app', table: 'customers' },
  { schema: 'app', table: 'orders' },
  { schema: 'app', table: 'order_items' },
];

async function plan(tables = GROUP, withFkClosure = false) {
  const s = new pg.Client({ connectionString: sourceUrl });
  const t = new pg.Client({ connectionString: pair.target.url });
  await s.connect();
  await t.connect();
  try {
    return await planMove(s, t, { tables, withFkClosure, options: { batchPages: 2 } });
  } finally {
    await s.end();
    await t.end();
  }
}

const password = () => SECRET;

function psql(file: string, side: 'source' | 'target'): string {
  const url = side === 'source' ? sourceUrl : pair.target.url;
  return execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SHADOWPACK_FDW_PASSWORD: password() },
  });
}

const execFileAsync = promisify(execFile);

/** psql without blocking the event loop, so the writers of this process go on meanwhile. */
async function psqlAsync(cwd: string, file: string, url: string): Promise<void> {
  await execFileAsync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file], {
    cwd,
    env: { ...process.env, SHADOWPACK_FDW_PASSWORD: password() },
  });
}

function psqlFails(file: string, side: 'source' | 'target'): string {
  try {
    psql(file, side);
  } catch (e) {
    return String((e as { stderr?: string }).stderr);
  }
  throw new Error(`${file} did not fail`);
}

const q = async <T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> =>
  withClient(url, async (c) => (await c.query<T>(sql)).rows);

const serverVersionNum = async (url: string): Promise<number> =>
  (await q<{ v: number }>(url, `SELECT current_setting('server_version_num')::int AS v`))[0]!.v;

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('move plan with psql, source 14 -> target 17', () => {
  it('refuses a group not closed under foreign keys in one line naming the missing tables and --with-fk-closure (CLI)', async () => {
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (t: string) => lines.push(t) };
    const base = [
      'plan',
      '--url',
      sourceUrl,
      '--target-url',
      pair.target.url,
      '--out',
      join(root, 'closure'),
      '--table',
      'app.orders',
    ];
    expect(await main(base, io)).toBe(2);
    expect(lines.join('')).toMatch(
      /not closed under foreign keys: app\.customers, app\.order_items are bound .*--with-fk-closure/,
    );
    expect(lines.join('').trim().split('\n')).toHaveLength(1);
    lines.length = 0;
    expect(await main([...base, '--with-fk-closure', '--json'], io)).toBe(0);
    expect(JSON.parse(lines[0]!).tables).toEqual(['app.customers', 'app.order_items', 'app.orders']);
    expect(lines.join('')).not.toContain(SECRET);
    expect(readFileSync(join(root, 'closure', 'plan.json'), 'utf8')).not.toContain(SECRET);
  });

  async function refusal(args: string[]): Promise<string> {
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (t: string) => lines.push(t) };
    expect(await main(['plan', '--out', join(root, 'refused'), ...args], io)).toBe(2);
    expect(lines.join('').trim().split('\n')).toHaveLength(1);
    return lines.join('');
  }

  it("refuses a downgrade in one line with the fix (the pair swapped: the suite's server as source)", async (ctx) => {
    const [sourceVersion, targetVersion] = await Promise.all([
      serverVersionNum(sourceUrl),
      serverVersionNum(pair.target.url),
    ]);
    // The matrix pair 17 -> 17 (scripts/test-matrix.sh) has no older server to move to; the upgrade pairs test it.
    if (targetVersion === sourceVersion) ctx.skip();
    expect(targetVersion).toBeGreaterThan(sourceVersion);
    expect(await refusal(['--url', pair.target.url, '--target-url', sourceUrl, '--table', 'app.orders'])).toMatch(
      /older than the source's .*never downgrade/,
    );
  });

  it('refuses large-object columns and a table already on the target, each in one line with the fix', async () => {
    await q(sourceUrl, 'CREATE TABLE app.blobs (id int PRIMARY KEY, data oid)');
    expect(await refusal(['--url', sourceUrl, '--target-url', pair.target.url, '--table', 'app.blobs'])).toMatch(
      /column data is of type oid \(large objects .*bytea\)/,
    );
    await q(sourceUrl, 'DROP TABLE app.blobs');
    await q(pair.target.url, 'CREATE TABLE app.customers (id int)');
    expect(
      await refusal([
        '--url',
        sourceUrl,
        '--target-url',
        pair.target.url,
        '--table',
        'app.orders',
        '--with-fk-closure',
      ]),
    ).toMatch(/target already has app\.customers.*drop or rename/);
    await q(pair.target.url, 'DROP TABLE app.customers');
    await q(
      sourceUrl,
      `CREATE FUNCTION app.nowhere() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
      CREATE TRIGGER orders_nowhere BEFORE INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.nowhere()`,
    );
    expect(
      await refusal([
        '--url',
        sourceUrl,
        '--target-url',
        pair.target.url,
        '--table',
        'app.orders',
        '--with-fk-closure',
      ]),
    ).toMatch(/triggers call app\.nowhere\(\), which the target does not have; create it there first/);
    await q(sourceUrl, 'DROP TRIGGER orders_nowhere ON app.orders; DROP FUNCTION app.nowhere()');
  });

  it('moves the group: rows equal, sequences ahead, fence on the source, FKs validated, owner/grants/comments/policies/triggers carried, nothing left behind', async () => {
    const role = `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'move_reader') THEN CREATE ROLE move_reader; END IF; END $$;
      CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;`;
    await q(
      sourceUrl,
      `${role}
      GRANT SELECT, INSERT ON app.orders TO move_reader; GRANT SELECT (name, email) ON app.customers TO move_reader;
      ALTER TABLE app.order_items OWNER TO move_reader;
      COMMENT ON TABLE app.orders IS 'what was ordered'; COMMENT ON COLUMN app.customers.email IS 'unique, or NULL';
      COMMENT ON INDEX app.orders_customer_idx IS 'by customer';
      CREATE TRIGGER orders_touch BEFORE UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION app.touch();
      CREATE TRIGGER customers_touch BEFORE UPDATE ON app.customers FOR EACH ROW EXECUTE FUNCTION app.touch();
      ALTER TABLE app.customers DISABLE TRIGGER customers_touch;
      CREATE POLICY readers ON app.orders FOR SELECT TO move_reader USING (qty > 0);
      ALTER TABLE app.orders ENABLE ROW LEVEL SECURITY;`,
    );
    await q(pair.target.url, role);
    const moved = await plan();
    writeMovePlan(dir, moved, true);
    expect(readdirSync(dir).sort()).toEqual(
      [
        ...moveStagesFor({}).map((s) => s.file),
        'README.md',
        'SHA256SUMS',
        'binding.source.sql',
        'binding.target.sql',
        'plan.json',
      ].sort(),
    );
    for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f), 'utf8')).not.toContain(password());
    // A file run on the other side refuses before it changes anything (its binding names the other database).
    expect(psqlFails('01-setup.source.sql', 'target')).toMatch(/this plan is bound to (database|the cluster)/);
    expect(psqlFails('02-setup.target.sql', 'source')).toMatch(/this plan is bound to (database|the cluster)/);

    for (const s of MOVE_STAGES.filter((r) => r.kind === 'forward' || r.kind === 'check').filter(
      (r) => r.stage !== 'cleanup',
    )) {
      if (s.stage === 'fence') {
        // Written between catch-up and fence: the cut-over must bring it.
        await q(
          sourceUrl,
          `BEGIN; INSERT INTO app.customers (name) VALUES ('late'); INSERT INTO twin.customers SELECT id, referrer_id, name, email, mood, address, ref, created_at FROM app.customers WHERE name = 'late'; UPDATE app.orders SET qty = qty + 1 WHERE id = 5; UPDATE twin.orders SET qty = qty + 1 WHERE id = 5; DELETE FROM app.order_items WHERE order_id = 4 AND line = 1; DELETE FROM twin.order_items WHERE order_id = 4 AND line = 1; COMMIT`,
        );
      }
      psql(s.file, s.side);
      if (s.stage === 'setup' && s.side === 'target') {
        // Application writes to the target are refused until the cut-over.
        await expect(q(pair.target.url, `INSERT INTO app.customers (name) VALUES ('early')`)).rejects.toThrow(
          /writes are refused until the cut-over/,
        );
      }
    }
    const same = await compareMoveWithTwins(sourceUrl, pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
    // The source refuses writes with the fence message.
    await expect(q(sourceUrl, `UPDATE app.orders SET qty = 2 WHERE id = 1`)).rejects.toThrow(
      /app\.orders moved to .*writes are refused/,
    );
    // New rows on the target get keys beyond every used value, for serial, identity and a shared default sequence.
    const [fresh] = await q<{ c: number; o: string; r: string }>(
      pair.target.url,
      `WITH c AS (INSERT INTO app.customers (name) VALUES ('new') RETURNING id, ref), o AS (INSERT INTO app.orders (customer_id, qty) SELECT id, 1 FROM c RETURNING id) SELECT (SELECT id FROM c) AS c, (SELECT id FROM o)::text AS o, (SELECT ref FROM c)::text AS r`,
    );
    const [maxSrc] = await q<{ c: number; o: string; r: string }>(
      sourceUrl,
      `SELECT (SELECT max(id) FROM app.customers) AS c, (SELECT max(id) FROM app.orders)::text AS o, (SELECT greatest((SELECT max(ref) FROM app.customers), (SELECT max(ref) FROM app.orders)))::text AS r`,
    );
    expect(fresh!.c).toBeGreaterThan(maxSrc!.c);
    expect(BigInt(fresh!.o)).toBeGreaterThan(BigInt(maxSrc!.o));
    expect(BigInt(fresh!.r)).toBeGreaterThan(BigInt(maxSrc!.r));
    const fks = await q<{ n: string; v: boolean }>(
      pair.target.url,
      `SELECT conname AS n, convalidated AS v FROM pg_constraint WHERE contype = 'f' AND connamespace = 'app'::regnamespace ORDER BY 1`,
    );
    expect(fks.length).toBe(3);
    expect(fks.every((f) => f.v)).toBe(true);

    // After the cut-over there is no abort: the target refuses, and the source will not unfence under a live target.
    expect(psqlFails('90-abort.target.sql', 'target')).toMatch(
      /the target is live; a move is not aborted after its cut-over/,
    );
    expect(psqlFails('90-abort.source.sql', 'source')).toMatch(
      /the target may already be live \(source stage cutover\)/,
    );
    psql('08-cleanup.target.sql', 'target');
    psql('08-cleanup.source.sql', 'source');
    // What the tables carried on the source is on the target (the source only has the fence on top).
    const [sourceVersion, targetVersion] = await Promise.all([
      serverVersionNum(sourceUrl),
      serverVersionNum(pair.target.url),
    ]);
    for (const g of GROUP) {
      const [a, b] = await Promise.all([
        withClient(sourceUrl, (c) => describeTable(c, g.schema, g.table)),
        withClient(pair.target.url, (c) => describeTable(c, g.schema, g.table)),
      ]);
      expect(asOnSourceMajor(b, sourceVersion, targetVersion)).toEqual({
        ...a,
        triggers: a.triggers!.filter((x) => !x.includes('shadowpack_mfence')),
      });
    }
    const left = await q<{ n: string }>(
      pair.target.url,
      `SELECT count(*)::text AS n FROM pg_foreign_server UNION ALL SELECT count(*)::text FROM pg_user_mapping UNION ALL SELECT count(*)::text FROM pg_namespace WHERE nspname LIKE 'shadowpack%'`,
    );
    expect(left.map((r) => r.n)).toEqual(['0', '0', '0']);
    // The source keeps only the fence.
    const [after] = await q<{ d: string }>(
      sourceUrl,
      `SELECT string_agg(tgname, ',' ORDER BY tgname) AS d FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'shadowpack%'`,
    );
    expect(after!.d).toMatch(/^(shadowpack_mfence(row)?_[0-9a-f]{12},?)+$/);
    expect(psqlFails('08-cleanup.source.sql', 'source')).toMatch(/no move to clean up/);
  });

  it('moves the group while four writers mirror every statement into twins until the fence; a transaction spans rounds, one is prepared', async () => {
    const src = withSecret(pair2.source.url);
    {
      await withClient(pair2.source.url, (c) => createMoveFixture(c, { customers: 40, orders: 200 }));
      await withClient(pair2.target.url, (c) => c.query('CREATE SCHEMA app'));
      const s = new pg.Client({ connectionString: src });
      const t = new pg.Client({ connectionString: pair2.target.url });
      await s.connect();
      await t.connect();
      const moved = await planMove(s, t, { tables: GROUP, options: { batchPages: 2, catchupTarget: 50 } }).finally(
        async () => {
          await s.end();
          await t.end();
        },
      );
      const wdir = join(root, 'writers');
      writeMovePlan(wdir, moved, true);
      const url = (side: 'source' | 'target') => (side === 'source' ? src : pair2.target.url);
      const run = (file: string) => psqlAsync(wdir, file, url(MOVE_STAGES.find((r) => r.file === file)!.side));
      const writers = await startMoveWriters(src, { count: 4, seed: 5, stopAtFence: true, pauseMs: 2 });
      await new Promise((r) => setTimeout(r, 200));
      await run('00-preflight.source.sql');
      await run('00-preflight.target.sql');
      await run('01-setup.source.sql');
      const spanning = await openSpanning(src);
      const prepared = await prepareOne(src, 'move_psql_gid');
      await run('02-setup.target.sql');
      await run('03-backfill.target.sql');
      // Committed after the backfill's settling round: only a later round can bring them.
      await spanning.commit();
      await prepared.commit();
      await run('04-build.target.sql');
      await run('05-catchup.target.sql');
      await run('06-fence.source.sql');
      const stats = await writers.fencedAll;
      expect(stats.errors, stats.lastError ?? '').toBe(0);
      expect(stats.fenced).toBe(4);
      expect(stats.commits).toBeGreaterThan(20);
      await run('07-cutover.target.sql');
      const same = await compareMoveWithTwins(src, pair2.target.url);
      expect(same.equal, JSON.stringify(same)).toBe(true);
      await run('08-cleanup.target.sql');
      await run('08-cleanup.source.sql');
    }
  }, 120_000);

  it('abort after the fence leaves the source catalog as it was and nothing of the move on the target; it is safe to run again', async () => {
    const src = withSecret(pair3.source.url);
    await withClient(pair3.source.url, (c) => createMoveFixture(c, { customers: 20, orders: 60 }));
    await withClient(pair3.target.url, (c) => c.query('CREATE SCHEMA app'));
    const TOOL_OBJECTS = `SELECT 'ns ' || nspname AS o FROM pg_namespace WHERE nspname LIKE 'shadowpack%'
      UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typnamespace = 'app'::regnamespace AND typtype IN ('e', 'c') AND typrelid = 0
      UNION ALL SELECT 'rel ' || relname FROM pg_class WHERE relnamespace = 'app'::regnamespace
      UNION ALL SELECT 'server ' || srvname FROM pg_foreign_server UNION ALL SELECT 'mapping ' || umid FROM pg_user_mappings
      UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`;
    const describe = (url: string) =>
      withClient(url, async (c) => {
        // One query at a time on the client (pg deprecates queueing them).
        const tables = [];
        for (const g of GROUP) tables.push(await describeTable(c, g.schema, g.table));
        return { tables, tool: (await c.query<{ o: string }>(TOOL_OBJECTS)).rows.map((r) => r.o) };
      });
    const before = await describe(src);
    const targetBefore = (await withClient(pair3.target.url, (c) => c.query<{ o: string }>(TOOL_OBJECTS))).rows.map(
      (r) => r.o,
    );
    const s = new pg.Client({ connectionString: src });
    const t = new pg.Client({ connectionString: pair3.target.url });
    await s.connect();
    await t.connect();
    const moved = await planMove(s, t, { tables: GROUP }).finally(async () => {
      await s.end();
      await t.end();
    });
    const adir = join(root, 'abort');
    writeMovePlan(adir, moved, true);
    const run = (file: string) =>
      psqlAsync(adir, file, MOVE_STAGES.find((r) => r.file === file)!.side === 'source' ? src : pair3.target.url);
    for (const f of ['01-setup.source.sql', '02-setup.target.sql', '03-backfill.target.sql']) await run(f);
    // Two rounds at once (two psql sessions running the catch-up): the second waits for the first,
    // so a changed row is never inserted twice (there is no unique index yet to catch it).
    await q(src, `UPDATE app.orders SET qty = qty + 1 WHERE id = 7`);
    const round = `SELECT set_config('shadowpack.apply', '${moved.manifest.runId}', true); SELECT shadowpack.mround_${moved.manifest.runId}(false)`;
    const a = new pg.Client({ connectionString: pair3.target.url });
    const b = new pg.Client({ connectionString: pair3.target.url });
    await a.connect();
    await b.connect();
    try {
      await a.query(`BEGIN; ${round}`);
      await b.query('BEGIN');
      const second = b.query(round);
      await new Promise((r) => setTimeout(r, 300));
      await a.query('COMMIT');
      await second;
      await b.query('COMMIT');
    } finally {
      await a.end();
      await b.end();
    }
    expect(await q<{ n: string }>(pair3.target.url, `SELECT count(*)::text AS n FROM app.orders WHERE id = 7`)).toEqual(
      [{ n: '1' }],
    );
    for (const f of ['04-build.target.sql', '05-catchup.target.sql', '06-fence.source.sql']) await run(f);
    await expect(q(src, `DELETE FROM app.order_items`)).rejects.toThrow(/moved to .*writes are refused/);
    for (let i = 0; i < 2; i++) {
      await run('90-abort.target.sql');
      await run('90-abort.source.sql');
    }
    expect(await describe(src)).toEqual(before);
    expect(
      (await withClient(pair3.target.url, (c) => c.query<{ o: string }>(TOOL_OBJECTS))).rows.map((r) => r.o),
    ).toEqual(targetBefore);
    await q(src, `DELETE FROM app.order_items WHERE line = 2`);
  });
});
