/**
 * Privileges: a non-superuser table owner runs a whole plan (runner and psql);
 * a role lacking privileges gets one fixing statement per missing privilege
 * and nothing is created; running those statements is enough. Passwords never
 * appear in a plan, an output line or an error.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freshDatabase, quoteIdent, withClient, type FreshDatabase } from '../helpers/db.js';
import pg from 'pg';
import { catalogSnapshot, cli, leftovers, planTable, psql } from '../helpers/rebuild.js';
import { liveStage } from '../helpers/live-stage.js';
import { readPlanDir } from '../../src/planning/plan-dir.js';
import { run } from '../../src/run/runner.js';
import { readState } from '../../src/run/state.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';
import { FORWARD_STAGES, stageInfo, type ForwardStage } from '../../src/compile/stages.js';

const databases: FreshDatabase[] = [];
const roles: string[] = [];

afterAll(async () => {
  // Databases first: the roles own objects in them.
  for (const db of databases.splice(0)) await db.drop().catch(() => undefined);
  await withClient(inject('adminUrl'), async (c) => {
    for (const r of roles.splice(0)) await c.query(`DROP ROLE IF EXISTS ${quoteIdent(r)}`).catch(() => undefined);
  });
});

interface Login {
  readonly role: string;
  readonly password: string;
  readonly url: string;
}

/** A new LOGIN role (no superuser, nothing granted) with a password that is easy to search for. */
async function newRole(db: FreshDatabase, prefix: string): Promise<Login> {
  const role = `${prefix}_${randomBytes(3).toString('hex')}`;
  const password = `pw-${randomBytes(12).toString('hex')}`;
  roles.push(role);
  await withClient(db.url, (c) =>
    c.query(`CREATE ROLE ${quoteIdent(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '${password}'`),
  );
  const u = new URL(db.url);
  u.username = role;
  u.password = password;
  return { role, password, url: u.toString() };
}

/** A fresh database with the demo schema, made by the superuser. */
async function demo(prefix: string, rows: number): Promise<FreshDatabase> {
  const db = await freshDatabase(prefix);
  databases.push(db);
  await withClient(db.url, (c) => createDemoSchema(c, rows));
  return db;
}

/**
 * Hands the demo schema over to `role`, with what the run needs beyond ownership: CREATE on the
 * database (setup creates the tool schema). No role membership: pg_read_all_stats is not needed.
 */
async function handOver(db: FreshDatabase, role: string): Promise<void> {
  const r = quoteIdent(role);
  await withClient(db.url, (c) =>
    c.query(`
      ALTER SCHEMA app OWNER TO ${r};
      ALTER TABLE app.customers OWNER TO ${r};
      ALTER TABLE app.orders OWNER TO ${r};
      ALTER TABLE app.order_items OWNER TO ${r};
      ALTER TABLE app.orders_twin OWNER TO ${r};
      GRANT CREATE ON DATABASE ${quoteIdent(db.name)} TO ${r};`),
  );
}

