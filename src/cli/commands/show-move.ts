import { integrityProblems, reportProblems } from '../plan-problems.js';
import { checkMovePlanIntegrity, readMovePlanDir } from '../../run/move-plan.js';

/**
 * `show --plan DIR` for a move plan (issue 15): the plan hash to approve, the stages in order with the side
 * each runs on, then README.md as written. Checks the plan as run would first (every file against plan.json,
 * the plan hash, SHA256SUMS) and warns about anything that differs, as `show` does for a rebuild plan.
 */
export function showMoveCommand(dir: string, out: (line: string) => void, warn: (line: string) => void): void {
  const plan = readMovePlanDir(dir);
  const m = plan.manifest;
  reportProblems(
    integrityProblems(dir, () => checkMovePlanIntegrity(plan)),
    out,
    warn,
  );
  const side = (s: typeof m.source) =>
    `database ${s.database} on ${s.host ?? 'local socket'}:${s.port ?? 5432} (server_version_num ${s.serverVersionNum})`;
  out(`move plan hash ${m.planHash} (approve this one; run --expect-hash ${m.planHash} refuses any other)`);
  out(`moves ${m.tables.map((t) => `${t.schema}.${t.name}`).join(', ')} (run ${m.runId})`);
  out(`  source: ${side(m.source)}`);
  out(`  target: ${side(m.target)}`);
  out('stages, in order:');
  for (const s of m.stages)
    out(`  ${s.file}  ${s.side}  ${s.stage}${s.hazards.length > 0 ? `  hazards: ${s.hazards.join(', ')}` : ''}`);
  out('');
  out(plan.files.get('README.md') ?? '(README.md is missing)');
}
