import { readBatchDir, readBatchTable } from '../../batch/batch-dir.js';
import { sizeNow, tableStanding, type TableStanding } from '../../batch/run-batch.js';
import { bytes } from '../../compile/review-plan.js';
import { qualified } from '../../model/quote.js';
import { connectClient } from '../../run/connect.js';
import { connectionConfig } from '../connection.js';
import { jsonAnswer } from '../machine-output.js';

function standingText(s: TableStanding): string {
  switch (s.kind) {
    case 'not-started':
      return 'not started';
    case 'in-progress':
      return `running: stage "${s.state.stage}" (backfill page ${s.state.backfillNext} of ${s.state.backfillEnd}, ${s.state.rowsCopied} rows copied)`;
    case 'swapped':
      return `swapped, revert window open (stage "${s.state.stage}"); next: cleanup`;
    case 'done':
      return `done (cleaned up at ${s.endedAt})`;
    case 'reverted':
      return `reverted at ${s.endedAt}; the batch leaves it as it is`;
    case 'aborted':
      return `aborted at ${s.endedAt}, the table as it was; the batch runs it again`;
  }
}

/** `status --plan BATCH`: every table of the batch, and how far the batch is. */
export async function statusBatchCommand(
  args: { plan: string; url?: string; json?: boolean },
  out: (line: string) => void,
): Promise<void> {
  const batch = readBatchDir(args.plan);
  const tables = batch.manifest.tables;
  const client = await connectClient(connectionConfig(args.url));
  try {
    const rows = [];
    let reclaimed = 0;
    for (const t of tables) {
      const standing = await tableStanding(client, readBatchTable(batch, t));
      let gain: number | null = null;
      if (standing.kind === 'done') {
        const now = await sizeNow(client, t);
        gain = now === null ? null : t.totalBytes - now;
        reclaimed += gain ?? 0;
      }
      rows.push({ table: qualified(t.schema, t.name), dir: t.dir, standing, reclaimedBytes: gain });
    }
    const done = rows.filter((r) => r.standing.kind === 'done' || r.standing.kind === 'reverted').length;
    if (args.json) {
      out(
        jsonAnswer({
          batchHash: batch.manifest.batchHash,
          done,
          of: tables.length,
          reclaimedBytes: reclaimed,
          tables: rows,
        }),
      );
      return;
    }
    out(
      `batch ${batch.manifest.batchHash}: ${done} of ${tables.length} tables finished; ${bytes(Math.max(0, reclaimed))} reclaimed so far of ≈ ${bytes(batch.manifest.totals.reclaimableBytes)} expected`,
    );
    rows.forEach((r, i) =>
      out(
        `  ${i + 1}. ${r.table}: ${standingText(r.standing)}${r.reclaimedBytes !== null ? `, ${bytes(Math.max(0, r.reclaimedBytes))} reclaimed` : ''}`,
      ),
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
