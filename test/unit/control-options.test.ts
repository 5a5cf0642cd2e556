import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadTemplates } from '../../src/planning/templates.js';
import { diffPlans } from '../../src/planning/diff-plans.js';
import { controlChange } from '../../src/cli/commands/control.js';
import { compile, planHashOf, type PlanManifest } from '../../src/compile/compile.js';
import { CONTROL_KEYS } from '../../src/compile/control-options.js';
import { resolveOptions, withOptionDefaults } from '../../src/compile/options.js';
import { UserError } from '../../src/model/errors.js';
import type { EnvironmentFacts, TableModel } from '../../src/model/types.js';
import { checkPlanIntegrity } from '../../src/run/plan-check.js';

const ORDERS = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'compile', 'orders');
const model = JSON.parse(readFileSync(join(ORDERS, 'model.json'), 'utf8')) as TableModel;
const facts = JSON.parse(readFileSync(join(ORDERS, 'facts.json'), 'utf8')) as EnvironmentFacts;

function codeAndMessage(action: () => unknown): string {
  try {
    action();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return `${(e as UserError).code}: ${(e as Error).message}`;
  }
  throw new Error('expected a UserError');
}

describe('control options', () => {
  it('default to no throttling and no held swap', () => {
    const o = resolveOptions({});
    expect(o).toMatchObject({
      maxRowsPerSecond: 0,
      maxReplicaLagMs: 0,
      throttleProbe: null,
      throttleThreshold: null,
      holdSwap: false,
    });
  });

  it('need the probe and its threshold together', () => {
    expect(codeAndMessage(() => resolveOptions({ throttleProbe: 'SELECT 1' }))).toMatch(
      /^BAD_OPTION: give --throttle-probe and --throttle-threshold together/,
    );
    expect(codeAndMessage(() => resolveOptions({ throttleThreshold: 3 }))).toMatch(
      /^BAD_OPTION: give --throttle-probe and --throttle-threshold together/,
    );
    expect(resolveOptions({ throttleProbe: ' SELECT 1; ', throttleThreshold: '0.5' })).toMatchObject({
      throttleProbe: 'SELECT 1',
      throttleThreshold: 0.5,
    });
    // The plan's dollar tag is chosen so that it does not occur in the probe.
    expect(resolveOptions({ throttleProbe: 'SELECT $sp$1$sp$::int', throttleThreshold: 1 })).toMatchObject({
      throttleProbe: 'SELECT $sp$1$sp$::int',
    });
  });

  it('refuse bad values with the option name', () => {
    expect(codeAndMessage(() => resolveOptions({ maxRowsPerSecond: -1 }))).toMatch(
      /^BAD_OPTION: --max-rows-per-second must be a whole number/,
    );
    expect(codeAndMessage(() => resolveOptions({ maxReplicaLagMs: Number.NaN }))).toMatch(/--max-replica-lag-ms/);
    expect(codeAndMessage(() => resolveOptions({ throttleProbe: 'SELECT 1', throttleThreshold: 'lots' }))).toMatch(
      /--throttle-threshold must be a number/,
    );
    expect(codeAndMessage(() => resolveOptions({ holdSwap: 'yes' }))).toMatch(/--hold-swap must be true or false/);
  });

  it('refuse --hold-wait-seconds without --hold-swap (newcomer review finding 32)', () => {
    expect(codeAndMessage(() => resolveOptions({ holdWaitSeconds: 30 }))).toBe(
      'BAD_OPTION: --hold-wait-seconds bounds the wait for a release that only --hold-swap asks for: add --hold-swap, or drop --hold-wait-seconds',
    );
    expect(codeAndMessage(() => resolveOptions({ holdSwap: false, holdWaitSeconds: 30 }))).toMatch(/add --hold-swap/);
    expect(resolveOptions({ holdSwap: true, holdWaitSeconds: 30 })).toMatchObject({
      holdSwap: true,
      holdWaitSeconds: 30,
    });
  });
});

describe('a plan.json written before the control options existed', () => {
  const plan = compile({ model, facts, options: resolveOptions({}), templates: loadTemplates(), toolVersion: '0.1.0' });
  const options: Record<string, unknown> = { ...plan.manifest.options };
  for (const k of CONTROL_KEYS) delete options[k];
  const { planHash: _drop, ...rest } = { ...plan.manifest, options } as unknown as PlanManifest;
  const old: PlanManifest = { ...rest, planHash: planHashOf(rest) };

  it('still passes the integrity check (nothing is added to it on load)', () => {
    expect(Object.keys(old.options)).not.toContain('holdSwap');
    expect(() => checkPlanIntegrity({ dir: 'old', manifest: old, files: plan.files })).not.toThrow();
  });

  it('compiles again with the defaults (strict templates see every key) and diffs as identical', () => {
    const again = compile({
      model,
      facts,
      options: withOptionDefaults(old.options),
      templates: loadTemplates(),
      toolVersion: '0.1.0',
    });
    expect([...again.files.entries()]).toEqual([...plan.files.entries()]);
    const r = diffPlans(
      { label: 'old', manifest: old, files: plan.files },
      { label: 'new', manifest: again.manifest, files: again.files },
    );
    expect(r).toMatchObject({ identical: true, options: [] });
  });
});

describe('shadowpack control arguments', () => {
  it('turn into exactly the requested change', () => {
    expect(controlChange({ plan: 'p', pause: true })).toEqual({ paused: true });
    expect(controlChange({ plan: 'p', resume: true, batchPages: 7 })).toEqual({ paused: false, batchPages: 7 });
    expect(controlChange({ plan: 'p', maxRowsPerSecond: 0, releaseSwap: true })).toEqual({
      maxRowsPerSecond: 0,
      swapReleased: true,
    });
  });

  it('refuse contradictions and bad numbers before connecting', () => {
    expect(codeAndMessage(() => controlChange({ plan: 'p', pause: true, resume: true }))).toMatch(
      /^BAD_ARGUMENT: give --pause or --resume, not both/,
    );
    expect(codeAndMessage(() => controlChange({ plan: 'p', batchPages: 0 }))).toMatch(
      /--batch-pages must be a whole number from 1/,
    );
    expect(codeAndMessage(() => controlChange({ plan: 'p', maxRowsPerSecond: 1.5 }))).toMatch(/--max-rows-per-second/);
  });
});
