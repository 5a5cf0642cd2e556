import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTemplates } from '../../src/planning/templates.js';
import { compile, type Plan } from '../../src/compile/compile.js';
import { DEFAULT_OPTIONS, resolveOptions } from '../../src/compile/options.js';
import { UserError } from '../../src/model/errors.js';
import { noticeEvent } from '../../src/run/events.js';
import type { EnvironmentFacts, TableModel } from '../../src/model/types.js';

const FIXTURE = resolve(import.meta.dirname, '..', '..', 'fixtures', 'compile', 'orders');
const model = JSON.parse(readFileSync(join(FIXTURE, 'model.json'), 'utf8')) as TableModel;
const facts = JSON.parse(readFileSync(join(FIXTURE, 'facts.json'), 'utf8')) as EnvironmentFacts;
const templates = loadTemplates();

const build = (given: Parameters<typeof resolveOptions>[0]): Plan =>
  compile({ model, facts, options: resolveOptions(given), templates, toolVersion: '0.1.0' });

const LOCKING_FILES = ['01-setup.sql', '05-swap.sql', '06-cleanup.sql', '90-abort.sql', '91-revert.sql'];

function thrown(fn: () => unknown): UserError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error('expected a UserError');
}

describe('lock options', () => {
  it('default to a 2000 ms budget and no cancelling', () => {
    expect(DEFAULT_OPTIONS.lockBudgetMs).toBe(2000);
    expect(DEFAULT_OPTIONS.cancelBlockersAfterMs).toBe(0);
  });

  it('refuse a lock budget smaller than one lock attempt, naming both flags', () => {
    const e = thrown(() => resolveOptions({ lockTimeoutMs: 500, lockBudgetMs: 400 }));
    expect(e.code).toBe('BAD_OPTION');
    expect(e.message).toContain('--lock-budget-ms');
    expect(e.message).toContain('--lock-timeout-ms');
    // A lock timeout above the default budget needs the budget raised too.
    expect(thrown(() => resolveOptions({ lockTimeoutMs: 2500 })).code).toBe('BAD_OPTION');
    expect(resolveOptions({ lockTimeoutMs: 500, lockBudgetMs: 500 }).lockBudgetMs).toBe(500);
  });

  it('are recorded in plan.json and shown in the review summary', () => {
    const plan = build({ lockBudgetMs: 4321, cancelBlockersAfterMs: 1234 });
    expect(plan.manifest.options).toMatchObject({ lockBudgetMs: 4321, cancelBlockersAfterMs: 1234 });
    const readme = plan.files.get('README.md')!;
    expect(readme).toContain('at most 4321 ms (the lock budget)');
    expect(readme).toContain('after 1234 ms of one locking step');
    expect(readme).toContain('idle in a transaction are left alone');
    expect(build({}).files.get('README.md')).toContain('cancelling is off');
  });

  it('cancel no session unless the plan enables it, and then in every locking step; an ordinary autovacuum always (issue 13)', () => {
    const off = build({});
    const on = build({ cancelBlockersAfterMs: 1234 });
    const cancels = (text: string) => text.match(/pg_cancel_backend\(/g) ?? [];
    // The one cancel a plan always has: of the autovacuum workers found on a locked table, never an anti-wraparound one.
    const autovacuum =
      /WHERE l\.locktype = 'relation' AND l\.granted AND a\.backend_type = 'autovacuum worker'[\s\S]*?IF victim\.query LIKE '%\(to prevent wraparound\)%' THEN[\s\S]*?pg_cancel_backend\(victim\.pid\) THEN 'cancelled'/;
    for (const f of LOCKING_FILES) {
      expect(cancels(off.files.get(f)!), f).toHaveLength(1);
      expect(off.files.get(f), f).toMatch(autovacuum);
      expect(cancels(on.files.get(f)!), f).toHaveLength(2);
      expect(on.files.get(f), f).toContain("interval '1234 milliseconds'");
    }
  });

  it('report every locking step before its commit', () => {
    const plan = build({});
    for (const f of LOCKING_FILES) {
      const text = plan.files.get(f)!;
      const report = text.indexOf("RAISE NOTICE 'shadowpack:lock-report %', report;\n  IF EXISTS");
      expect(report, f).toBeGreaterThan(0);
      expect(text.indexOf('\nCOMMIT;', report), f).toBeGreaterThan(report);
      expect(text, f).toContain('ELSIF queued_ms + 200 > 2000 THEN');
    }
  });

  it('turn a lock-report notice into an event', () => {
    const json =
      '{"lock": "x", "step": "swap", "held_ms": 12, "outcome": "acquired", "skipped": 1, "attempts": 2, "cancelled": [], "queued_ms": 200, "waited_ms": 350}';
    expect(noticeEvent('swap', `shadowpack:lock-report ${json}`)).toEqual({
      type: 'lock-report',
      stage: 'swap',
      report: JSON.parse(json),
    });
  });
});
