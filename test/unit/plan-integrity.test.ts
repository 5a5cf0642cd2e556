import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadTemplates } from '../../src/planning/templates.js';
import { compile, sha256, type PlanManifest } from '../../src/compile/compile.js';
import { resolveOptions } from '../../src/compile/options.js';
import { UserError } from '../../src/model/errors.js';
import type { EnvironmentFacts, TableModel } from '../../src/model/types.js';
import { checkPlanIntegrity, type LoadedPlan } from '../../src/run/plan-check.js';

const ORDERS = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'compile', 'orders');
const model = JSON.parse(readFileSync(join(ORDERS, 'model.json'), 'utf8')) as TableModel;
const facts = JSON.parse(readFileSync(join(ORDERS, 'facts.json'), 'utf8')) as EnvironmentFacts;

/** A fresh plan each time, as if read from its folder, so one test's edit cannot leak into another. */
function loadedPlan(): LoadedPlan {
  const plan = compile({ model, facts, options: resolveOptions({}), templates: loadTemplates(), toolVersion: '0.1.0' });
  const manifest = JSON.parse(JSON.stringify(plan.manifest)) as PlanManifest;
  return { dir: 'x', manifest, files: new Map(plan.files) };
}

function codeOf(action: () => void): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return (error as UserError).code;
  }
  throw new Error('expected checkPlanIntegrity to throw');
}

/** Changes one byte (one ASCII character) in the middle of the text. */
function flipOneByte(text: string): string {
  const i = Math.floor(text.length / 2);
  const c = text.charCodeAt(i);
  expect(c).toBeLessThan(128);
  return text.slice(0, i) + String.fromCharCode(c === 0x20 ? 0x21 : c ^ 0x01) + text.slice(i + 1);
}

describe('checkPlanIntegrity', () => {
  it('accepts an untouched plan, with and without the right expected hash', () => {
    const plan = loadedPlan();
    expect(plan.manifest.stages.length).toBeGreaterThan(0);
    expect(() => checkPlanIntegrity(plan)).not.toThrow();
    expect(() => checkPlanIntegrity(plan, plan.manifest.planHash)).not.toThrow();
  });

  it('refuses a script with one byte changed (PLAN_TAMPERED), whichever stage it is', () => {
    for (const stage of loadedPlan().manifest.stages) {
      const plan = loadedPlan();
      const files = new Map(plan.files);
      files.set(stage.file, flipOneByte(files.get(stage.file)!));
      expect(
        codeOf(() => checkPlanIntegrity({ ...plan, files })),
        stage.file,
      ).toBe('PLAN_TAMPERED');
    }
  });

  it('refuses a plan whose script is missing (PLAN_TAMPERED)', () => {
    const plan = loadedPlan();
    const files = new Map(plan.files);
    files.delete(plan.manifest.stages[0]!.file);
    expect(codeOf(() => checkPlanIntegrity({ ...plan, files }))).toBe('PLAN_TAMPERED');
  });

  it('refuses an edited README (PLAN_TAMPERED)', () => {
    const plan = loadedPlan();
    const files = new Map(plan.files);
    files.set('README.md', flipOneByte(files.get('README.md')!));
    expect(codeOf(() => checkPlanIntegrity({ ...plan, files }))).toBe('PLAN_TAMPERED');
  });

  it('refuses a plan that is not the approved one (PLAN_HASH_MISMATCH)', () => {
    const plan = loadedPlan();
    const wrong = plan.manifest.planHash.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    expect(wrong).not.toBe(plan.manifest.planHash);
    expect(codeOf(() => checkPlanIntegrity(plan, wrong))).toBe('PLAN_HASH_MISMATCH');
  });

  it('refuses edited options in plan.json (PLAN_TAMPERED)', () => {
    const plan = loadedPlan();
    const manifest: PlanManifest = {
      ...plan.manifest,
      options: { ...plan.manifest.options, lockTimeoutMs: plan.manifest.options.lockTimeoutMs + 1 },
    };
    expect(codeOf(() => checkPlanIntegrity({ ...plan, manifest }))).toBe('PLAN_TAMPERED');
    expect(codeOf(() => checkPlanIntegrity({ ...plan, manifest }, plan.manifest.planHash))).toBe('PLAN_TAMPERED');
  });

  it('refuses a script edit even when the stage hash in plan.json is updated to match (PLAN_TAMPERED)', () => {
    const plan = loadedPlan();
    const stage = plan.manifest.stages[0]!;
    const files = new Map(plan.files);
    const edited = flipOneByte(files.get(stage.file)!);
    files.set(stage.file, edited);
    const manifest = JSON.parse(JSON.stringify(plan.manifest)) as { stages: { sha256: string }[] } & PlanManifest;
    manifest.stages[0]!.sha256 = sha256(edited);
    expect(codeOf(() => checkPlanIntegrity({ dir: 'x', manifest, files }))).toBe('PLAN_TAMPERED');
  });
});
