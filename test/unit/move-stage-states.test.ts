import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { moveStageStates } from '../../src/compile/move/stage-literals.js';
import { MOVE_SOURCE_STATES, MOVE_TARGET_STATES, moveStage } from '../../src/compile/move/stages.js';
import { templatesDir } from '../../src/planning/templates.js';

const MOVE = join(templatesDir(), 'move');
const files = (dir: string): string[] =>
  readdirSync(dir)
    .sort()
    .flatMap((f) =>
      statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith('.hbs') ? [join(dir, f)] : [],
    );

describe('the move templates render their states from the stage machine (src/compile/move/stages.ts, issue 12)', () => {
  it('no move template names a state as an SQL literal', () => {
    const states = [...new Set<string>([...MOVE_SOURCE_STATES, ...MOVE_TARGET_STATES])];
    const found: string[] = [];
    for (const f of files(MOVE)) {
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          for (const s of states)
            if (line.includes(`'${s}'`)) found.push(`templates/move/${relative(MOVE, f)}:${i + 1}: '${s}'`);
        });
    }
    expect(found).toEqual([]);
  });

  it('renders what each stage checks and records from its rule', () => {
    const build = moveStageStates(moveStage('04-build.target.sql'));
    expect([build.recordsLiteral, build.fromListLiteral, build.startLiteral]).toEqual([
      "'build'",
      "'backfill', 'build'",
      "'backfill'",
    ]);
    const abort = moveStageStates(moveStage('90-abort.source.sql'));
    expect(abort.refusedListLiteral).toBe("'cutover-started', 'cutover', 'reverting', 'reverted'");
    const cutover = moveStageStates(moveStage('07-cutover.target.sql'));
    expect([cutover.tells['started']?.fromListLiteral, cutover.tells['live']?.fromLiteral]).toEqual([
      "'fenced', 'cutover-started'",
      "'cutover-started'",
    ]);
  });

  it('fails the compile when a template reads one state where the rule has several', () => {
    const build = moveStageStates(moveStage('04-build.target.sql'));
    expect(() => build.fromLiteral).toThrow(/04-build\.target\.sql from is 2 states, not one/);
  });
});