function allText(dir: string): string {
  return readdirSync(dir)
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

/** Runs `stages` of the plan in `dir` as `url`: the runner in one go, or psql file by file. */
async function runStages(
  executor: 'runner' | 'psql',
  dir: string,
  url: string,
  from: ForwardStage,
  until: ForwardStage,
): Promise<string> {
  const stages = FORWARD_STAGES.filter((s) => existsSync(join(dir, stageInfo(s).file)));
  if (executor === 'runner') {
    const r = await cli(['run', '--plan', dir, '--url', url, '--until', until, '--events']);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout + r.stderr;
  }
  let output = '';
  for (const stage of stages.slice(stages.indexOf(from), stages.indexOf(until) + 1)) {
    const r = await psql(url, join(dir, stageInfo(stage).file));
    output += r.stdout + r.stderr;
    expect(r.code, `${stage}: ${r.stderr}`).toBe(0);
  }
  return output;
}

describe('the table owner alone (no superuser, no role membership, no pg_read_all_stats)', () => {
  for (const executor of ['runner', 'psql'] as const) {
    it(`runs a whole plan with the ${executor}, under writers; another role's old REPEATABLE READ snapshot still reads every row`, async () => {
      const db = await demo(`perm_${executor}`, 2_000);
      const owner = await newRole(db, `sp_owner_${executor}`);
      await handOver(db, owner.role);
      // Another role that reads the table: its sessions' state is hidden from the owner.
      const other = await newRole(db, `sp_reader_${executor}`);
      await withClient(db.url, (c) =>
        c.query(
          `GRANT USAGE ON SCHEMA app TO ${quoteIdent(other.role)}; GRANT SELECT ON app.orders, app.orders_twin TO ${quoteIdent(other.role)}`,
        ),
      );
      await withClient(owner.url, async (c) => {
        const me = await c.query<{ su: boolean; member_of: string[] }>(
          'SELECT rolsuper AS su, ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid) AS member_of FROM pg_roles r WHERE rolname = current_user',
        );
        expect(me.rows[0]).toEqual({ su: false, member_of: [] });
      });
      const before = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
      const dir = join(mkdtempSync(join(tmpdir(), 'sp-perm-')), 'plan');
      const planned = await cli([
        'plan',
        '--url',
        owner.url,
        '--table',
        'app.orders',
        '--out',
        dir,
        '--batch-pages',
        '10',
        '--snapshot-wait-seconds',
        '60',
      ]);
      expect(planned.code, planned.stderr).toBe(0);
      const plan = readPlanDir(dir);

      const writers = await startWriters({ connectionString: owner.url }, 2, 3);
      const reader = new pg.Client({ connectionString: other.url, application_name: 'other-role-reader' });
      reader.on('error', () => undefined);
      let output = planned.stdout + planned.stderr;
      try {
        output += await runStages(executor, dir, owner.url, 'preflight', 'catchup');
        // W: a row the copy gets only from the log, then the other role's snapshot, which sees W.
        await withClient(owner.url, (c) =>
          c.query(`
          INSERT INTO app.orders (id, customer_id, email, qty, note, created_at) VALUES (100001, 1, 'w@example.com', 1, 'W', '2026-12-01');
          INSERT INTO app.orders_twin SELECT id, customer_id, email, qty, note, created_at FROM app.orders WHERE id = 100001`),
        );
        await reader.connect();
        const readerPid = Number((await reader.query('SELECT pg_backend_pid() AS p')).rows[0].p);
        await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await reader.query('SELECT 1'); // the snapshot; no table locked
        const swap = liveStage(plan, owner.url, 'swap', executor);
        // The swap must wait for it, naming it: the owner sees its pid, application and virtual transaction.
        const named = await swap.seen(
          new RegExp(`pid ${readerPid} \\(other-role-reader, ${other.role}, virtual transaction \\d+/\\d+`),
        );
        const stage = await withClient(
          db.url,
          async (c) => (await c.query<{ stage: string }>('SELECT stage FROM shadowpack.runs')).rows[0]!.stage,
        );
        const seen = await reader.query<{ w: string }>(
          'SELECT count(*) FILTER (WHERE id = 100001) AS w FROM app.orders',
        );
        expect(seen.rows[0]!.w).toBe('1');
        expect(await compareWithTwin(reader)).toMatchObject({ missing: 0, extra: 0 });
        await reader.query('COMMIT');
        const r = await swap.exit;
        output += r.stdout + r.stderr;
        expect(r.code, r.stderr).toBe(0);
        expect(named, output).toBe(true);
        expect(stage).toBe('catchup');
        output += await runStages(executor, dir, owner.url, 'cleanup', 'cleanup');
      } finally {
        await reader.end().catch(() => undefined);
        const stats = await writers.stop();
        expect(stats.errors, stats.lastError ?? '').toBe(0);
      }
      const status = await cli(['status', '--plan', dir, '--url', owner.url]);
      output += status.stdout + status.stderr;

      await withClient(db.url, async (c) => {
        expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
        expect(await leftovers(c)).toEqual([]);
        expect(await catalogSnapshot(c, 'app', 'orders')).toEqual(before);
      });
      expect(output).not.toContain(owner.password);
      expect(allText(dir)).not.toContain(owner.password);
    });
  }
});

describe('a role lacking privileges', () => {
  it('gets every fixing statement from plan, nothing is created, and those statements are enough', async () => {
    const db = await demo('perm_missing', 200);
    const owner = await newRole(db, 'sp_tbl_owner');
    await handOver(db, owner.role);
    // A view over the table owned by yet another role: the swap re-creates it, so its owner's rights are needed too.
    const viewOwner = await newRole(db, 'sp_view_owner');
    await withClient(db.url, (c) =>
      c.query(`
        GRANT USAGE ON SCHEMA app TO ${quoteIdent(viewOwner.role)};
        GRANT SELECT ON app.orders TO ${quoteIdent(viewOwner.role)};
        CREATE VIEW app.recent_orders AS SELECT id, qty FROM app.orders WHERE id > 100;
        ALTER VIEW app.recent_orders OWNER TO ${quoteIdent(viewOwner.role)};`),
    );
    const weak = await newRole(db, 'sp_weak');
    const dir = join(mkdtempSync(join(tmpdir(), 'sp-perm-')), 'plan');

    const refused = await cli(['plan', '--url', weak.url, '--table', 'app.orders', '--out', dir]);
    expect(refused.code).toBe(2);
    const lines = refused.stderr.trim().split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^shadowpack: PRIVILEGES_MISSING: role ${weak.role} lacks \\d+ privileges .*nothing was created.*Run these statements`,
      ),
    );
    const fixes = lines.slice(1).map((l) => l.trim().replace(/ {2}-- .*$/, ''));
    // Ownership of the table and of the child whose foreign key moves, the view, the tool schema; never the stats role.
    expect(fixes).toContain(`GRANT ${owner.role} TO ${weak.role};`);
    expect(refused.stderr).not.toContain('pg_read_all_stats');
    expect(fixes).toContain(`GRANT ${viewOwner.role} TO ${weak.role};`);
    // Named once (newcomer review finding 38: two checks listed it twice on one line).
    expect(refused.stderr.match(/ownership of view app\.recent_orders/g)).toHaveLength(1);
    expect(fixes.some((f) => f.startsWith('GRANT CREATE ON DATABASE'))).toBe(true);
    for (const f of fixes) expect(f).toMatch(/^(GRANT|ALTER) [^;]*;$/);
    expect(existsSync(dir)).toBe(false);
    expect(refused.stderr).not.toContain(weak.password);
    await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));

    // --run-as checks for another role: the owner lacks only the view's owner.
    const forOwner = await cli([
      'plan',
      '--url',
      db.url,
      '--table',
      'app.orders',
      '--out',
      dir,
      '--run-as',
      owner.role,
    ]);
    expect(forOwner.code).toBe(2);
    expect(forOwner.stderr).toMatch(/lacks 1 privilege needed/);
    expect(forOwner.stderr).toContain(`GRANT ${viewOwner.role} TO ${owner.role};`);

    // The listed statements, run by a superuser, are all it takes.
    await withClient(db.url, async (c) => {
      for (const f of fixes) await c.query(f);
    });
    const planned = await cli(['plan', '--url', weak.url, '--table', 'app.orders', '--out', dir]);
    expect(planned.code, planned.stderr).toBe(0);
    const run = await cli(['run', '--plan', dir, '--url', weak.url, '--until', 'cleanup']);
    expect(run.code, run.stderr).toBe(0);
    await withClient(db.url, async (c) => {
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0 });
      expect(await leftovers(c)).toEqual([]);
      // The view was re-created over the rebuilt table, still owned by its owner.
      const v = await c.query<{ owner: string; n: string }>(
        "SELECT pg_get_userbyid(relowner) AS owner, (SELECT count(*) FROM app.recent_orders) AS n FROM pg_class WHERE oid = 'app.recent_orders'::regclass",
      );
      expect(v.rows[0]!.owner).toBe(viewOwner.role);
      expect(Number(v.rows[0]!.n)).toBeGreaterThan(0);
    });
  });

  it('is stopped by the preflight stage too, before anything is created (psql)', async () => {
    const db = await demo('perm_preflight', 100);
    const owner = await newRole(db, 'sp_pf_owner');
    await handOver(db, owner.role);
    const dir = join(mkdtempSync(join(tmpdir(), 'sp-perm-')), 'plan');
    const planned = await cli(['plan', '--url', owner.url, '--table', 'app.orders', '--out', dir]);
    expect(planned.code, planned.stderr).toBe(0);
    await withClient(db.url, (c) =>
      c.query(`REVOKE CREATE ON DATABASE ${quoteIdent(db.name)} FROM ${quoteIdent(owner.role)}`),
    );
    const r = await psql(owner.url, join(dir, stageInfo('preflight').file));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`GRANT CREATE ON DATABASE "?${db.name}"? TO ${owner.role};`));
    await withClient(db.url, async (c) => expect(await leftovers(c)).toEqual([]));
  });
});

describe('passwords', () => {
  it('never appear in errors of a failed connection', async () => {
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const admin = new URL(inject('adminUrl'));
    const wrongPassword = new URL(admin);
    wrongPassword.password = password;
    const closedPort = new URL(admin);
    closedPort.password = password;
    closedPort.port = '1';
    const badHost = new URL(admin);
    badHost.password = password;
    badHost.hostname = 'no-such-host.invalid';
    const db = await demo('perm_pw', 50);
    const dir = join(mkdtempSync(join(tmpdir(), 'sp-pw-')), 'plan');
    expect((await cli(['plan', '--url', db.url, '--table', 'app.orders', '--out', dir])).code).toBe(0);
    const attempts: [URL, string[]][] = [
      [wrongPassword, ['plan', '--table', 'app.orders', '--out', `${dir}-p`]],
      [closedPort, ['run', '--plan', dir]],
      [badHost, ['status', '--plan', dir]],
    ];
    for (const [url, args] of attempts) {
      const r = await cli([...args, '--url', url.toString()]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^shadowpack: CONNECTION_FAILED: /);
      expect(r.stderr + r.stdout, `${args[0]} ${url.host}`).not.toContain(password);
    }
    // A URL that does not even parse, with the password in it.
    const broken = `postgresql://someone:${password}@localhost:notaport/db`;
    const r = await cli(['plan', '--url', broken, '--table', 'app.orders', '--out', `${dir}-q`]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^shadowpack: CONNECTION_FAILED: the connection URL does not parse/);
    expect(r.stderr + r.stdout).not.toContain(password);
  });
});

describe('the old-snapshot wait of a non-superuser without pg_read_all_stats', () => {
  it("names another role's REPEATABLE READ snapshot by its virtual transaction, gives up with nothing swapped, and goes ahead once it ends", async () => {
    const db = await demo('perm_snap', 500);
    const owner = await newRole(db, 'sp_snap_owner');
    await handOver(db, owner.role);
    const plan = await planTable(owner.url, 'app', 'orders', { snapshotWaitSeconds: 1 });
    const connection = { connectionString: owner.url };
    await run({ plan, connection, until: 'catchup', onEvent: () => undefined });

    // A superuser's transaction whose snapshot predates the swap: its state is hidden from the owner.
    const reader = new pg.Client({ connectionString: db.url, application_name: 'old-snapshot-reader' });
    reader.on('error', () => undefined);
    await reader.connect();
    try {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await reader.query('SELECT count(*) FROM app.customers');
      await expect(run({ plan, connection, onEvent: () => undefined })).rejects.toThrow(
        /gave up after 1 s waiting for sessions with old snapshots: pid \d+ \(old-snapshot-reader, [^,]+, virtual transaction \d+\/\d+, open since before /,
      );
      expect((await readRunState(owner.url, plan))?.stage).toBe('catchup');
    } finally {
      await reader.end().catch(() => undefined);
    }
    await run({ plan, connection, until: 'cleanup', onEvent: () => undefined });
    await withClient(db.url, async (c) => {
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0 });
      expect(await leftovers(c)).toEqual([]);
    });
  });
});

