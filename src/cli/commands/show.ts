import { readPlanDir } from '../../planning/plan-dir.js';
import { renderReview } from '../../compile/review.js';
import { headerText, splitReadme } from '../../compile/provenance.js';
import { integrityProblems, reportProblems } from '../plan-problems.js';
import { checkPlanIntegrity } from '../../run/plan-check.js';
import { checkBatchIntegrity, isBatchDir, readBatchDir } from '../../batch/batch-dir.js';
import { isMovePlanDir } from '../../run/move-plan.js';
import { showMoveCommand } from './show-move.js';

/**
 * Prints the review summary, header first: the header is printed afresh from plan.json (plan hash,
 * provenance, the commands), then the review as README.md has it. Before it, checks the plan as run
 * would (every file against plan.json, the plan hash recomputed over plan.json), against
 * SHA256SUMS, and README.md's own header against plan.json, and warns on stderr, one line each,
 * about anything that differs, with one line on stdout too: what an approver reads must be what
 * will run.
 */
export async function showCommand(
  args: { plan: string },
  out: (line: string) => void,
  warn: (line: string) => void = () => undefined,
): Promise<void> {
  if (isBatchDir(args.plan)) {
    const batch = readBatchDir(args.plan);
    for (const p of integrityProblems(args.plan, () => checkBatchIntegrity(batch))) warn(`shadowpack: warning: ${p}`);
    out(
      `batch hash ${batch.manifest.batchHash} (approve this one; run --expect-hash ${batch.manifest.batchHash} refuses any other)`,
    );
    out(batch.readme ?? '(README.md is missing)');
    return;
  }
  if (isMovePlanDir(args.plan)) {
    showMoveCommand(args.plan, out, warn);
    return;
  }
  const plan = readPlanDir(args.plan);
  const problems = integrityProblems(args.plan, () => checkPlanIntegrity(plan));
  const header = headerText(plan.manifest);
  const readme = plan.files.get('README.md');
  const parts = readme === undefined ? null : splitReadme(readme);
  // A plan made before the header existed has none; one whose header differs was edited (or made by another version).
  if (parts?.header != null && parts.header !== header)
    problems.push(
      `${args.plan}/README.md: its header differs from plan.json; the header below is printed from plan.json`,
    );
  reportProblems(problems, out, warn);
  out(header + (parts?.body ?? renderReview(plan.manifest)));
}
