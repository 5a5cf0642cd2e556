/**
 * `plan --reversible` on a move (issue 15), source 14 -> target 17, with the runner: the cut-over installs on the
 * target the same capture the source has (change log per table, AFTER ROW trigger ENABLE ALWAYS, TRUNCATE guard),
 * in the transaction that makes the target writable; every key a committed write touches there is logged (old key
 * of a delete or key change marked gone), a rolled-back write logs nothing, a replica-role session is captured
 * too; TRUNCATE is refused; 08-cleanup.target.sql removes it all and the target keeps taking writes. On a rebuild
 * plan the option is refused in one line.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMovePlanDir } from '../../src/run/move-plan.js';
import { main } from '../../src/cli/main.js';
import { withClient } from '../helpers/db.js';
import { createMoveFixture } from '../helpers/move-fixture.js';
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

beforeAll(async () => {
  servers = await startMoveServers();
  pair = await freshMovePair(servers, 'move_reversible');
  await withClient(pair.source.url, (c) => createMoveFixture(c, { customers: 40, orders: 300 }));
  await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
  root = mkdtempSync(join(tmpdir(), 'sp-move-reversible-'));
  savedPassword = process.env[FDW_PASSWORD_ENV];
  process.env[FDW_PASSWORD_ENV] = decodeURIComponent(new URL(pair.source.url).password);
}, 120_000);

afterAll(async () => {
  if (savedPassword === undefined) delete process.env[FDW_PASSWORD_ENV];
  else process.env[FDW_PASSWORD_ENV] = savedPassword;
  if (root) rmSync(root, { recursive: true, force: true });
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
  it('is refused on a rebuild plan in one line', async () => {
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

    // Cleanup ends the revert window: no tool object is left on the target, which goes on taking writes.
    const clean = await run(['run', ...args, '--until', 'cleanup']);
    expect(clean.code, clean.stderr).toBe(0);
    expect(await toolObjects()).toEqual([]);
    await withClient(pair.target.url, async (c) => {
      await c.query(`UPDATE app.orders SET note = 'after cleanup' WHERE id = 8`);
      await c.query(`TRUNCATE app.order_items`);
    });
  }, 120_000);
});
