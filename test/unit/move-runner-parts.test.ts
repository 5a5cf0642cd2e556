import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkMovePlanIntegrity, isMovePlanDir, readMovePlanDir } from '../../src/run/move-plan.js';
import { writeToyMovePlan } from '../helpers/move-toy-plan.js';
import { moveMetaCommands } from '../../src/run/move-meta.js';
import {
  cleanupEnds,
  nextMoveStage,
  nextRevertStage,
  revertMayBeGivenUp,
  type MoveStates,
} from '../../src/run/move-state.js';

const SETUP = `BEGIN;
\\getenv sp_pw SHADOWPACK_FDW_PASSWORD
CREATE TEMP TABLE pw (v text) ON COMMIT DROP;
\\if :{?sp_pw}
\\copy pg_temp.pw FROM PROGRAM 'printenv SHADOWPACK_FDW_PASSWORD' WITH (FORMAT csv)
\\endif
SELECT 1;
COMMIT;
`;

describe('the psql meta-commands of a move script, as the runner runs them', () => {
  it('blanks the lines (same length) and sends the value as COPY data only when the variable is set', () => {
    const set = moveMetaCommands('02-setup.target.sql', SETUP, { SHADOWPACK_FDW_PASSWORD: "it's secret" });
    expect(set.text.length).toBe(SETUP.length);
    expect(set.text).not.toContain('getenv');
    expect(set.text).not.toContain('printenv');
    expect(set.text.split('\n').map((l) => l.trim())).toEqual([
      'BEGIN;',
      '',
      'CREATE TEMP TABLE pw (v text) ON COMMIT DROP;',
      '',
      '',
      '',
      'SELECT 1;',
      'COMMIT;',
      '',
    ]);
    expect(set.injections).toEqual([
      {
        offset: SETUP.indexOf('\\copy'),
        copy: 'COPY pg_temp.pw FROM STDIN WITH (FORMAT csv)',
        data: "it's secret\n",
      },
    ]);
    expect(moveMetaCommands('f', SETUP, {}).injections).toEqual([]);
  });

  it('refuses what psql and the runner would run differently', () => {
    expect(() => moveMetaCommands('f', SETUP.replace('printenv SHADOWPACK_FDW_PASSWORD', 'printenv HOME'), {})).toThrow(
      /only "\\copy schema.table FROM PROGRAM 'printenv SHADOWPACK_FDW_PASSWORD' …" may stand inside/,
    );
    expect(() => moveMetaCommands('f', SETUP.replace('\\copy', 'SELECT 1; --'), {})).toThrow(/may stand inside/);
    expect(() => moveMetaCommands('f', '\\if :{?x}\n\\endif\n', {})).toThrow(/no \\getenv before it sets/);
    expect(() => moveMetaCommands('f', '\\getenv a B\n\\if :{?a}', {})).toThrow(/\\if without \\endif/);
    expect(() => moveMetaCommands('f', '\\else\n', {})).toThrow(/meta-command the runner does not know/);
  });
});

const at = (source: string | null, target: string | null): MoveStates => ({
  source: source === null ? null : { stage: source, row: {}, backfill: [] },
  target: target === null ? null : { stage: target, row: {}, backfill: [] },
});
const next = (source: string | null, target: string | null): string => {
  const n = nextMoveStage(at(source, target));
  return n.kind === 'start' ? 'start' : `${n.rule.stage}.${n.rule.side}`;
};

