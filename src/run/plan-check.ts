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
  if (readme !== undefined && sha256(splitReadme(readme).body) !== m.readmeSha256) {
    throw new UserError(
      'PLAN_TAMPERED',
      `${plan.dir}/README.md differs from the reviewed plan; restore it or make and review a new plan`,
    );
  }
  const { planHash, ...rest } = m;
  if (planHashOf(rest) !== planHash) {
    throw new UserError(
      'PLAN_TAMPERED',
      `${plan.dir}/plan.json was edited after it was made (its plan hash does not match its content); make and review a new plan`,
    );
  }
  if (expectHash !== undefined && expectHash !== planHash) {
    throw new UserError(
      'PLAN_HASH_MISMATCH',
      `the plan in ${plan.dir} has hash ${planHash}, not the approved ${expectHash}; run the plan that was approved`,
    );
  }
}
