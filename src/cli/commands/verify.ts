import { jsonAnswer } from '../machine-output.js';
import { verify } from '../../run/verify.js';
import { connectionConfig } from '../connection.js';
import { readPlanDir } from '../../planning/plan-dir.js';
import { isMovePlanDir } from '../../run/move-plan.js';
import { UserError } from '../../model/errors.js';
import { verifyMoveCommand } from './verify-move.js';

export interface VerifyArgs {
  readonly plan: string;
  readonly url?: string;
  readonly json?: boolean;
  /** Checksums per key range instead of a row-by-row comparison. */
  readonly ranges?: number;
  /** A move plan: the target cluster. */
  readonly targetUrl?: string;
  /** A move plan: key-hash buckets per table. */
  readonly buckets?: number;
}

/** Exit code 0 on pass, 1 on fail. */
export async function verifyCommand(args: VerifyArgs, out: (line: string) => void): Promise<number> {
  if (isMovePlanDir(args.plan)) {
    if (args.ranges !== undefined)
      throw new UserError(
        'BAD_ARGUMENT',
        `${args.plan} is a move plan: it compares key-hash buckets, not key ranges; use --buckets N instead of --ranges`,
      );
    return verifyMoveCommand(
      {
        plan: args.plan,
        ...(args.url !== undefined ? { url: args.url } : {}),
        ...(args.targetUrl !== undefined ? { targetUrl: args.targetUrl } : {}),
        ...(args.json ? { json: true } : {}),
        ...(args.buckets !== undefined ? { buckets: args.buckets } : {}),
      },
      out,
    );
  }
  if (args.targetUrl !== undefined || args.buckets !== undefined)
    throw new UserError(
      'BAD_ARGUMENT',
      `${args.targetUrl !== undefined ? '--target-url' : '--buckets'} goes with a move plan, and ${args.plan} rebuilds a table in one database: drop it`,
    );
  const plan = readPlanDir(args.plan);
  const table = `${plan.manifest.table.schema}.${plan.manifest.table.name}`;
  const config = connectionConfig(args.url);
  if (args.ranges !== undefined) {
    const r = await verify(config, plan.manifest, args.ranges);
    if (args.json) {
      out(jsonAnswer(r));
      return r.pass ? 0 : 1;
    }
    const other = r.side === 'before-swap' ? 'the copy' : 'the old table';
    const failed = r.ranges.filter((c) => !c.pass);
    out(
      `${r.pass ? 'PASS' : 'FAIL'}: ${table} against ${other}: ${r.ranges.length - failed.length} of ${r.ranges.length} key ranges equal (${r.algorithm}); ${r.rowsLive} rows in the table, ${r.rowsOther} in ${other}; ${r.pending} change-log entries not yet applied were left out`,
    );
    for (const c of failed) {
      out(
        `  range ${c.range}, keys ${c.firstKey} .. ${c.lastKey}: ${c.rowsLive} rows in the table, ${c.rowsOther} in ${other}; checksum ${c.sumLive} vs ${c.sumOther}`,
      );
    }
    return r.pass ? 0 : 1;
  }
  const r = await verify(config, plan.manifest);
  if (args.json) out(jsonAnswer(r));
  else {
    const against = r.side === 'before-swap' ? 'the copy' : 'the old table (kept for revert)';
    out(
      `${r.pass ? 'PASS' : 'FAIL'}: ${table} against ${against}: ${r.compared} rows compared, ${r.missing} missing, ${r.extra} extra, ${r.changed} different; ${r.pending} change-log entries not yet applied were left out`,
    );
    const shown = r.missing + r.extra + r.changed;
    if (r.differingKeys !== null)
      out(
        `  ${shown > 5 ? 'first keys' : 'keys'} (${plan.manifest.model.key.columns.join(', ')}): ${r.differingKeys}${shown > 5 ? `; … ${shown - 5} more` : ''}`,
      );
    // What to do about it (newcomer review finding 21): before the swap nothing is lost by aborting; after it, revert.
    if (!r.pass)
      out(
        r.side === 'before-swap'
          ? `  the copy differs: do not swap; find out why (--ranges N names the key ranges), then shadowpack run --plan ${args.plan} --stage abort`
          : `  the rebuilt table differs from the old one: shadowpack run --plan ${args.plan} --stage revert goes back, with every write made since`,
      );
  }
  return r.pass ? 0 : 1;
}
