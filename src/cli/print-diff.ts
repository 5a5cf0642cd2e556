import type { DiffResult } from '../planning/diff-plans.js';

/** A plan comparison for a person: the verdict, then what explains it, then the script diffs. */
export function printPlanDiff(r: DiffResult, out: (line: string) => void): void {
  out(r.identical ? 'SQL identical' : `SQL differs in ${r.scripts.length} script(s)`);
  // "in A" / "in B" below, and the --- / +++ of the scripts, refer to these (finding 37).
  const side = (s: DiffResult['a']) =>
    s.label === 'live' ? `the live database now (the plan it gives, ${s.planHash})` : `${s.label} (${s.planHash})`;
  out(`A: ${side(r.a)}`);
  out(`B: ${side(r.b)}`);
  if (r.identical && r.a.planHash !== r.b.planHash) {
    out(
      'the plan hashes differ although the SQL is the same: a plan is bound to its database (binding.sql, below), so each environment has its own hash to approve',
    );
  }
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
