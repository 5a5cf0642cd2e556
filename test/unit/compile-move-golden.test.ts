/**
 * Golden files of the move compiler (issue 15): fixtures/compile/<case>/move-input.json is what
 * gatherMove read from a real 14 -> 17 pair (environment facts fixed); expected/ holds every file
 * of the plan. `npm run goldens:update` rewrites them; review the diff like code.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileMove } from '../../src/compile/move/compile-move.js';
import type { MoveInput } from '../../src/compile/move/context.js';
import { moveStagesFor } from '../../src/compile/move/stages.js';
import { byteLength } from '../../src/model/quote.js';
import { loadMoveTemplates } from '../../src/planning/plan-move.js';
import { FIXTURES } from '../helpers/compile-fixtures.js';

const UPDATE = process.env['UPDATE_GOLDENS'] === '1';
const templates = loadMoveTemplates();
const moveCases = readdirSync(FIXTURES)
  .filter((d) => existsSync(join(FIXTURES, d, 'move-input.json')))
  .sort();
const load = (name: string): MoveInput =>
  JSON.parse(readFileSync(join(FIXTURES, name, 'move-input.json'), 'utf8')) as MoveInput;

describe('move compile goldens', () => {
  it('has a move case', () => expect(moveCases).toContain('move-group'));

  describe.each(moveCases)('%s', (name) => {
    const input = load(name);
    const plan = compileMove(input, templates, '0.1.0');
    const expectedDir = join(FIXTURES, name, 'expected');

    it('matches the golden files byte for byte', () => {
      const files = new Map([...plan.files, ['plan.json', JSON.stringify(plan.manifest, null, 2) + '\n']]);
      if (UPDATE) {
        mkdirSync(expectedDir, { recursive: true });
        for (const f of readdirSync(expectedDir)) if (!files.has(f)) writeFileSync(join(expectedDir, f), '');
        for (const [f, text] of files) writeFileSync(join(expectedDir, f), text);
      }
      expect(readdirSync(expectedDir).sort()).toEqual([...files.keys()].sort());
      for (const [f, text] of files) expect(text, `${name}/${f}`).toBe(readFileSync(join(expectedDir, f), 'utf8'));
    });

    it("is deterministic, lists every stage with its side and includes that side's binding first", () => {
      expect(compileMove(input, templates, '0.1.0').manifest.planHash).toBe(plan.manifest.planHash);
      expect(plan.manifest.stages.map((s) => [s.file, s.side])).toEqual(
        moveStagesFor(input.options).map((s) => [s.file, s.side]),
      );
      for (const s of plan.manifest.stages) {
        const text = plan.files.get(s.file)!;
        const firstStatement = text.split('\n').find((l) => l !== '' && !l.startsWith('--'));
        expect(firstStatement, s.file).toBe(`\\ir binding.${s.side}.sql`);
      }
    });

    it('names every generated object in at most 63 bytes and writes no password', () => {
      for (const text of plan.files.values()) {
        for (const m of text.matchAll(/"((?:[^"]|"")+)"/g))
          expect(byteLength(m[1]!.replaceAll('""', '"'))).toBeLessThanOrEqual(63);
        expect(text).not.toMatch(/password '/i);
      }
    });
  });
});
