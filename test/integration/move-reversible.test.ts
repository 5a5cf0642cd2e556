/**
 * `plan --reversible` on a move (issue 15), source 14 -> target 17, with the runner: the cut-over installs on the
 * target the same capture the source has (change log per table, AFTER ROW trigger ENABLE ALWAYS, TRUNCATE guard),
 * in the transaction that makes the target writable; every key a committed write touches there is logged (old key
 * of a delete or key change marked gone), a rolled-back write logs nothing, a replica-role session is captured
 * too; TRUNCATE is refused; 08-cleanup.target.sql removes it all and the target keeps taking writes. On a rebuild
 * plan the option is refused in one line.
 *
 * The revert (`run --stage revert`: 91-revert.source.sql, 92-revert.target.sql, 93-revert.source.sql): four
 * writers on the target mirror every statement into twin tables there in the same transaction, from after the
 * cut-over until the target's fence stops them, with a transaction open across the revert's first round; after
 * the revert every source table equals the target's twin row for row, writes on the target fail with the fence
 * message, and new rows on the source get keys above every value used on the target.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMovePlanDir } from '../../src/run/move-plan.js';
import { readMoveSide } from '../../src/run/move-state.js';
import { main } from '../../src/cli/main.js';
import { withClient } from '../helpers/db.js';
import { compareMoveWithTwins, createMoveFixture, MOVE_COLUMNS, MOVE_GROUP } from '../helpers/move-fixture.js';
import { openSpanning, startMoveWriters } from '../helpers/move-writers.js';
import {
  freshMovePair,
  MOVE_SOURCE_MISSING,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';
import type { Exit } from '../helpers/rebuild.js';

let servers: MoveServers;
let pair: MovePair;
let root: string;
const FDW_PASSWORD_ENV = 'SHADOWPACK_FDW_PASSWORD';
let savedPassword: string | undefined;
const execFileAsync = promisify(execFile);
const REVERT_PASSWORD_ENV = 'SHADOWPACK_REVERT_FDW_PASSWORD';
let savedRevertPassword: string | undefined;
let revertPair: MovePair;
let psqlPair: MovePair;

beforeAll(async () => {
  servers = await startMoveServers();
  pair = await freshMovePair(servers, 'move_reversible');
  await withClient(pair.source.url, (c) => createMoveFixture(c, { customers: 40, orders: 300 }));
  await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
  root = mkdtempSync(join(tmpdir(), 'sp-move-reversible-'));
  savedPassword = process.env[FDW_PASSWORD_ENV];
  process.env[FDW_PASSWORD_ENV] = decodeURIComponent(new URL(pair.source.url).password);
  revertPair = await freshMovePair(servers, 'move_revert');
  await withClient(revertPair.source.url, (c) => createMoveFixture(c, { customers: 40, orders: 300 }));
  await withClient(revertPair.target.url, (c) => c.query('CREATE SCHEMA app'));
  psqlPair = await freshMovePair(servers, 'move_revert_psql');
  await withClient(psqlPair.source.url, async (c) => {
    await createMoveFixture(c, { customers: 30, orders: 100 });
    // A descending sequence: the revert sets it below every value used on the target.
    await c.query(`CREATE SEQUENCE app.down_seq INCREMENT -1 MINVALUE -1000000 MAXVALUE -1 START -1;
                   ALTER TABLE app.order_items ADD COLUMN down bigint NOT NULL DEFAULT nextval('app.down_seq')`);
  });
  await withClient(psqlPair.target.url, (c) => c.query('CREATE SCHEMA app'));
  savedRevertPassword = process.env[REVERT_PASSWORD_ENV];
  process.env[REVERT_PASSWORD_ENV] = decodeURIComponent(new URL(revertPair.target.url).password);
}, 120_000);

afterAll(async () => {
  if (savedPassword === undefined) delete process.env[FDW_PASSWORD_ENV];
  else process.env[FDW_PASSWORD_ENV] = savedPassword;
  if (savedRevertPassword === undefined) delete process.env[REVERT_PASSWORD_ENV];
  else process.env[REVERT_PASSWORD_ENV] = savedRevertPassword;
  if (root) rmSync(root, { recursive: true, force: true });
  await psqlPair?.drop();
  await revertPair?.drop();
  await pair?.drop();
  await servers?.stop();
});

async function run(args: string[]): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (line) => (stdout += line + '\n'), err: (text) => (stderr += text) });
  return { code, signal: null, stdout, stderr };
}

/** The target's logged keys of one table as `key:gone` texts, sorted (duplicates kept). */
async function logged(runId: string, n: number, key: string): Promise<string[]> {
  return withClient(pair.target.url, async (c) => {
    const r = await c.query<{ k: string }>(
      `SELECT ${key}::text || ':' || gone::text AS k FROM shadowpack.mlog_${runId}_${n} ORDER BY 1`,
    );
    return r.rows.map((x) => x.k);
  });
}

