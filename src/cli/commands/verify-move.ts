import { readMovePlanDir } from '../../run/move-plan.js';
import { verifyMove } from '../../run/move-verify.js';
import { jsonAnswer } from '../machine-output.js';
import { connectionConfig } from '../connection.js';
import { targetConnection } from './run-move.js';

export interface VerifyMoveArgs {
  readonly plan: string;
  readonly url?: string;
  readonly targetUrl?: string;
  readonly json?: boolean;
  readonly buckets?: number;
}

/** `verify --plan DIR --target-url URL` on a move plan: exit 0 every table equal, 1 a difference. */
export async function verifyMoveCommand(args: VerifyMoveArgs, out: (line: string) => void): Promise<number> {
  const plan = readMovePlanDir(args.plan);
  const target = targetConnection(args.targetUrl, args.plan);
  const r = await verifyMove(plan, connectionConfig(args.url), target, args.buckets);
  if (args.json) {
    out(jsonAnswer(r));
    return r.pass ? 0 : 1;
  }
  const rows = r.tables.reduce((a, t) => a + t.rowsSource, 0);
  const how =
    r.when === 'before-cutover'
      ? `in one source snapshot, with a round applied first (${r.roundApplied ?? 0} logged keys; rolled back)`
      : 'against the fenced source';
  const failed = r.tables.filter((t) => !t.pass);
  out(
    `${r.pass ? 'PASS' : 'FAIL'}: ${r.tables.length - failed.length} of ${r.tables.length} tables on the target equal the source (${rows} source rows, ${r.buckets} key-hash buckets each, ${r.algorithm}), ${how}`,
  );
  for (const t of failed) {
    const key = plan.manifest.tables.find((x) => `${x.schema}.${x.name}` === t.table)?.key ?? [];
    const shown = t.missing + t.extra + t.changed;
    out(
      `  ${t.table}: ${t.rowsSource} rows on the source, ${t.rowsTarget} on the target; ${t.missing} missing, ${t.extra} extra, ${t.changed} different (${t.bucketsDiffering} of ${r.buckets} buckets)`,
    );
    out(
      `    ${shown > 5 ? 'first keys' : 'keys'} (${key.join(', ')}): ${t.differingKeys ?? ''}${shown > 5 ? `; … ${shown - 5} more` : ''}`,
    );
  }
  if (!r.pass)
    out(
      r.when === 'before-cutover'
        ? `  the target differs: do not cut over; find out why, then abort (shadowpack run --plan ${args.plan} … --stage abort) and move again`
        : '  the target differs from the fenced source: rows written on the target since the cut-over count as differences; any other is a fault to look into before the application moves',
    );
  return r.pass ? 0 : 1;
}
