import { readBatchDir, readBatchTable, type LoadedBatch } from '../../batch/batch-dir.js';
import { diffBatches, type BatchSide } from '../../batch/diff-batches.js';
import { qualified } from '../../model/quote.js';
import type { PlanSide } from '../../planning/diff-plans.js';
import { planNow } from '../../planning/plan-table.js';
import { diffOperands } from '../diff-operands.js';
import type { DiffArgs } from './diff.js';
import { connectClient } from '../../run/connect.js';
import { connectionConfig } from '../connection.js';
import { jsonAnswer } from '../machine-output.js';
import { printPlanDiff } from '../print-diff.js';

function side(label: string, batch: LoadedBatch): BatchSide {
  const plans = new Map<string, PlanSide>();
  for (const t of batch.manifest.tables) {
    const p = readBatchTable(batch, t);
    plans.set(qualified(t.schema, t.name), { label: `${label}/${t.dir}`, manifest: p.manifest, files: p.files });
  }
  return { label, manifest: batch.manifest, plans };
}

/** diff --plan BATCH: each table's plan as the live database gives it now. */
async function liveSide(approved: BatchSide, url: string | undefined): Promise<BatchSide> {
  const client = await connectClient(connectionConfig(url));
  try {
    const plans = new Map<string, PlanSide>();
    for (const [table, p] of approved.plans) {
      const now = await planNow(client, p.manifest);
      plans.set(table, { label: `live/${table}`, manifest: now.manifest, files: now.files });
    }
    return { label: 'live', manifest: approved.manifest, plans };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** `diff A B` of two batches (or `--plan BATCH` with the live database): table by table, same exit codes. */
export async function diffBatchCommand(args: DiffArgs, out: (line: string) => void): Promise<number> {
  let a: BatchSide;
  let b: BatchSide;
  const operands = diffOperands(
    args,
    'give two batch folders (shadowpack diff A B), or --plan DIR to compare with the live database',
  );
  if ('live' in operands) {
    a = side(operands.live, readBatchDir(operands.live));
    b = await liveSide(a, args.url);
  } else {
    a = side(operands.a, readBatchDir(operands.a));
    b = side(operands.b, readBatchDir(operands.b));
  }
  const r = diffBatches(a, b);
  if (args.json) {
    out(jsonAnswer(r));
    return r.identical ? 0 : 1;
  }
  const differing = r.tables.filter((t) => t.only !== null || t.diff?.identical === false);
  out(
    r.identical
      ? `SQL identical in all ${r.tables.length} tables`
      : `SQL differs in ${differing.length} of ${r.tables.length} tables: ${differing.map((t) => t.table).join(', ')}`,
  );
  for (const t of r.tables) {
    out('');
    if (t.only !== null) {
      out(
        `== ${t.table}: planned in ${t.only} only${t.skippedReason !== null ? ` (${t.only === 'A' ? 'B' : 'A'} skipped it: ${t.skippedReason})` : ''}`,
      );
      continue;
    }
    out(`== ${t.table}`);
    printPlanDiff(t.diff!, out);
  }
  return r.identical ? 0 : 1;
}
