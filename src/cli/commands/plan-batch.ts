import { planBatch } from '../../batch/plan-batch.js';
import { writeBatchDir } from '../../batch/batch-dir.js';
import { resolveOptions, type PlanOptions } from '../../compile/options.js';
import { bytes, duration } from '../../compile/review-plan.js';
import { UserError } from '../../model/errors.js';
import { qualified } from '../../model/quote.js';
import { connectClient } from '../../run/connect.js';
import { connectionConfig } from '../connection.js';
import { parseSize } from './bloat.js';
import { jsonAnswer } from '../machine-output.js';

import { DEFAULT_BLOATED_MIN_RATIO } from '../batch-defaults.js';

export { DEFAULT_BLOATED_MIN_RATIO };

export interface PlanBatchArgs {
  readonly out: string;
  readonly url?: string;
  readonly force?: boolean;
  readonly json?: boolean;
  readonly runAs?: string;
  readonly schemas: readonly string[];
  readonly tables: readonly string[];
  readonly bloated: boolean;
  readonly minRatio?: number;
  readonly minSize?: string;
  readonly options: Partial<Record<keyof PlanOptions, unknown>>;
  /** The command line as typed (password removed), for each folder's approver header. */
  readonly command?: string;
}

/** `plan --schema S … | --table A --table B … | --bloated … --out DIR`: one folder per table and the batch's summary. */
export async function planBatchCommand(args: PlanBatchArgs, print: (line: string) => void): Promise<void> {
  if (args.tables.length > 0 && (args.schemas.length > 0 || args.bloated)) {
    throw new UserError('BAD_ARGUMENT', 'give either --table (repeatable) or --schema/--bloated, not both');
  }
  if (!args.bloated && (args.minRatio !== undefined || args.minSize !== undefined)) {
    throw new UserError('BAD_ARGUMENT', '--min-ratio and --min-size only go with --bloated');
  }
  const minRatio = args.minRatio ?? DEFAULT_BLOATED_MIN_RATIO;
  if (!(minRatio >= 0 && minRatio <= 1))
    throw new UserError(
      'BAD_ARGUMENT',
      `--min-ratio ${minRatio}: give a fraction from 0 to 1 (0.2 = a fifth of the table is reclaimable)`,
    );
  const selection = {
    schemas: [...args.schemas],
    tables: [...args.tables],
    bloated: args.bloated ? { minRatio, minSizeBytes: parseSize(args.minSize ?? '0') } : null,
  };
  const options = resolveOptions(args.options);
  const client = await connectClient(connectionConfig(args.url));
  let batch;
  try {
    batch = await planBatch(
      client,
      { selection, options, ...(args.runAs !== undefined ? { runAs: args.runAs } : {}) },
      args.command !== undefined ? { command: args.command } : {},
    );
  } finally {
    await client.end().catch(() => undefined);
  }
  writeBatchDir(args.out, batch, args.force ?? false);
  const m = batch.manifest;
  if (args.json) {
    print(
      jsonAnswer({
        dir: args.out,
        batchHash: m.batchHash,
        tables: m.tables.map((t) => ({ table: qualified(t.schema, t.name), dir: t.dir, planHash: t.planHash })),
        skipped: m.skipped,
        totals: m.totals,
      }),
    );
    return;
  }
  print(`batch of ${m.tables.length} table(s) written to ${args.out} (batch hash ${m.batchHash})`);
  m.tables.forEach((t, i) =>
    print(
      `  ${i + 1}. ${qualified(t.schema, t.name)}: ${bytes(t.totalBytes)}, ≈ ${bytes(t.reclaimableBytes)} reclaimable → ${args.out}/${t.dir}`,
    ),
  );
  for (const s of m.skipped) print(`  skipped ${qualified(s.schema, s.name)}: ${s.reason.split('\n')[0]}`);
  print(
    `expected gain ≈ ${bytes(m.totals.reclaimableBytes)}; disk needed at the peak ≈ ${bytes(m.totals.peakDiskBytes)}; ≈ ${duration(m.totals.estimatedSeconds)}`,
  );
  print(`review ${args.out}/README.md, then run: shadowpack run --plan ${args.out} --expect-hash ${m.batchHash}`);
}