describe('the look under the swap lock, by the owner alone', () => {
  it("gives the lock back for another role's REPEATABLE READ snapshot taken while the swap waited for its lock", async () => {
    const db = await demo('perm_look', 500);
    const owner = await newRole(db, 'sp_look_owner');
    await handOver(db, owner.role);
    const other = await newRole(db, 'sp_look_reader');
    await withClient(db.url, (c) =>
      c.query(
        `GRANT USAGE ON SCHEMA app TO ${quoteIdent(other.role)}; GRANT SELECT ON app.orders, app.orders_twin TO ${quoteIdent(other.role)}`,
      ),
    );
    const plan = await planTable(owner.url, 'app', 'orders', {
      snapshotWaitSeconds: 30,
      lockTimeoutMs: 100,
      backoffBaseMs: 50,
      backoffMaxMs: 300,
    });
    await run({ plan, connection: { connectionString: owner.url }, until: 'catchup', onEvent: () => undefined });
    const holder = new pg.Client({ connectionString: owner.url, application_name: 'access-share-holder' });
    const x = new pg.Client({ connectionString: other.url, application_name: 'snapshot-x' });
    for (const c of [holder, x]) {
      c.on('error', () => undefined);
      await c.connect();
    }
    try {
      // The holder keeps the swap from its lock (it waits, not queueing) while W commits and X takes its snapshot.
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM app.orders LIMIT 1');
      const swap = liveStage(plan, owner.url, 'swap', 'runner');
      expect(await swap.seen(/not queueing behind it/)).toBe(true);
      await withClient(owner.url, (c) =>
        c.query(`
        INSERT INTO app.orders (id, customer_id, email, qty, note, created_at) VALUES (100001, 1, 'w@example.com', 1, 'W', '2026-12-01');
        INSERT INTO app.orders_twin SELECT id, customer_id, email, qty, note, created_at FROM app.orders WHERE id = 100001`),
      );
      const xPid = Number((await x.query('SELECT pg_backend_pid() AS p')).rows[0].p);
      await x.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await x.query('SELECT 1'); // the snapshot, with W in it; no table locked
      await holder.query('COMMIT');
      // X began after the gates before the lock: only the look under the lock can find it, by its virtual transaction.
      const named = await swap.seen(
        new RegExp(
          `old snapshots under [^\n]*pid ${xPid} \\(snapshot-x, ${other.role}, virtual transaction \\d+/\\d+, state hidden`,
        ),
      );
      const seen = await x.query<{ w: string }>('SELECT count(*) FILTER (WHERE id = 100001) AS w FROM app.orders');
      expect(seen.rows[0]!.w).toBe('1');
      expect(await compareWithTwin(x)).toMatchObject({ missing: 0, extra: 0 });
      await x.query('COMMIT');
      const r = await swap.exit;
      expect(r.code, r.stderr).toBe(0);
      expect(named, r.stdout + r.stderr).toBe(true);
      await withClient(db.url, async (c) =>
        expect(await compareWithTwin(c)).toMatchObject({ rows: 501, missing: 0, extra: 0, badGenerated: 0 }),
      );
    } finally {
      for (const c of [holder, x]) await c.end().catch(() => undefined);
    }
  });
});

