/**
 * The fence turned off on the source after 06-fence (issue 15), source 14 -> target 17, with psql and the runner:
 * a fence trigger disabled (or enabled for replica sessions only) lets writes through. The capture still logs
 * them, so those committed before the cut-over's snapshot arrive; but a cut-over over a fence not in force leaves
 * every later write on the source only. Before the fix the cut-over went through with the fence disabled and a
 * write committed after it was on the source only (orders row 7: qty 4002 there, 8 on the target). Now the
 * cut-over refuses until the fence is ENABLE ALWAYS again on every table. DISABLE TRIGGER ALL after the fence
 * turns the capture off too: the cut-over refuses with the capture message, and abort takes the move back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareMoveWithTwins } from '../helpers/move-fixture.js';
import { MOVE_SOURCE_MISSING, startMoveServers, type MovePair, type MoveServers } from '../helpers/move-servers.js';
import { newStagedMove, type StagedMove } from '../helpers/move-stage-runner.js';

let servers: MoveServers;
let root: string;
const pairs: MovePair[] = [];

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-fence-'));
}, 120_000);

afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

const BEFORE_FENCE = [
  '00-preflight.source.sql',
  '00-preflight.target.sql',
  '01-setup.source.sql',
  '02-setup.target.sql',
  '03-backfill.target.sql',
  '04-build.target.sql',
  '05-catchup.target.sql',
  '06-fence.source.sql',
];

/** A move fenced with psql, or with the runner. */
async function fenced(name: string, executor: 'psql' | 'runner'): Promise<StagedMove> {
  const m = await newStagedMove(servers, root, name);
  pairs.push(m.pair);
  if (executor === 'psql') for (const f of BEFORE_FENCE) await m.psql(f);
  else {
    const out = await m.cli('run', '--until', 'fence');
    expect(out.code, out.stderr).toBe(0);
  }
  return m;
}

/** An update of orders row 7, mirrored in its twin in the same transaction. */
const write = (qty: number) =>
  `BEGIN; UPDATE app.orders SET qty = ${qty} WHERE id = 7; UPDATE twin.orders SET qty = ${qty} WHERE id = 7; COMMIT`;
const FENCE_MESSAGE = /moved to .*; writes are refused/;
const NOT_IN_FORCE =
  /the fence on app\.customers, app\.order_items, app\.orders is not in force on the source \(its trigger shadowpack_mfence_\w+ or shadowpack_mfencerow_\w+ was disabled/;

/** `how` applied to both fence triggers (per statement, and per row for apply workers), as one ALTER TABLE list. */
async function onFence(m: StagedMove, how: string): Promise<string> {
  const names = await m.src(`SELECT DISTINCT tgname AS t FROM pg_trigger WHERE tgname ~ '^shadowpack_mfence(row)?_'`);
  expect(names).toHaveLength(2);
  return names.map((r) => `${how} ${r.t as string}`).join(', ');
}

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('the fence turned off on the source', () => {
  it.each([
    ['psql', 'DISABLE TRIGGER'],
    ['runner', 'ENABLE REPLICA TRIGGER'],
  ] as const)(
    '%s: the fence changed by %s after 06-fence lets a write through; the cut-over refuses until it is ENABLE ALWAYS again, then the write arrives',
    async (executor, how) => {
      const m = await fenced(`fa_${executor}`, executor);
      await m.src(`ALTER TABLE app.orders ${await onFence(m, how)}`);
      await m.src(write(4002));
      const cutover = async () => {
        if (executor === 'psql') return m.outcome('07-cutover.target.sql');
        const out = await m.cli('run');
        return out.code === 0 ? 'ok' : out.stderr;
      };
      let refused = await cutover();
      if (refused === 'ok') {
        // Without the check: a write after the cut-over stays on the source.
        await m.src(write(4003)).catch(() => undefined);
        refused = `cut over: ${JSON.stringify((await compareMoveWithTwins(m.pair.source.url, m.pair.target.url)).tables.orders)}`;
      }
      expect(refused).toMatch(NOT_IN_FORCE);
      await m.src(`ALTER TABLE app.orders ${await onFence(m, 'ENABLE ALWAYS TRIGGER')}`);
      await expect(m.src(write(4004))).rejects.toThrow(FENCE_MESSAGE);
      // ENABLE ALWAYS: a replica-role session is refused too.
      await expect(m.src(`SET session_replication_role = replica; ${write(4005)}`)).rejects.toThrow(FENCE_MESSAGE);
      expect(await cutover()).toBe('ok');
      const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
      expect(same.equal, JSON.stringify(same)).toBe(true);
      const [row] = await m.tgt(`SELECT qty FROM app.orders WHERE id = 7`);
      expect(row!.qty).toBe(4002);
    },
    60_000,
  );

  it('psql: DISABLE TRIGGER ALL after the fence, a write, ENABLE TRIGGER ALL: the cut-over refuses (capture), abort takes the move back', async () => {
    const m = await fenced('fa_all', 'psql');
    await m.src(`ALTER TABLE app.orders DISABLE TRIGGER ALL`);
    await m.src(write(4005));
    await m.src(`ALTER TABLE app.orders ENABLE TRIGGER ALL`);
    expect(await m.outcome('07-cutover.target.sql')).toMatch(
      /writes to .* on the source may have been missed \(a capture trigger was disabled or altered during the move\)/,
    );
    await m.psql('90-abort.target.sql');
    await m.psql('90-abort.source.sql');
    const [left] = await m.src(
      `SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE 'shadowpack%' OR tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace::regnamespace::text = 'shadowpack')`,
    );
    expect(left!.n).toBe(0);
    await m.src(write(4006));
  }, 60_000);
});
