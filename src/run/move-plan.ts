import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '../compile/plan-hash.js';
import { splitReadme } from '../compile/provenance.js';
import { MOVE_BINDING_FILES, MOVE_STAGES, type MovePlanManifest, type MoveSide } from '../compile/move/stages.js';
import { UserError } from '../model/errors.js';
import { canonicalJson } from '../model/normalise.js';
import { readManifestJson } from './manifest-json.js';
import { checkReviewed } from './plan-check.js';

/** A move plan (issue 15) as read from its folder: the manifest and the text of each file it lists. */
export interface LoadedMovePlan {
  readonly dir: string;
  readonly manifest: MovePlanManifest;
  readonly files: ReadonlyMap<string, string>;
}

/** Whether DIR/plan.json says `kind: "move"` (a rebuild plan has no kind). */
export function isMovePlanDir(dir: string): boolean {
  const path = join(dir, 'plan.json');
  if (!existsSync(path)) return false;
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { kind?: unknown }).kind === 'move';
  } catch {
    return false;
  }
}

export function readMovePlanDir(dir: string): LoadedMovePlan {
  const { path, manifest } = readManifestJson<MovePlanManifest>(dir, 'plan');
  if (manifest.kind !== 'move' || !Array.isArray(manifest.stages) || manifest.bindings === undefined) {
    throw new UserError('PLAN_INVALID', `${path} is not a shadowpack move plan; make it again with this version`);
  }
  const files = new Map<string, string>();
  const names = [
    ...manifest.stages.map((s) => s.file),
    ...Object.values(manifest.bindings).map((b) => b.file),
    'README.md',
  ];
  for (const name of names) {
    const p = join(dir, name);
    if (existsSync(p)) files.set(name, readFileSync(p, 'utf8'));
  }
  return { dir, manifest, files };
}

function checkFile(plan: LoadedMovePlan, file: string, want: string, why: string): void {
  const text = plan.files.get(file);
  if (text === undefined)
    throw new UserError(
      'PLAN_TAMPERED',
      `${plan.dir}/${file} is missing; ${why} (make the plan again with shadowpack plan)`,
    );
  const got = sha256(text);
  if (got !== want) {
    throw new UserError(
      'PLAN_TAMPERED',
      `${plan.dir}/${file} differs from the reviewed plan (sha256 ${got}, plan.json says ${want}); restore the reviewed file or make and review a new plan`,
    );
  }
}

/**
 * Refuses a move plan whose files or manifest differ from what was reviewed: every stage script's and
 * both bindings' sha256, the README's, the plan hash over the manifest; and a stage the runner does
 * not know on the side plan.json gives it (the runner would send it to the wrong cluster).
 */
export function checkMovePlanIntegrity(plan: LoadedMovePlan, expectHash?: string): void {
  const m = plan.manifest;
  for (const s of m.stages) {
    const rule = MOVE_STAGES.find((r) => r.file === s.file);
    if (rule === undefined || rule.side !== s.side || rule.stage !== s.stage) {
      throw new UserError(
        'PLAN_INVALID',
        `${plan.dir}/plan.json lists ${s.file} as stage ${s.stage} on the ${s.side}, which this shadowpack does not run; make the plan again with this version`,
      );
    }
    checkFile(plan, s.file, s.sha256, 'the plan is incomplete');
  }
  for (const side of ['source', 'target'] as const satisfies readonly MoveSide[]) {
    const b = m.bindings[side];
    if (b.file !== MOVE_BINDING_FILES[side])
      throw new UserError(
        'PLAN_INVALID',
        `${plan.dir}/plan.json names ${b.file} as the ${side}'s binding; make the plan again with this version`,
      );
    checkFile(plan, b.file, b.sha256, `every ${side} stage includes it to check the cluster`);
  }
  const readme = plan.files.get('README.md');
  const { planHash, ...rest } = m;
  checkReviewed({
    dir: plan.dir,
    readmeBody: readme === undefined ? undefined : readmeBody(readme),
    readmeSha256: m.readmeSha256,
    planHash,
    contentHash: movePlanHashOf(rest),
    expectHash,
  });
}

/** The plan hash as src/compile/move/compile-move.ts makes it: sha256 of the canonical JSON of the rest. */
export function movePlanHashOf(manifest: Omit<MovePlanManifest, 'planHash'>): string {
  return sha256(canonicalJson(manifest));
}

/** The part of README.md that readmeSha256 covers: after the rebuild's header marker, or after the move's "plan hash:" header. */
function readmeBody(text: string): string {
  const split = splitReadme(text);
  if (split.header !== null) return split.body;
  const m = /^# Move plan [^\n]*\n\nplan hash: [^\n]*\n\n/.exec(text);
  return m === null ? text : text.slice(m[0].length);
}