describe('the lock step, by the owner alone', () => {
  it("does not keep queueing behind another role's transaction that holds a lock on the table, and names it by its virtual transaction", async () => {
    const db = await demo('perm_blocker', 300);
    const owner = await newRole(db, 'sp_blk_owner');
    await handOver(db, owner.role);
    const other = await newRole(db, 'sp_blk_reader');
    await withClient(db.url, (c) =>
      c.query(
        `GRANT USAGE ON SCHEMA app TO ${quoteIdent(other.role)}; GRANT SELECT ON app.orders TO ${quoteIdent(other.role)}`,
      ),
    );
    const plan = await planTable(owner.url, 'app', 'orders', {
      lockAttempts: 4,
      lockTimeoutMs: 100,
      backoffBaseMs: 50,
      backoffMaxMs: 100,
    });
    const connection = { connectionString: owner.url };
    await run({ plan, connection, until: 'catchup', onEvent: () => undefined });
    const holder = new pg.Client({ connectionString: other.url, application_name: 'other-role-holder' });
    holder.on('error', () => undefined);
    await holder.connect();
    try {
      const pid = Number((await holder.query('SELECT pg_backend_pid() AS p')).rows[0].p);
      await holder.query('BEGIN'); // READ COMMITTED: no snapshot once its statement ends, only the lock
      await holder.query('SELECT 1 FROM app.orders LIMIT 1');
      // One attempt queues behind it (its start time is hidden from the owner); the rounds after wait instead.
      await expect(run({ plan, connection, onEvent: () => undefined })).rejects.toThrow(
        new RegExp(
          `could not take [^;]* after 4 rounds \\(1 attempts\\): held by pid ${pid} \\(other-role-holder, ${other.role}, virtual transaction \\d+/\\d+`,
        ),
      );
      expect((await readRunState(owner.url, plan))?.stage).toBe('catchup');
    } finally {
      await holder.end().catch(() => undefined);
    }
    await run({ plan, connection, until: 'cleanup', onEvent: () => undefined });
    await withClient(db.url, async (c) =>
      expect(await compareWithTwin(c)).toMatchObject({ rows: 300, missing: 0, extra: 0 }),
    );
  });
});