describe('the next stage of a move, from both sides', () => {
  it('walks the forward path', () => {
    expect(next(null, null)).toBe('start');
    expect(next('setup', null)).toBe('setup.target');
    expect(next('setup', 'setup')).toBe('backfill.target');
    expect(next('setup', 'backfill')).toBe('build.target');
    expect(next('setup', 'build')).toBe('catchup.target');
    expect(next('ready-for-fence', 'catchup')).toBe('fence.source');
    expect(next('fenced', 'catchup')).toBe('cutover.target');
    expect(next('cutover', 'cutover')).toBe('cleanup.target');
    expect(next('cutover', null)).toBe('cleanup.source');
  });

  it('resumes a stage whose cross-side step did not commit', () => {
    // Catch-up recorded on the target, the source not yet marked ready for the fence.
    expect(next('setup', 'catchup')).toBe('catchup.target');
    // Cut-over started on the source, the target transaction lost.
    expect(next('cutover-started', 'catchup')).toBe('cutover.target');
    // The target is live, the source not yet told.
    expect(next('cutover-started', 'cutover')).toBe('cleanup.target');
  });

  it('finishes an interrupted abort, target first, and never goes forward from it', () => {
    expect(next('setup', 'aborting')).toBe('abort.target');
    expect(next('target-aborted', 'aborting')).toBe('abort.target');
    expect(next('target-aborted', null)).toBe('abort.source');
    expect(next('aborting', null)).toBe('abort.source');
  });

  it('names the revert file a revert under way needs next, and the cleanups once it is done (--reversible)', () => {
    const file = (source: string | null, target: string | null): string | null =>
      nextRevertStage(at(source, target))?.file ?? null;
    expect(file('cutover', 'cutover')).toBe('91-revert.source.sql');
    expect(file('cutover', 'reverting')).toBe('91-revert.source.sql');
    expect(file('reverting', 'reverting')).toBe('92-revert.target.sql');
    expect(file('reverting', 'revert-fenced')).toBe('93-revert.source.sql');
    // 93 made the source live but did not tell the target: it runs again.
    expect(file('reverted', 'revert-fenced')).toBe('93-revert.source.sql');
    expect(file('reverted', 'reverted')).toBeNull();
    expect(file('fenced', 'catchup')).toBeNull();
    // A plain run names the revert's next file while one is under way, and the cleanups after it.
    expect(next('cutover', 'reverting')).toBe('revert.source');
    expect(next('reverting', 'revert-fenced')).toBe('revert.source');
    expect(next('reverting', 'reverting')).toBe('revert.target');
    expect(next('reverted', 'reverted')).toBe('cleanup.target');
    expect(next('reverted', null)).toBe('cleanup.source');
  });

  it('gives a revert up (--stage cleanup) only while its source is not live, as 08-cleanup.target.sql does', () => {
    const may = (source: string | null, target: string | null) => revertMayBeGivenUp(at(source, target));
    expect(may('cutover', 'reverting')).toBe(true);
    expect(may('reverting', 'reverting')).toBe(true);
    expect(may('reverting', 'revert-fenced')).toBe(true);
    // An earlier give-up set the source back to 'cutover' and did not commit on the target.
    expect(may('cutover', 'revert-fenced')).toBe(true);
    // The target's cleanup gave it up and removed its run; the source's is left.
    expect(may('reverting', null)).toBe(true);
    // 93 made the source live (its word to the target lost, or told): nothing to give up.
    expect(may('reverted', 'revert-fenced')).toBe(false);
    expect(may('reverted', 'reverted')).toBe(false);
    // No revert under way: cleanup is the ordinary end of the move.
    expect(may('cutover', 'cutover')).toBe(false);
    // What a cleanup from there ends, as the runner's last line says it.
    expect(cleanupEnds(at('cutover', 'cutover'))).toBe('moved');
    expect(cleanupEnds(at('cutover', null))).toBe('moved');
    expect(cleanupEnds(at('reverting', 'revert-fenced'))).toBe('revert-given-up');
    expect(cleanupEnds(at('reverting', null))).toBe('revert-given-up');
    expect(cleanupEnds(at('reverted', 'reverted'))).toBe('reverted');
    expect(cleanupEnds(at('reverted', null))).toBe('reverted');
  });

  it('refuses states no stage goes on from', () => {
    expect(() => next(null, 'catchup')).toThrow(
      /the source has no run of this move, but the target is at "catchup".*--stage abort/,
    );
    expect(() => next('ready-for-fence', null)).toThrow(
      /the target has no run of this move, but the source is at "ready-for-fence"/,
    );
  });
});

describe('a move plan is checked before anything runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sp-move-check-'));
  const fakePair = {
    source: { url: 'postgres://u:p@127.0.0.1:5/src', name: 'src', drop: async () => undefined },
    target: { url: 'postgres://u:p@127.0.0.1:6/tgt', name: 'tgt', drop: async () => undefined },
    sourceAddress: { host: '127.0.0.1', port: '5', dbname: 'src' },
    drop: async () => undefined,
  };
  const manifest = writeToyMovePlan(dir, fakePair);

  it('passes as written, and with the approved hash', () => {
    expect(() => checkMovePlanIntegrity(readMovePlanDir(dir), manifest.planHash)).not.toThrow();
    expect(isMovePlanDir(dir)).toBe(true);
  });

  it('refuses an edited stage file or binding, an edited plan.json, another approved hash', () => {
    const edited = (file: string, text: string) => {
      const plan = readMovePlanDir(dir);
      return { ...plan, files: new Map([...plan.files, [file, text]]) };
    };
    expect(() => checkMovePlanIntegrity(edited('06-fence.source.sql', 'SELECT 1;\n'))).toThrow(
      /06-fence\.source\.sql differs from the reviewed plan/,
    );
    expect(() => checkMovePlanIntegrity(edited('binding.target.sql', 'SELECT 1;\n'))).toThrow(
      /binding\.target\.sql differs from the reviewed plan/,
    );
    const plan = readMovePlanDir(dir);
    const retargeted = {
      ...plan,
      manifest: { ...plan.manifest, target: { ...plan.manifest.target, database: 'elsewhere' } },
    };
    expect(() => checkMovePlanIntegrity(retargeted)).toThrow(/plan\.json was edited after it was made/);
    expect(() => checkMovePlanIntegrity(plan, 'other')).toThrow(/not the approved other/);
  });

  it('refuses a stage listed on the other side than the stage machine gives it', () => {
    const plan = readMovePlanDir(dir);
    const stages = plan.manifest.stages.map((s) =>
      s.file === '06-fence.source.sql' ? { ...s, side: 'target' as const } : s,
    );
    expect(() => checkMovePlanIntegrity({ ...plan, manifest: { ...plan.manifest, stages } })).toThrow(
      /lists 06-fence\.source\.sql as stage fence on the target/,
    );
  });
});
