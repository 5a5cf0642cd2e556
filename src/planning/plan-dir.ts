import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan, PlanManifest } from '../compile/compile.js';
import { sha256 } from '../compile/plan-hash.js';
import { UserError } from '../model/errors.js';
import { readManifestJson } from '../run/manifest-json.js';
import type { LoadedPlan } from '../run/plan-check.js';
import { checkOutDir } from './out-dir.js';

/** Writes plan.json, the scripts and README.md. Refuses to mix with another plan unless forced. */
export function writePlanDir(dir: string, plan: Plan, force: boolean): void {
  checkOutDir(dir, force);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) {
    if (/^\d\d[a-z]?-[a-z]+\.sql$/.test(f) && !plan.files.has(f) && force) writeFileSync(join(dir, f), '');
  }
  for (const [name, text] of plan.files) writeFileSync(join(dir, name), text);
  const manifest = JSON.stringify(plan.manifest, null, 2) + '\n';
  writeFileSync(join(dir, 'plan.json'), manifest);
  writeFileSync(join(dir, SUMS_FILE), sumsText(new Map([...plan.files, ['plan.json', manifest]])));
}

/**
 * For operators who only have psql: `sha256sum -c SHA256SUMS` in the plan folder checks every
 * file of the plan (scripts, binding.sql, README.md, plan.json) the way the runner checks them
 * against plan.json. It is derived from the files, so it is not itself part of the plan hash.
 */
export const SUMS_FILE = 'SHA256SUMS';

/** The lines sha256sum writes (hash, two spaces, name), sorted by name. */
export function sumsText(files: ReadonlyMap<string, string>): string {
  return [...files]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, text]) => `${sha256(text)}  ${name}\n`)
    .join('');
}

/**
 * Checks the plan folder's files against its SHA256SUMS: one line per file that is missing or
 * differs, or per problem with the file itself. Empty when everything matches.
 */
export function checkSums(dir: string): string[] {
  const path = join(dir, SUMS_FILE);
  if (!existsSync(path)) return [`${path} is missing (plans written before it existed have none)`];
  const problems: string[] = [];
  for (const line of readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')) {
    const m = /^([0-9a-f]{64}) {2}(\S+)$/.exec(line);
    if (!m) {
      problems.push(`${path} has a line that is not "sha256  file": ${JSON.stringify(line)}`);
      continue;
    }
    const file = join(dir, m[2]!);
    if (!existsSync(file)) problems.push(`${file} is missing`);
    else if (sha256(readFileSync(file, 'utf8')) !== m[1]) problems.push(`${file} differs from ${SUMS_FILE}`);
  }
  return problems;
}

export { readManifestJson } from '../run/manifest-json.js';

export function readPlanDir(dir: string): LoadedPlan {
  const { path: manifestPath, manifest } = readManifestJson<PlanManifest>(dir, 'plan');
  if (manifest.formatVersion !== 1 || !Array.isArray(manifest.stages)) {
    throw new UserError(
      'PLAN_INVALID',
      `${manifestPath} is not a shadowpack plan of format 1; make it again with this version`,
    );
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
