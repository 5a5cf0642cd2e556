import { readPlanDir, checkSums } from '../../planning/plan-dir.js';
import { renderReview } from '../../compile/review.js';
import { UserError } from '../../model/errors.js';
import { checkPlanIntegrity } from '../../run/plan-check.js';
import { checkBatchIntegrity, isBatchDir, readBatchDir } from '../../batch/batch-dir.js';

/**
 * Prints the review summary. Before it, checks the plan as run would (every file against plan.json,
 * the plan hash over plan.json) and against SHA256SUMS, and warns on stderr, one line each, about
 * anything that differs: what an approver reads must be what will run.
 */
export async function showCommand(args: { plan: string }, out: (line: string) => void, warn: (line: string) => void = () => undefined): Promise<void> {
  if (isBatchDir(args.plan)) {
    const batch = readBatchDir(args.plan);
    try {
      checkBatchIntegrity(batch);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      warn(`shadowpack: warning: ${e.code}: ${e.message}`);
    }
    for (const p of checkSums(args.plan)) warn(`shadowpack: warning: ${p}`);
    out(`batch hash ${batch.manifest.batchHash} (approve this one; run --expect-hash ${batch.manifest.batchHash} refuses any other)`);
    out(batch.readme ?? '(README.md is missing)');
    return;
  }
  const plan = readPlanDir(args.plan);
  try {
    checkPlanIntegrity(plan);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    warn(`shadowpack: warning: ${e.code}: ${e.message}`);
  }
  for (const p of checkSums(args.plan)) warn(`shadowpack: warning: ${p}`);
  out(`plan hash ${plan.manifest.planHash} (approve this one; run --expect-hash ${plan.manifest.planHash} refuses any other)`);
  out(plan.files.get('README.md') ?? renderReview(plan.manifest));
}
