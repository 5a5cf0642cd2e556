import type { DiffResult } from '../planning/diff-plans.js';

/** A plan comparison for a person: the verdict, then what explains it, then the script diffs. */
export function printPlanDiff(r: DiffResult, out: (line: string) => void): void {
  out(r.identical ? 'SQL identical' : `SQL differs in ${r.scripts.length} script(s)`);
  if (r.model.length) {
    out('');
    out('table differences:');
    for (const line of r.model) out(`  ${line}`);
  }
  if (r.options.length) {
    out('');
    out('option differences:');
    for (const line of r.options) out(`  ${line}`);
  }
  if (r.environment.length) {
    out('');
    out('environment (never part of the SQL):');
    for (const line of r.environment) out(`  ${line}`);
  }
  for (const s of r.scripts) out('\n' + s.diff);
}
