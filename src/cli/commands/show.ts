import { readPlanDir } from '../plan-dir.js';
import { renderReview } from '../../compile/review.js';

export async function showCommand(args: { plan: string }, out: (line: string) => void): Promise<void> {
  const plan = readPlanDir(args.plan);
  out(plan.files.get('README.md') ?? renderReview(plan.manifest));
}
