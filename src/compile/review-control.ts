import type { PlanOptions } from './options.js';

/** The review summary's section on throttling and operator control. */
export function controlReviewLines(o: PlanOptions, runId: string): string[] {
  const out: string[] = ['## Throttling and operator control', ''];
  out.push(
    `Between backfill batches and between catch-up rounds the run checks its control table \`shadowpack.control_${runId}\`; \`shadowpack control --plan DIR\` (or an \`UPDATE\` from psql) changes it while a stage runs, and the change counts from the next batch:`,
    '',
  );
  out.push('- `--pause` / `--resume`: the run waits between batches, holding no lock and no snapshot.');
  out.push(`- \`--batch-pages N\`: heap pages per backfill batch (starts at ${o.batchPages}).`);
  out.push(
    `- \`--max-rows-per-second N\`: rows/s ceiling for backfill and catch-up (starts at ${o.maxRowsPerSecond === 0 ? 'none' : o.maxRowsPerSecond}; 0 for none).`,
  );
  out.push('');
  const automatic = [
    o.maxReplicaLagMs > 0
      ? `a replica's replay lag (\`pg_stat_replication.replay_lag\`) is above ${o.maxReplicaLagMs} ms`
      : null,
    o.throttleProbe !== null ? `the throttle probe returns more than ${o.throttleThreshold}` : null,
  ].filter((x) => x !== null);
  out.push(
    automatic.length === 0
      ? 'This plan sets no replica lag limit and no throttle probe (`--max-replica-lag-ms`, `--throttle-probe`).'
      : `The run also waits on its own while ${automatic.join(', or while ')}.`,
  );
  if (o.throttleProbe !== null) {
    out.push(
      '',
      'Throttle probe (run read-only between batches, with a lock_timeout of ' + `${o.throttleProbeTimeoutMs} ms):`,
      '',
      '```sql',
      o.throttleProbe.replace(/```/g, '` ` `'),
      '```',
    );
  }
  out.push('');
  out.push(
    o.holdSwap
      ? `**The swap is held**: the swap stage waits until \`shadowpack control --plan DIR --release-swap\`, at most ${o.holdWaitSeconds} s per attempt; then it stops with nothing swapped and can be run again.`
      : 'The swap is not held: it goes ahead as soon as catch-up is done (plan with `--hold-swap` to wait for an operator).',
  );
  out.push(
    '',
    '`shadowpack status --plan DIR` shows whether the run is paused or throttled and what it waits for.',
    '',
  );
  return out;
}
