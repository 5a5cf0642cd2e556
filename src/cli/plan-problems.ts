import { UserError } from '../model/errors.js';
import { checkSums } from '../planning/plan-dir.js';

/**
 * What `show` finds wrong in a plan folder before printing it: the check run makes first (every file
 * against plan.json, the plan hash), as lines rather than a refusal, and SHA256SUMS.
 */
export function integrityProblems(dir: string, check: () => void): string[] {
  const problems: string[] = [];
  try {
    check();
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    problems.push(`${e.code}: ${e.message}`);
  }
  problems.push(...checkSums(dir));
  return problems;
}

/** Each problem on stderr, and a warning above the page when there is any. */
export function reportProblems(
  problems: readonly string[],
  out: (line: string) => void,
  warn: (line: string) => void,
): void {
  for (const p of problems) warn(`shadowpack: warning: ${p}`);
  if (problems.length > 0)
    out(
      `> **WARNING**: ${problems.length} integrity problem(s), printed on stderr: do not approve this plan as it is.\n`,
    );
}
