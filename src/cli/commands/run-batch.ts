import { join } from 'node:path';
import { readBatchDir } from '../../batch/batch-dir.js';
import { runBatch, type BatchEvent } from '../../batch/run-batch.js';
import { bytes, duration } from '../../compile/review-plan.js';
import { UserError } from '../../model/errors.js';
import type { RunEvent } from '../../run/events.js';
import { connectionConfig, redactSecrets } from '../connection.js';
import type { RunArgs } from './run.js';
import { progressPrinter } from '../progress.js';
import { SCHEMA_VERSION } from '../machine-output.js';
import { DEFAULT_UNTIL } from '../default-until.js';

/** The arguments of `run` (a batch is run by the same command). */
export type RunBatchArgs = RunArgs;

/**
 * `run --plan BATCH`: the tables one after another. Like a single-table run it stops after a
 * swap by default (that table's revert window open); `--until cleanup` runs every table whole.
 */
export async function runBatchCommand(
  args: RunBatchArgs,
  out: (line: string) => void,
  err: (text: string) => void,
  isTty: boolean,
): Promise<void> {
  if (args.stage !== undefined)
    throw new UserError(
      'BAD_ARGUMENT',
      `--stage runs one stage of one table: give that table's folder (shadowpack run --plan ${args.plan}/<schema>.<table> --stage ${args.stage})`,
    );
  const until = args.until ?? DEFAULT_UNTIL;
  if (until !== 'swap' && until !== 'cleanup')
    throw new UserError(
      'BAD_ARGUMENT',
      `a batch runs each table to its swap or through cleanup (--until swap or --until cleanup), not --until ${until}; to stop one table earlier, run its folder`,
    );
  const parallel = args.parallelTables ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1)
    throw new UserError('BAD_ARGUMENT', `--parallel-tables ${parallel}: give a whole number of tables, 1 or more`);
  const batch = readBatchDir(args.plan);
  if (parallel > 1) {
    const peak = [...batch.manifest.tables]
      .map((t) => t.diskNeededBytes)
      .sort((a, b) => b - a)
      .slice(0, parallel)
      .reduce((s, b) => s + b, 0);
    err(
      `up to ${parallel} tables at once: free disk needed at the peak ≈ ${bytes(peak)} (the ${parallel} largest), plus their change logs\n`,
    );
  }
  const printers = new Map<string, (e: RunEvent) => void>();
  const show = (e: BatchEvent) => {
    if (args.events) {
      // The envelope of every --events line (docs/scripting.md); a table's runner events carry its run and plan.
      const head = { schemaVersion: SCHEMA_VERSION, ts: new Date().toISOString(), batchHash: batch.manifest.batchHash };
      out(
        JSON.stringify(
          e.type === 'run'
            ? { ...head, runId: e.runId, planHash: e.planHash, table: e.table, ...e.event }
            : { ...head, ...e },
        ),
      );
      return;
    }
    switch (e.type) {
      case 'run': {
        const p =
          printers.get(e.table) ??
          progressPrinter((t) => err(parallel > 1 ? t.replace(/^/gm, `${e.table}: `) : t), isTty && parallel === 1);
        printers.set(e.table, p);
        p(e.event);
        return;
      }
      case 'batch-table-start':
        err(
          `[table ${e.index} of ${e.of}] ${e.table}: ${bytes(e.totalBytes)}, ≈ ${bytes(e.reclaimableBytes)} reclaimable\n`,
        );
        return;
      case 'batch-table-skip':
        err(`[table ${e.index} of ${e.of}] ${e.table}: ${e.reason}\n`);
        return;
      case 'batch-table-end':
        err(
          `[table ${e.index} of ${e.of}] ${e.table}: ${e.outcome === 'done' ? `done in ${(e.ms / 1000).toFixed(1)} s, ${e.reclaimedBytes === null ? 'size unknown' : `${bytes(Math.max(0, e.reclaimedBytes))} reclaimed`}` : 'swapped; its revert window is open'}\n`,
        );
        return;
      case 'batch-progress':
        err(
          `batch: ${e.done} of ${e.of} tables done, ${bytes(Math.max(0, e.reclaimedBytes))} reclaimed so far${e.done < e.of ? `, ≈ ${duration(e.etaSeconds)} to go` : ''}\n`,
        );
        return;
      case 'batch-table-retry':
        err(
          `[table ${e.index} of ${e.of}] ${e.table}: attempt ${e.attempt} stopped (${e.error.split('\n')[0]}); trying again\n`,
        );
        return;
      case 'batch-table-failed':
        err(
          `[table ${e.index} of ${e.of}] ${e.table}: failed (${e.error.split('\n')[0]}); ${e.aborted ? 'aborted: the table is as it was' : 'not aborted: see shadowpack status'}; the tables after it were not started\n`,
        );
        return;
    }
  };
  let summary;
  try {
    summary = await runBatch({
      batch,
      connection: connectionConfig(args.url),
      until,
      parallelTables: parallel,
      ...(args.jobs !== undefined ? { jobs: args.jobs } : {}),
      ...(args.expectHash !== undefined ? { expectHash: args.expectHash } : {}),
      onEvent: show,
    });
  } catch (e) {
    // --events promises a failure event, not only a line on stderr (which the caller prints too).
    if (args.events) {
      const code = e instanceof UserError ? e.code : 'INTERNAL_ERROR';
      out(
        JSON.stringify({
          schemaVersion: SCHEMA_VERSION,
          ts: new Date().toISOString(),
          batchHash: batch.manifest.batchHash,
          type: 'error',
          code,
          message: redactSecrets(e instanceof Error ? e.message : String(e)),
        }),
      );
    }
    throw e;
  }
  if (args.events) {
    out(
      JSON.stringify({
        schemaVersion: SCHEMA_VERSION,
        ts: new Date().toISOString(),
        batchHash: batch.manifest.batchHash,
        type: 'batch-summary',
        ...summary,
      }),
    );
    return;
  }
  const done = summary.tables.filter((t) => t.standing === 'done').length;
  out(
    `batch: ${done} of ${summary.tables.length} tables rebuilt and cleaned up; ${bytes(Math.max(0, summary.reclaimedBytes))} reclaimed`,
  );
  const url = args.url !== undefined ? ' --url …' : '';
  if (summary.waitingAt !== null) {
    const dir = join(args.plan, summary.waitingAt.dir);
    out(`${summary.waitingAt.table} is swapped and its revert window is open; the batch waits for it`);
    out(`  check it:             shadowpack verify --plan ${dir}${url}`);
    out(`  go back:              shadowpack run --plan ${dir} --stage revert${url}`);
    out(
      `  close it, go on:      shadowpack run --plan ${dir} --until cleanup${url}, then shadowpack run --plan ${args.plan}${url}`,
    );
    out(`  or run the rest unattended: shadowpack run --plan ${args.plan} --until cleanup${url}`);
  } else if (summary.finished) {
    out(`${args.plan}: done`);
  }
}
