import { readBatchDir, readBatchTable, type LoadedBatch } from '../../batch/batch-dir.js';
import { diffBatches, type BatchSide } from '../../batch/diff-batches.js';
import { withOptionDefaults } from '../../compile/options.js';
import { UserError } from '../../model/errors.js';
import { qualified } from '../../model/quote.js';
import type { PlanSide } from '../../planning/diff-plans.js';
import { planTable } from '../../planning/plan-table.js';
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
      const m = p.manifest;
      const now = (
        await planTable(client, {
          schema: m.table.schema,
          table: m.table.name,
          options: withOptionDefaults(m.options),
          transform: m.transform.spec,
          compareOnly: true,
        })
      ).plan;
      plans.set(table, { label: `live/${table}`, manifest: now.manifest, files: now.files });
    }
    return { label: 'live', manifest: approved.manifest, plans };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** `diff A B` of two batches (or `--plan BATCH` with the live database): table by table, same exit codes. */
export async function diffBatchCommand(
  args: {
    readonly a?: string;
    readonly b?: string;
    readonly plan?: string;
    readonly url?: string;
    readonly json?: boolean;
  },
  out: (line: string) => void,
): Promise<number> {
  let a: BatchSide;
  let b: BatchSide;
  if (args.plan !== undefined) {
    if (args.a !== undefined || args.b !== undefined)
      throw new UserError('BAD_ARGUMENT', 'give either two plan folders or --plan DIR with --url, not both');
    a = side(args.plan, readBatchDir(args.plan));
    b = await liveSide(a, args.url);
  } else {
    if (args.a === undefined || args.b === undefined)
      throw new UserError(
        'BAD_ARGUMENT',
        'give two batch folders (shadowpack diff A B), or --plan DIR to compare with the live database',
      );
    a = side(args.a, readBatchDir(args.a));
    b = side(args.b, readBatchDir(args.b));
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
