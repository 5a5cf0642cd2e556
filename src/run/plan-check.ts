import type { PlanManifest } from '../compile/compile.js';
import { planHashOf, sha256 } from '../compile/plan-hash.js';
import { UserError } from '../model/errors.js';
import { splitReadme } from '../compile/provenance.js';

/** A plan as read from its folder: the manifest and the text of each file it lists. */
export interface LoadedPlan {
  readonly dir: string;
  readonly manifest: PlanManifest;
  readonly files: ReadonlyMap<string, string>;
}

/**
 * Refuses a plan whose files or manifest differ from what was reviewed:
 * every script's sha256, the README's, and the plan hash over the manifest.
 */
export function checkPlanIntegrity(plan: LoadedPlan, expectHash?: string): void {
  const m = plan.manifest;
  for (const s of m.stages) {
    const text = plan.files.get(s.file);
    if (text === undefined)
      throw new UserError(
        'PLAN_TAMPERED',
        `${plan.dir}/${s.file} is missing; the plan is incomplete (make it again with shadowpack plan)`,
      );
    if (sha256(text) !== s.sha256) {
      throw new UserError(
        'PLAN_TAMPERED',
        `${plan.dir}/${s.file} differs from the reviewed plan (sha256 ${sha256(text)}, plan.json says ${s.sha256}); restore the reviewed file or make and review a new plan`,
      );
    }
  }
  if (m.binding !== undefined) {
    const text = plan.files.get(m.binding.file);
    if (text === undefined)
      throw new UserError(
        'PLAN_TAMPERED',
        `${plan.dir}/${m.binding.file} is missing; every stage includes it to check the database (make the plan again with shadowpack plan)`,
      );
    if (sha256(text) !== m.binding.sha256) {
      throw new UserError(
        'PLAN_TAMPERED',
        `${plan.dir}/${m.binding.file} differs from the reviewed plan (sha256 ${sha256(text)}, plan.json says ${m.binding.sha256}); restore it or make and review a new plan`,
      );
    }
  }
  // The header above the review is printed from plan.json (it holds the plan hash): the hash covers the rest.
  const readme = plan.files.get('README.md');
  const { planHash, ...rest } = m;
  checkReviewed({
    dir: plan.dir,
    readmeBody: readme === undefined ? undefined : splitReadme(readme).body,
    readmeSha256: m.readmeSha256,
    planHash,
    contentHash: planHashOf(rest),
    expectHash,
  });
}

/** What every kind of plan (rebuild, move) checks after its files: see checkReviewed. */
export interface ReviewedFacts {
  readonly dir: string;
  /** The part of README.md that readmeSha256 covers; undefined when the folder has no README.md. */
  readonly readmeBody: string | undefined;
  readonly readmeSha256: string;
  /** The plan hash plan.json states, and the one its content gives now. */
  readonly planHash: string;
  readonly contentHash: string;
  /** The hash the approver passed with --expect-hash, if any. */
  readonly expectHash: string | undefined;
}

/**
 * Refuses a plan whose review summary or plan.json changed after it was made, or that is not the
 * plan that was approved (--expect-hash).
 */
export function checkReviewed(f: ReviewedFacts): void {
  if (f.readmeBody !== undefined && sha256(f.readmeBody) !== f.readmeSha256) {
    throw new UserError(
      'PLAN_TAMPERED',
      `${f.dir}/README.md differs from the reviewed plan; restore it or make and review a new plan`,
    );
  }
  if (f.contentHash !== f.planHash) {
    throw new UserError(
      'PLAN_TAMPERED',
      `${f.dir}/plan.json was edited after it was made (its plan hash does not match its content); make and review a new plan`,
    );
  }
  if (f.expectHash !== undefined && f.expectHash !== f.planHash) {
    throw new UserError(
      'PLAN_HASH_MISMATCH',
      `the plan in ${f.dir} has hash ${f.planHash}, not the approved ${f.expectHash}; run the plan that was approved`,
    );
  }
}
