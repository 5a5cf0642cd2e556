/**
 * Prepared transactions around a move's locks (issue 15), source 14 -> target 17, psql. A transaction prepared
 * after writing to the group keeps its locks until COMMIT PREPARED, so neither 01-setup.source.sql nor the fence
 * can pass it: each gives up after its bounded attempts and changes nothing, the cut-over refuses an unfenced
 * source, and once the transaction commits (here only after the fence gave up) the fence goes through and its
 * write arrives. So no prepared write can commit after the fence or inside the cut-over. Nothing here failed; it
 * pins the argument that the fence's lock waits out every writer, prepared ones included.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareMoveWithTwins } from '../helpers/move-fixture.js';
import { MOVE_SOURCE_MISSING, startMoveServers, type MovePair, type MoveServers } from '../helpers/move-servers.js';
import { newStagedMove } from '../helpers/move-stage-runner.js';

let servers: MoveServers;
let root: string;
const pairs: MovePair[] = [];
const prepared: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-prepared-'));
}, 120_000);

afterAll(async () => {
  for (const end of prepared) await end().catch(() => undefined);
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

const NO_LOCK = /shadowpack: could not lock app\.customers, app\.order_items, app\.orders in 2 attempts/;

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('prepared transactions and the move', () => {
  it('a prepared write holds off setup and the fence; committed, it arrives', async () => {
    const m = await newStagedMove(servers, root, 'pt', { lockAttempts: 2 }, undefined, { customers: 30, orders: 100 });
    pairs.push(m.pair);
    const prepare = async (gid: string, qty: number) => {
      await m.src(`BEGIN; UPDATE app.orders SET qty = ${qty} WHERE id = 9; UPDATE twin.orders SET qty = ${qty} WHERE id = 9;
                   PREPARE TRANSACTION '${gid}'`);
      prepared.push(() => m.src(`ROLLBACK PREPARED '${gid}'`));
    };
    await m.psql('00-preflight.source.sql');
    await m.psql('00-preflight.target.sql');
    await prepare('pt_before_setup', 901);
    expect(await m.outcome('01-setup.source.sql')).toMatch(NO_LOCK);
    const [none] = await m.src(`SELECT to_regnamespace('shadowpack') IS NULL AS none`);
    expect(none!.none).toBe(true);
    await m.src(`COMMIT PREPARED 'pt_before_setup'`);
    for (const f of [
      '01-setup.source.sql',
      '02-setup.target.sql',
      '03-backfill.target.sql',
      '04-build.target.sql',
      '05-catchup.target.sql',
    ])
      await m.psql(f);
    await prepare('pt_before_fence', 902);
    expect(await m.outcome('06-fence.source.sql')).toMatch(NO_LOCK);
    expect(await m.outcome('07-cutover.target.sql')).toMatch(/the source is not fenced/);
    await m.src(`COMMIT PREPARED 'pt_before_fence'`);
    await m.psql('06-fence.source.sql');
    await m.psql('07-cutover.target.sql');
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
    const [row] = await m.tgt(`SELECT qty FROM app.orders WHERE id = 9`);
    expect(row!.qty).toBe(902);
  }, 60_000);
});
