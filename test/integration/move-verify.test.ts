/**
 * `shadowpack diff --plan` and `shadowpack verify` on a move plan (issue 15), source 14 -> target 17: before the cut-over in one source
 * snapshot (a round applied and rolled back, the source's checksums read through the foreign server), after it
 * against the fenced source. Equal after a move; a changed, a deleted and an extra target row are found and named.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planMove, writeMovePlan } from '../../src/planning/plan-move.js';
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
let dir: string;
const FDW_PASSWORD_ENV = 'SHADOWPACK_FDW_PASSWORD';
let savedPassword: string | undefined;

beforeAll(async () => {
  servers = await startMoveServers();
  pair = await freshMovePair(servers, 'move_verify');
  await withClient(pair.source.url, (c) => createMoveFixture(c, { customers: 40, orders: 200 }));
  await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
  dir = mkdtempSync(join(tmpdir(), 'sp-move-verify-'));
  savedPassword = process.env[FDW_PASSWORD_ENV];
  process.env[FDW_PASSWORD_ENV] = decodeURIComponent(new URL(pair.source.url).password);
}, 120_000);

afterAll(async () => {
  if (savedPassword === undefined) delete process.env[FDW_PASSWORD_ENV];
  else process.env[FDW_PASSWORD_ENV] = savedPassword;
  if (dir) rmSync(dir, { recursive: true, force: true });
  await pair?.drop();
  await servers?.stop();
});

async function run(args: string[]): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (line) => (stdout += line + '\n'), err: (text) => (stderr += text) });
  return { code, signal: null, stdout, stderr };
}

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('shadowpack verify on a move plan', () => {
  it('passes after catch-up with writes not yet applied, names changed, deleted and extra target rows, passes after the cut-over', async () => {
    const s = new pg.Client({ connectionString: pair.source.url });
    const t = new pg.Client({ connectionString: pair.target.url });
    await s.connect();
    await t.connect();
    try {
      writeMovePlan(
        dir,
        await planMove(s, t, {
          tables: ['customers', 'orders', 'order_items'].map((table) => ({ schema: 'app', table })),
        }),
        true,
      );
      const runId = readMovePlanDir(dir).manifest.runId;
      const args = ['--plan', dir, '--url', pair.source.url, '--target-url', pair.target.url];

      // diff --plan: the approved plan against what both live databases give now.
      const same = await run(['diff', ...args]);
      expect(same.code, same.stderr + same.stdout).toBe(0);
      expect(same.stdout).toMatch(/^SQL identical\nA: .* \(\w+\)\nB: live \(\w+\)$/m);
      await s.query(`COMMENT ON TABLE app.order_items IS 'lines of an order'`);
      const changed = await run(['diff', ...args, '--json']);
      expect(changed.code, changed.stderr).toBe(1);
      const d = JSON.parse(changed.stdout) as { identical: boolean; scripts: { file: string; diff: string }[] };
      expect(d.identical).toBe(false);
      expect(d.scripts.find((x) => x.file === '07-cutover.target.sql')?.diff).toContain(
        `\n+COMMENT ON TABLE "app"."order_items" IS 'lines of an order';\n`,
      );
      await s.query(`COMMENT ON TABLE app.order_items IS NULL`);
      expect((await run(['diff', ...args])).code).toBe(0);

      const early = await run(['verify', ...args]);
      expect(early.code).toBe(2);
      expect(early.stderr).toMatch(/RUN_STATE: nothing to verify: the move is not set up/);

      const catchup = await run(['run', ...args, '--until', 'catchup']);
      expect(catchup.code, catchup.stderr).toBe(0);

      // Written after the last catch-up round: only verify's own round brings them to the target.
      await s.query(`UPDATE app.customers SET name = 'renamed' WHERE id = 3;
                     DELETE FROM app.order_items WHERE order_id = 4;
                     UPDATE app.orders SET note = 'late', qty = qty + 1 WHERE id = 11`);
      const pass = await run(['verify', ...args]);
      expect(pass.code, pass.stderr + pass.stdout).toBe(0);
      expect(pass.stdout).toMatch(
        /^PASS: 3 of 3 tables on the target equal the source \(\d+ source rows, 1024 key-hash buckets each, sp-bucket-md5-v1\), in one source snapshot, with a round applied first \([1-9]\d* logged keys; rolled back\)/,
      );
      // The round was rolled back: the target still has the old name.
      expect((await t.query(`SELECT name FROM app.customers WHERE id = 3`)).rows[0]!.name).toBe('customer 3');

      // The source's checksums are aggregated there: one row per bucket crosses, never a table row.
      const plan = (
        await t.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN VERBOSE SELECT kh & 1023 AS b, count(*) AS n, sum(h) AS s FROM shadowpack_src_${runId}.hash_3 GROUP BY 1`,
        )
      ).rows
        .map((r) => r['QUERY PLAN'])
        .join('\n');
      expect(plan).toMatch(
        /Remote SQL: SELECT \(kh & 1023\), count\(\*\), sum\(h\) FROM shadowpack\.mhash_\w+ GROUP BY 1/,
      );

      // A changed, a deleted and an extra row on the target (the deny trigger lets the move's own setting through).
      await t.query(`BEGIN; SET LOCAL shadowpack.apply = '${runId}';
                     UPDATE app.orders SET note = 'tampered' WHERE id = 7;
                     DELETE FROM app.orders WHERE id = 9;
                     INSERT INTO app.customers (id, name, ref) VALUES (100000, 'extra', 1);
                     COMMIT`);
      const fail = await run(['verify', ...args]);
      expect(fail.code, fail.stderr).toBe(1);
      expect(fail.stdout).toMatch(/^FAIL: 1 of 3 tables on the target equal the source/);
      expect(fail.stdout).toContain(
        'app.orders: 200 rows on the source, 199 on the target; 1 missing, 0 extra, 1 different',
      );
      expect(fail.stdout).toContain('keys (id): (7) different; (9) missing');
      expect(fail.stdout).toContain('keys (id): (100000) extra');
      expect(fail.stdout).toContain('do not cut over');
      const json = await run(['verify', ...args, '--json', '--buckets', '16']);
      expect(json.code).toBe(1);
      const answer = JSON.parse(json.stdout) as {
        pass: boolean;
        when: string;
        buckets: number;
        tables: { table: string; differingKeys: string | null; missing: number; extra: number; changed: number }[];
      };
      expect(answer).toMatchObject({ pass: false, when: 'before-cutover', buckets: 16 });
      expect(answer.tables.find((x) => x.table === 'app.orders')).toMatchObject({
        differingKeys: '(7) different; (9) missing',
        missing: 1,
        changed: 1,
        extra: 0,
      });
      expect(answer.tables.find((x) => x.table === 'app.customers')?.differingKeys).toBe('(100000) extra');
      expect(answer.tables.find((x) => x.table === 'app.order_items')?.differingKeys).toBeNull();

      // Writes on the source to the same keys are logged; the next round rewrites them on the target.
      await s.query(`UPDATE app.orders SET note = note WHERE id IN (7, 9);
                     INSERT INTO app.customers (id, name) VALUES (100000, 'gone again');
                     DELETE FROM app.customers WHERE id = 100000`);
      expect((await run(['verify', ...args])).code).toBe(0);

      const cutover = await run(['run', ...args, '--until', 'cutover']);
      expect(cutover.code, cutover.stderr).toBe(0);
      const after = await run(['verify', ...args]);
      expect(after.code, after.stderr + after.stdout).toBe(0);
      expect(after.stdout).toMatch(/^PASS: 3 of 3 tables .* against the fenced source$/m);

      // The target is live: a write there differs from the fenced source, and verify says why that may be.
      await t.query(`UPDATE app.customers SET name = 'written on the target' WHERE id = 5`);
      const live = await run(['verify', ...args]);
      expect(live.code).toBe(1);
      expect(live.stdout).toContain('keys (id): (5) different');
      expect(live.stdout).toContain('rows written on the target since the cut-over count as differences');
      await t.query(`UPDATE app.customers SET name = 'customer 5' WHERE id = 5`);

      const cleanup = await run(['run', ...args, '--until', 'cleanup']);
      expect(cleanup.code, cleanup.stderr).toBe(0);
      const done = await run(['verify', ...args]);
      expect(done.code, done.stderr + done.stdout).toBe(0);
    } finally {
      await s.end();
      await t.end();
    }
  }, 120_000);
});