describe('the revert, by the owner alone', () => {
  it("waits for another role's REPEATABLE READ snapshot that saw writes made after the swap", async () => {
    const db = await demo('perm_revert', 500);
    const owner = await newRole(db, 'sp_rev_owner');
    await handOver(db, owner.role);
    const other = await newRole(db, 'sp_rev_reader');
    await withClient(db.url, (c) =>
      c.query(
        `GRANT USAGE ON SCHEMA app TO ${quoteIdent(other.role)}; GRANT SELECT ON app.orders, app.orders_twin TO ${quoteIdent(other.role)}`,
      ),
    );
    const plan = await planTable(owner.url, 'app', 'orders', { snapshotWaitSeconds: 30 });
    await run({ plan, connection: { connectionString: owner.url }, until: 'swap', onEvent: () => undefined });
    const x = new pg.Client({ connectionString: other.url, application_name: 'snapshot-x' });
    x.on('error', () => undefined);
    await x.connect();
    try {
      // W reaches the old table only through the reverse log; X's snapshot sees W.
      await withClient(owner.url, (c) =>
        c.query(`
        INSERT INTO app.orders (id, customer_id, email, qty, note, created_at) VALUES (100001, 1, 'w@example.com', 1, 'W', '2026-12-01');
        INSERT INTO app.orders_twin SELECT id, customer_id, email, qty, note, created_at FROM app.orders WHERE id = 100001`),
      );
      const xPid = Number((await x.query('SELECT pg_backend_pid() AS p')).rows[0].p);
      await x.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await x.query('SELECT 1'); // the snapshot, with W in it; no table locked
      const revert = liveStage(plan, owner.url, 'revert', 'runner');
      const named = await revert.seen(
        new RegExp(`pid ${xPid} \\(snapshot-x, ${other.role}, virtual transaction \\d+/\\d+`),
      );
      const seen = await x.query<{ w: string }>('SELECT count(*) FILTER (WHERE id = 100001) AS w FROM app.orders');
      expect(seen.rows[0]!.w).toBe('1');
      expect(await compareWithTwin(x)).toMatchObject({ missing: 0, extra: 0 });
      await x.query('COMMIT');
      const r = await revert.exit;
      expect(r.code, r.stderr).toBe(0);
      expect(named, r.stdout + r.stderr).toBe(true);
      await withClient(db.url, async (c) =>
        expect(await compareWithTwin(c)).toMatchObject({ rows: 501, missing: 0, extra: 0, badGenerated: 0 }),
      );
    } finally {
      await x.end().catch(() => undefined);
    }
  });
});

async function readRunState(url: string, plan: LoadedPlan) {
  return withClient(url, (c) => readState(c, plan.manifest));
}
