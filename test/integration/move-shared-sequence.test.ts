/**
 * A sequence of the group that a table outside it starts drawing from after the plan (issue 15), source 14 ->
 * target 17, runner. plan refuses such a sharing (SEQUENCE_SHARED) unless --split-shared-sequences: after the
 * cut-over the table left on the source draws from the source's copy and the group from the target's, so a value
 * can appear in both clusters. A default added after the plan went unseen: the move cut over with
 * app.other.ref drawing from the source's app.shared_ref_seq. Now every round (and the cut-over's) refuses with
 * the DDL message while such a default exists; dropped again, the move goes on.
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

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-shared-seq-'));
}, 120_000);

afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('a sequence of the group shared after the plan', () => {
  it('a column default outside the group drawing from it stops the move until it is dropped', async () => {
    const m = await newStagedMove(servers, root, 'ss', {}, undefined, { customers: 30, orders: 100 });
    pairs.push(m.pair);
    const built = await m.cli('run', '--until', 'build');
    expect(built.code, built.stderr).toBe(0);
    await m.src(
      `CREATE TABLE app.other (id integer PRIMARY KEY, ref bigint NOT NULL DEFAULT nextval('app.shared_ref_seq'))`,
    );
    const refused = await m.cli('run');
    expect({ code: refused.code, stderr: refused.stderr }).toEqual({
      code: 2,
      stderr: expect.stringMatching(/changed on the source during the move \(DDL\)/),
    });
    await m.src(`ALTER TABLE app.other ALTER COLUMN ref DROP DEFAULT`);
    const cut = await m.cli('run');
    expect(cut.code, cut.stderr).toBe(0);
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
  }, 60_000);
});
