import { verify } from '../../run/verify.js';
import { connectionConfig } from '../connection.js';
import { readPlanDir } from '../plan-dir.js';

/** Exit code 0 on pass, 1 on fail. */
export async function verifyCommand(args: { plan: string; url?: string; json?: boolean }, out: (line: string) => void): Promise<number> {
  const plan = readPlanDir(args.plan);
  const r = await verify(connectionConfig(args.url), plan.manifest);
  if (args.json) out(JSON.stringify(r));
  else {
    const against = r.side === 'before-swap' ? 'the copy' : 'the old table (kept for revert)';
    out(`${r.pass ? 'PASS' : 'FAIL'}: ${plan.manifest.table.schema}.${plan.manifest.table.name} against ${against}: ${r.compared} rows equal, ${r.missing} missing, ${r.extra} extra, ${r.changed} different; ${r.pending} change-log entries not yet applied were left out`);
  }
  return r.pass ? 0 : 1;
}
