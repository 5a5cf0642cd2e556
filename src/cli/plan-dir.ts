import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan, PlanManifest } from '../compile/compile.js';
import { UserError } from '../model/errors.js';
import type { LoadedPlan } from '../run/plan-check.js';

/** Writes plan.json, the scripts and README.md. Refuses to mix with another plan unless forced. */
export function writePlanDir(dir: string, plan: Plan, force: boolean): void {
  if (existsSync(join(dir, 'plan.json')) && !force) {
    throw new UserError('BAD_ARGUMENT', `${dir} already holds a plan; choose another --out or pass --force to replace it`);
  }
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) {
    if (/^\d\d[a-z]?-[a-z]+\.sql$/.test(f) && !plan.files.has(f) && force) writeFileSync(join(dir, f), '');
  }
  for (const [name, text] of plan.files) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan.manifest, null, 2) + '\n');
}

export function readPlanDir(dir: string): LoadedPlan {
  const manifestPath = join(dir, 'plan.json');
  if (!existsSync(manifestPath)) throw new UserError('PLAN_INVALID', `${dir} holds no plan.json; give the folder written by "shadowpack plan --out"`);
  let manifest: PlanManifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as PlanManifest;
  } catch (e) {
    throw new UserError('PLAN_INVALID', `${manifestPath} is not valid JSON (${(e as Error).message}); make the plan again`);
  }
  if (manifest.formatVersion !== 1 || !Array.isArray(manifest.stages)) {
    throw new UserError('PLAN_INVALID', `${manifestPath} is not a shadowpack plan of format 1; make it again with this version`);
  }
  const files = new Map<string, string>();
  for (const s of manifest.stages) {
    const p = join(dir, s.file);
    if (existsSync(p)) files.set(s.file, readFileSync(p, 'utf8'));
  }
  if (manifest.binding !== undefined && existsSync(join(dir, manifest.binding.file))) {
    files.set(manifest.binding.file, readFileSync(join(dir, manifest.binding.file), 'utf8'));
  }
  const readme = join(dir, 'README.md');
  if (existsSync(readme)) files.set('README.md', readFileSync(readme, 'utf8'));
  return { dir, manifest, files };
}
