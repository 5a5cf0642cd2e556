/**
 * A composite column type altered on the source mid-move (issue 15), source 14 -> target 17, with psql and the
 * runner. The target's copy of the type is made from the plan, and a round rewrites only the rows a write touched,
 * so before the fix ALTER TYPE app.addr ADD/DROP/RENAME ATTRIBUTE after the backfill went through the catch-up and
 * the cut-over silently: the target kept `street text, zip integer` while the source had
 * `street text, zip integer, floor integer` (or `street text`, or `… postcode integer`), and with ADD and DROP 48
 * of 60 customers differed from their twins. The tables' signatures name only the type (as with the enum
 * labels, checked since the enum rename of move-interleavings); now setup records the types' attributes and every
 * round stops with the DDL message; abort takes the move back.
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
  root = mkdtempSync(join(tmpdir(), 'sp-move-type-ddl-'));
}, 120_000);

afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('a column type altered on the source mid-move', () => {
  it.each([
    ['psql', 'ALTER TYPE app.addr ADD ATTRIBUTE floor int'],
    ['runner', 'ALTER TYPE app.addr DROP ATTRIBUTE zip'],
  ] as const)(
    '%s: %s after the backfill stops the catch-up with the DDL message; abort goes through',
    async (executor, ddl) => {
      const m = await newStagedMove(servers, root, `td_${executor}`);
      pairs.push(m.pair);
      const until = async (stage: string, files: string[]): Promise<string> => {
        if (executor === 'psql') {
          for (const f of files) {
            const out = await m.outcome(f);
            if (out !== 'ok') return out;
          }
          return 'ok';
        }
        const out = await m.cli('run', '--until', stage);
        return out.code === 0 ? 'ok' : out.stderr;
      };
      const built = await until('build', [
        '00-preflight.source.sql',
        '00-preflight.target.sql',
        '01-setup.source.sql',
        '02-setup.target.sql',
        '03-backfill.target.sql',
        '04-build.target.sql',
      ]);
      expect(built).toBe('ok');
      await m.src(ddl);
      let stopped = await until('catchup', ['05-catchup.target.sql']);
      if (stopped === 'ok') {
        stopped = await until('cutover', ['06-fence.source.sql', '07-cutover.target.sql']);
        if (stopped === 'ok')
          stopped = `cut over: ${JSON.stringify((await compareMoveWithTwins(m.pair.source.url, m.pair.target.url)).tables.customers).slice(0, 200)}`;
      }
      expect(stopped).toMatch(/changed on the source during the move \(DDL\)/);
      if (executor === 'psql') {
        await m.psql('90-abort.target.sql');
        await m.psql('90-abort.source.sql');
      } else {
        const aborted = await m.cli('run', '--stage', 'abort');
        expect(aborted.code, aborted.stderr).toBe(0);
      }
      const [left] = await m.src(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'shadowpack'`);
      const [leftTarget] = await m.tgt(
        `SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'app'::regnamespace`,
      );
      expect([left!.n, leftTarget!.n]).toEqual([0, 0]);
    },
    60_000,
  );
});
