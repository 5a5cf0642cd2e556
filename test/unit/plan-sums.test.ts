import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import { resolveOptions } from '../../src/compile/options.js';
import { loadTemplates } from '../../src/planning/templates.js';
import { writePlanDir } from '../../src/planning/plan-dir.js';
import { showCommand } from '../../src/cli/commands/show.js';
import type { EnvironmentFacts, TableModel } from '../../src/model/types.js';

const fixture = join(import.meta.dirname, '..', '..', 'fixtures', 'compile', 'orders');

function writtenPlan(): string {
  const model = JSON.parse(readFileSync(join(fixture, 'model.json'), 'utf8')) as TableModel;
  const facts = JSON.parse(readFileSync(join(fixture, 'facts.json'), 'utf8')) as EnvironmentFacts;
  const dir = mkdtempSync(join(tmpdir(), 'sp-sums-'));
  writePlanDir(
    dir,
    compile({ model, facts, options: resolveOptions({}), templates: loadTemplates(), toolVersion: '0.1.0' }),
    false,
  );
  return dir;
}

async function show(dir: string): Promise<{ out: string[]; warnings: string[] }> {
  const out: string[] = [];
  const warnings: string[] = [];
  await showCommand(
    { plan: dir },
    (l) => out.push(l),
    (l) => warnings.push(l),
  );
  return { out, warnings };
}

describe('SHA256SUMS: the plan checked with sha256sum alone', () => {
  it('lists every file of the plan but itself, and passes `sha256sum -c` on a fresh plan', async () => {
    const dir = writtenPlan();
    const listed = readFileSync(join(dir, 'SHA256SUMS'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('  ')[1]);
    expect(listed).toEqual(
      readdirSync(dir)
        .filter((f) => f !== 'SHA256SUMS')
        .sort(),
    );
    expect(listed).toContain('plan.json');
    const r = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const { out, warnings } = await show(dir);
    expect(warnings).toEqual([]);
    const planHash = (JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { planHash: string }).planHash;
    // The hash to approve is on the first screen: the header, printed from plan.json, opens the summary.
    expect(out).toHaveLength(1);
    expect(out[0]!.split('\n').slice(0, 5)).toEqual([
      '# shadowpack plan: rebuild public.orders',
      '',
      '| | |',
      '|---|---|',
      `| plan hash | \`${planHash}\` — approve this one; \`run --expect-hash\` refuses any other |`,
    ]);
    expect(out[0]).toBe(readFileSync(join(dir, 'README.md'), 'utf8'));
  });

  it('fails `sha256sum -c` on an edited plan, and show warns about it', async () => {
    const dir = writtenPlan();
    appendFileSync(join(dir, 'README.md'), '\napproved by bob\n');
    const r = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toMatch(/^README\.md: FAILED$/m);
    const { warnings } = await show(dir);
    expect(warnings).toEqual([
      `shadowpack: warning: PLAN_TAMPERED: ${dir}/README.md differs from the reviewed plan; restore it or make and review a new plan`,
      `shadowpack: warning: ${dir}/README.md differs from SHA256SUMS`,
    ]);
  });

  it('warns when only the header was edited, and prints the header from plan.json instead', async () => {
    const dir = writtenPlan();
    const path = join(dir, 'README.md');
    const original = readFileSync(path, 'utf8');
    writeFileSync(path, original.replace('| planned by | not recorded |', '| planned by | role `bob`, approved |'));
    const r = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
    expect(r.stdout).toMatch(/^README\.md: FAILED$/m);
    const { out, warnings } = await show(dir);
    expect(warnings).toEqual([
      `shadowpack: warning: ${dir}/README.md differs from SHA256SUMS`,
      `shadowpack: warning: ${dir}/README.md: its header differs from plan.json; the header below is printed from plan.json`,
    ]);
    expect(out[0]).toBe(
      '> **WARNING**: 2 integrity problem(s), printed on stderr: do not approve this plan as it is.\n',
    );
    expect(out[1]).toBe(original);
  });
});