/** Tool triggers on the group's tables and tool relations/functions on the target. */
async function toolObjects(): Promise<string[]> {
  return withClient(pair.target.url, async (c) => {
    const r = await c.query<{ o: string }>(
      `SELECT 'trigger ' || tgname || ' on ' || tgrelid::regclass::text AS o FROM pg_trigger
         WHERE tgname LIKE 'shadowpack%' AND tgrelid IN ('app.customers'::regclass, 'app.orders'::regclass, 'app.order_items'::regclass)
       UNION ALL
       SELECT 'relation ' || c.oid::regclass::text FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'shadowpack'
       UNION ALL
       SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = 'shadowpack'
       ORDER BY 1`,
    );
    return r.rows.map((x) => x.o);
  });
}

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('plan --reversible on a move', () => {
  it('is refused on a rebuild plan in one line; a move planned without it has no revert', async () => {
    const plain = join(root, 'plain');
    const planned = await run([
      'plan',
      '--url',
      revertPair.source.url,
      '--target-url',
      revertPair.target.url,
      '--table',
      'app.customers',
      '--with-fk-closure',
      '--out',
      plain,
    ]);
    expect(planned.code, planned.stderr).toBe(0);
    expect(readMovePlanDir(plain).manifest.stages.map((s) => s.file)).not.toContain('91-revert.source.sql');
    // The source's user mapping for a revert logs in the same way as the target's: only password and pgpass.
    const cert = await run([
      'plan',
      '--url',
      revertPair.source.url,
      '--target-url',
      revertPair.target.url,
      '--table',
      'app.customers',
      '--with-fk-closure',
      '--reversible',
      '--fdw-auth',
      'cert',
      '--fdw-sslcert',
      '/tmp/c.crt',
      '--fdw-sslkey',
      '/tmp/c.key',
      '--out',
      join(root, 'cert'),
    ]);
    expect(cert.code).toBe(2);
    expect(cert.stderr).toMatch(/BAD_ARGUMENT: --reversible with --fdw-auth cert is not supported yet/);
    const noRevert = await run([
      'run',
      '--plan',
      plain,
      '--url',
      revertPair.source.url,
      '--target-url',
      revertPair.target.url,
      '--stage',
      'revert',
    ]);
    expect(noRevert.code).toBe(2);
    expect(noRevert.stderr).toMatch(
      /BAD_ARGUMENT: \S+ was planned without --reversible, so its target captures nothing after the cut-over and there is no revert/,
    );
    const refused = await run([
      'plan',
      '--url',
      pair.source.url,
      '--table',
      'app.customers',
      '--reversible',
      '--out',
      join(root, 'rebuild'),
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /BAD_ARGUMENT: --reversible goes with --target-url \(a move plan\); a rebuild needs no such option: it can always be reverted between the swap and cleanup \(run --stage revert\)/,
    );
  });

  it('captures every committed write on the target from the cut-over to cleanup, then removes the capture', async () => {
    const dir = join(root, 'reversible');
    const tables = ['--table', 'app.customers', '--table', 'app.orders', '--table', 'app.order_items'];
    const planned = await run([
      'plan',
      '--url',
      pair.source.url,
      '--target-url',
      pair.target.url,
      ...tables,
      '--out',
      dir,
      '--reversible',
    ]);
    expect(planned.code, planned.stderr).toBe(0);
    const plan = readMovePlanDir(dir);
    expect(plan.manifest.options.reversible).toBe(true);
    const runId = plan.manifest.runId;
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    for (const code of ['TARGET_WRITE_OVERHEAD', 'TARGET_TRUNCATE_BLOCKED', 'REVERT_WINDOW'])
      expect(readme).toMatch(new RegExp(`^- ${code}: --reversible: `, 'm'));
    expect(plan.manifest.stages.find((s) => s.file === '08-cleanup.target.sql')!.locks.map((l) => l.mode)).toEqual([
      'SHARE ROW EXCLUSIVE',
      'SHARE ROW EXCLUSIVE',
      'SHARE ROW EXCLUSIVE',
    ]);

    const args = ['--plan', dir, '--url', pair.source.url, '--target-url', pair.target.url];
    const cut = await run(['run', ...args]);
    expect(cut.code, cut.stderr).toBe(0);
    // The cut-over's own rows are not logged: the logs start empty.
    // Tables are numbered in qualified-name order: 1 customers, 2 order_items, 3 orders.
    expect(await logged(runId, 1, 'id')).toEqual([]);
    expect(await logged(runId, 2, 'ROW(order_id, line)')).toEqual([]);
    expect(await logged(runId, 3, 'id')).toEqual([]);

    const inserted = await withClient(pair.target.url, async (c) => {
      const id = (
        await c.query<{ id: number }>(`INSERT INTO app.customers (name) VALUES ('new on target') RETURNING id`)
      ).rows[0]!.id;
      await c.query(`UPDATE app.customers SET name = 'renamed' WHERE id = 2`);
      await c.query(`UPDATE app.customers SET id = 900000 WHERE id = $1`, [id]);
      await c.query(`DELETE FROM app.order_items WHERE order_id = 2 AND line = 1`);
      await c.query(`UPDATE app.order_items SET line = 7 WHERE order_id = 4 AND line = 2`);
      await c.query('BEGIN');
      await c.query(`UPDATE app.orders SET qty = 5 WHERE id = 3`);
      await c.query('ROLLBACK');
      // A session that turns ordinary triggers off (as logical-replication appliers and bulk loads do) is captured.
      await c.query(`SET session_replication_role = replica`);
      await c.query(`UPDATE app.orders SET note = 'replica' WHERE id = 6`);
      await c.query(`RESET session_replication_role`);
      const truncate = await c.query('TRUNCATE app.order_items').then(
        () => 'truncated',
        (e: Error) => e.message,
      );
      expect(truncate).toBe('shadowpack: TRUNCATE of app.order_items is refused while the move can still be reverted');
      return id;
    });
    expect(await logged(runId, 1, 'id')).toEqual(
      [`${inserted}:false`, `${inserted}:true`, '2:false', '900000:false'].sort(),
    );
    expect(await logged(runId, 2, 'ROW(order_id, line)')).toEqual(['(2,1):true', '(4,2):true', '(4,7):false']);
    expect(await logged(runId, 3, 'id')).toEqual(['6:false']);
    const status = await run(['status', ...args]);
    expect(status.stdout).toMatch(/^ {2}revert backlog: 8 keys logged on the target since the cut-over/m);

    // Cleanup ends the revert window: no tool object is left on the target, which goes on taking writes.
    const clean = await run(['run', ...args, '--until', 'cleanup']);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toContain('app.customers, app.order_items, app.orders: moved; cleaned up on both sides');
    expect(await toolObjects()).toEqual([]);
    await withClient(pair.target.url, async (c) => {
      await c.query(`UPDATE app.orders SET note = 'after cleanup' WHERE id = 8`);
      await c.query(`TRUNCATE app.order_items`);
    });
  }, 120_000);

  it('reverts: the source takes back every write the target committed, then is live with keys past the target', async () => {
    const { source, target } = revertPair;
    const dir = join(root, 'revert');
    const tables = ['--table', 'app.customers', '--table', 'app.orders', '--table', 'app.order_items'];
    const planned = await run([
      'plan',
      '--url',
      source.url,
      '--target-url',
      target.url,
      ...tables,
      '--out',
      dir,
      '--reversible',
    ]);
    expect(planned.code, planned.stderr).toBe(0);
    const runId = readMovePlanDir(dir).manifest.runId;
    const args = ['--plan', dir, '--url', source.url, '--target-url', target.url];
    const cut = await run(['run', ...args]);
    expect(cut.code, cut.stderr).toBe(0);

    // The application now writes to the target; its twins there mirror every statement in the same transaction.
    await withClient(target.url, async (c) => {
      await c.query('CREATE SCHEMA twin');
      for (const t of MOVE_GROUP)
        await c.query(`CREATE TABLE twin.${t} AS SELECT ${MOVE_COLUMNS[t].join(', ')} FROM app.${t}`);
      await c.query('ALTER TABLE twin.customers ADD PRIMARY KEY (id)');
      await c.query('ALTER TABLE twin.orders ADD PRIMARY KEY (id)');
      await c.query('ALTER TABLE twin.order_items ADD PRIMARY KEY (order_id, line)');
    });
    const writers = await startMoveWriters(target.url, {
      stopAtFence: true,
      fenceMessage: /moved back to .*; writes are refused/,
      pauseMs: 5,
      seed: 3,
    });
    await new Promise((r) => setTimeout(r, 1000));
    // A transaction open across the revert's first round: it commits only once that round has applied.
    const spanning = await openSpanning(target.url);
    const rounds = async () =>
      withClient(source.url, async (c) => {
        const r = await c.query<{ n: string | null }>(
          `SELECT (to_jsonb(s) ->> 'revert_rounds') AS n FROM shadowpack.move_${runId} s`,
        );
        return Number(r.rows[0]?.n ?? 0);
      });
    const committer = (async () => {
      const end = Date.now() + 30_000;
      while ((await rounds()) < 1) {
        if (Date.now() > end) throw new Error('no revert round within 30 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      await spanning.commit();
    })();

    const reverted = await run(['run', ...args, '--stage', 'revert']);
    await committer;
    expect(reverted.code, reverted.stderr).toBe(0);
    expect(reverted.stdout).toContain('reverted; the source is live again');
    expect(reverted.stdout).toMatch(/revert\.source .*revert\.target .*revert\.source/s);
    const stats = await writers.fencedAll;
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    expect(stats.fenced).toBe(4);
    expect(stats.commits).toBeGreaterThan(10);

    const compared = await compareMoveWithTwins(target.url, source.url);
    expect(compared.equal, JSON.stringify(compared.tables)).toBe(true);

    // The target refuses writes now, naming the source; the source takes them, with keys past the target's.
    const refused = await withClient(target.url, (c) =>
      c.query(`INSERT INTO app.customers (name) VALUES ('late')`).then(
        () => 'inserted',
        (e: Error) => e.message,
      ),
    );
    expect(refused).toMatch(/^shadowpack: app\.customers moved back to .*; writes are refused$/);
    const used = await withClient(target.url, async (c) => {
      const r = await c.query<{ c: string; o: string; ref: string }>(
        `SELECT greatest((SELECT max(id) FROM app.customers), (SELECT last_value FROM app.customers_id_seq)) AS c,
                greatest((SELECT max(id) FROM app.orders), (SELECT last_value FROM app.orders_id_seq)) AS o,
                greatest((SELECT max(ref) FROM app.customers), (SELECT max(ref) FROM app.orders), (SELECT last_value FROM app.shared_ref_seq)) AS ref`,
      );
      return r.rows[0]!;
    });
    const fresh = await withClient(source.url, async (c) => {
      const cust = await c.query<{ id: number; ref: string }>(
        `INSERT INTO app.customers (name) VALUES ('after revert') RETURNING id, ref`,
      );
      const ord = await c.query<{ id: string; ref: string }>(
        `INSERT INTO app.orders (customer_id, qty) VALUES ($1, 1) RETURNING id, ref`,
        [cust.rows[0]!.id],
      );
      return { c: cust.rows[0]!, o: ord.rows[0]! };
    });
    expect(BigInt(fresh.c.id)).toBeGreaterThan(BigInt(used.c));
    expect(BigInt(fresh.o.id)).toBeGreaterThan(BigInt(used.o));
    expect(BigInt(fresh.c.ref)).toBeGreaterThan(BigInt(used.ref));
    expect(BigInt(fresh.o.ref)).toBeGreaterThan(BigInt(used.ref));

    const status = await run(['status', ...args]);
    expect(status.stdout).toMatch(/source: "reverted", target: "reverted"; next: cleanup on the target/);
    expect(status.stdout).toMatch(/^ {2}revert: \d+ rounds, \d+ keys brought back to the source/m);

    // Cleanup after the revert: no tool object is left on the source (nor its server to the target), the
    // target keeps its fence, and the plan does not run again.
    const clean = await run(['run', ...args, '--until', 'cleanup']);
    expect(clean.code, clean.stderr).toBe(0);
    // It says what ended: the revert (it said 'moved; cleaned up on both sides').
    expect(clean.stdout).toContain(
      "app.customers, app.order_items, app.orders: reverted; cleaned up on both sides (the target's tables keep refusing writes)",
    );
    const left = await withClient(source.url, async (c) =>
      (
        await c.query<{ o: string }>(
          `SELECT 'relation ' || c.oid::regclass::text AS o FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname LIKE 'shadowpack%'
           UNION ALL SELECT 'server ' || srvname FROM pg_foreign_server
           UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE 'shadowpack%'`,
        )
      ).rows.map((r) => r.o),
    );
    expect(left).toEqual([]);
    const again = await run(['run', ...args]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(
      "this move was reverted: neither side has a run left and the target's tables carry its fence",
    );
  }, 120_000);

  it('reverts with psql, file by file; neither cleanup can strand a fenced target, nor give a revert up once the source is live; a lost word to the target is sent again', async () => {
    const { source, target } = psqlPair;
    const dir = join(root, 'revert-psql');
    const tables = ['--table', 'app.customers', '--table', 'app.orders', '--table', 'app.order_items'];
    const planned = await run([
      'plan',
      '--url',
      source.url,
      '--target-url',
      target.url,
      ...tables,
      '--out',
      dir,
      '--reversible',
    ]);
    expect(planned.code, planned.stderr).toBe(0);
    const cut = await run(['run', '--plan', dir, '--url', source.url, '--target-url', target.url]);
    expect(cut.code, cut.stderr).toBe(0);
    await withClient(target.url, async (c) => {
      await c.query(`INSERT INTO app.customers (name, email) VALUES ('on target', 'moved@example.com')`);
      await c.query(`UPDATE app.orders SET note = NULL, qty = 7 WHERE id = 3`);
      await c.query(`UPDATE app.orders SET id = DEFAULT WHERE id = 4`); // the items follow (ON UPDATE CASCADE)
      await c.query(`DELETE FROM app.order_items WHERE order_id = 2`);
      await c.query(`INSERT INTO app.order_items (order_id, line, sku, qty) VALUES (6, 9, 'counted down', 1)`);
      await c.query(`DELETE FROM app.orders WHERE id = 2`);
    });
    const env = { ...process.env, [REVERT_PASSWORD_ENV]: decodeURIComponent(new URL(target.url).password) };
    const psql = (file: string, url: string) =>
      execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file], {
        cwd: dir,
        env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const psqlFails = (file: string, url: string): string => {
      try {
        psql(file, url);
      } catch (e) {
        return String((e as { stderr?: string }).stderr);
      }
      throw new Error(`${file} did not fail`);
    };
    psql('91-revert.source.sql', source.url);
    // A transaction that wrote on the target before the fence and commits while 92 waits for its lock: the
    // fence takes its lock only after that commit, so the write is in the last round's snapshot.
    const held = new pg.Client({ connectionString: target.url });
    await held.connect();
    await held.query('BEGIN');
    await held.query(`UPDATE app.customers SET name = 'committed while the fence waited' WHERE id = 5`);
    const fencing = execFileAsync(
      'psql',
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', target.url, '-f', '92-revert.target.sql'],
      {
        cwd: dir,
        env,
      },
    );
    await withClient(target.url, async (c) => {
      const end = Date.now() + 20_000;
      const waiting = `SELECT FROM pg_stat_activity WHERE application_name LIKE 'shadowpack:%:revert' AND wait_event_type = 'Lock'`;
      while ((await c.query(waiting)).rows.length === 0) {
        if (Date.now() > end) throw new Error('92-revert.target.sql never waited for the lock');
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    await held.query('COMMIT');
    await held.end();
    await fencing;
    // The target is fenced for the revert: the source's cleanup may not remove what 93-revert.source.sql needs
    // (08-cleanup.target.sql would give the revert up here, the source not being live yet: move-revert-attacks).
    expect(psqlFails('08-cleanup.source.sql', source.url)).toContain(
      'a revert holds the target fenced; the source is not cleaned up',
    );
    // A plain run does not go on with a revert under way (nor give it up): it names --stage revert; status too.
    const args = ['--plan', dir, '--url', source.url, '--target-url', target.url];
    const plain = await run(['run', ...args, '--until', 'cleanup']);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain(
      'a revert of this move is under way (source "reverting", target "revert-fenced"): go on with --stage revert (next: 93-revert.source.sql on the source)',
    );
    expect((await run(['status', ...args])).stdout).toContain('next: revert on the source (93-revert.source.sql)');
    await withClient(target.url, async (c) => {
      await c.query('CREATE SCHEMA twin');
      for (const t of MOVE_GROUP)
        await c.query(`CREATE TABLE twin.${t} AS SELECT ${MOVE_COLUMNS[t].join(', ')} FROM app.${t}`);
    });
    // 93 commits on the source, then its word to the target is lost: the target's state row is held locked, and the
    // source session waiting on it is terminated. The runner then runs 93 again, which only tells the target.
    const runId = readMovePlanDir(dir).manifest.runId;
    const holder = new pg.Client({ connectionString: target.url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT FROM shadowpack.move_${runId} FOR UPDATE`);
    const last = execFileAsync(
      'psql',
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', source.url, '-f', '93-revert.source.sql'],
      {
        cwd: dir,
        env,
      },
    ).then(
      () => 'ran',
      (e: Error) => e.message,
    );
    await withClient(target.url, async (c) => {
      const end = Date.now() + 20_000;
      const waiting = `SELECT FROM pg_stat_activity WHERE application_name = 'shadowpack:${runId}:revert' AND wait_event_type = 'Lock'`;
      while ((await c.query(waiting)).rows.length === 0) {
        if (Date.now() > end) throw new Error("93's word to the target never waited");
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    await withClient(source.url, (c) =>
      c.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'shadowpack:${runId}:revert'`,
      ),
    );
    expect(await last).toMatch(/terminat|connection/i);
    await holder.query('ROLLBACK');
    await holder.end();
    const stages = async () => [
      (await withClient(source.url, (c) => readMoveSide(c, runId)))?.stage,
      (await withClient(target.url, (c) => readMoveSide(c, runId)))?.stage,
    ];
    expect(await stages()).toEqual(['reverted', 'revert-fenced']);
    // The source is live: the target's cleanup may not give the revert up (both sides would take writes).
    expect(psqlFails('08-cleanup.target.sql', target.url)).toContain(
      'the revert made the source live (source stage reverted); the target stays fenced',
    );
    // Nor does the runner: --stage cleanup refuses in one line before running anything, naming what finishes it.
    const giveUp = await run(['run', ...args, '--stage', 'cleanup']);
    expect(giveUp.code).toBe(2);
    expect(giveUp.stderr).toBe(
      'shadowpack: RUN_STATE: the revert made the source live (source "reverted", target "revert-fenced"), so it cannot be given up: finish it with --stage revert (it only tells the target), then --stage cleanup\n',
    );
    expect(await stages()).toEqual(['reverted', 'revert-fenced']);
    const again = await run(['run', ...args, '--stage', 'revert']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^stages: revert\.source \d+ ms; total/m);
    expect(await stages()).toEqual(['reverted', 'reverted']);
    const compared = await compareMoveWithTwins(target.url, source.url);
    expect(compared.equal, JSON.stringify(compared.tables)).toBe(true);
    expect(
      await withClient(source.url, async (c) => (await c.query(`SELECT name FROM app.customers WHERE id = 5`)).rows),
    ).toEqual([{ name: 'committed while the fence waited' }]);
    expect(psqlFails('91-revert.source.sql', source.url)).toContain('the revert is done; the source is live');
    await withClient(source.url, (c) => c.query(`UPDATE app.customers SET name = 'live again' WHERE id = 1`));
    const lowest = await withClient(target.url, async (c) =>
      BigInt(
        (
          await c.query<{ v: string }>(
            `SELECT least((SELECT min(down) FROM app.order_items), (SELECT last_value FROM app.down_seq)) AS v`,
          )
        ).rows[0]!.v,
      ),
    );
    const down = await withClient(source.url, async (c) =>
      BigInt(
        (
          await c.query<{ down: string }>(
            `INSERT INTO app.order_items (order_id, line, sku, qty) VALUES (8, 9, 'after revert', 1) RETURNING down`,
          )
        ).rows[0]!.down,
      ),
    );
    expect(down).toBeLessThan(lowest);
    psql('08-cleanup.target.sql', target.url);
    psql('08-cleanup.source.sql', source.url);
  }, 120_000);
});
