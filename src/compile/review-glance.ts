import type { PlanManifest } from './compile.js';
import { ASSUMED_COPY_ROWS_PER_SECOND, ASSUMED_INDEX_BYTES_PER_SECOND, bytes, duration } from './review-plan.js';
import type { StageName } from './stages.js';

/**
 * The review summary's first screen (issue 18): which tables stop the application and for how
 * long at worst, disk, a duration range with every bounded wait, and whether and until when
 * revert is possible. Every figure comes from plan.json; the sections below give the details.
 */
export function glanceLines(m: PlanManifest): string[] {
  const o = m.options;
  const e = m.environment;
  const out: string[] = ['## At a glance', ''];
  const changes =
    m.transform.differences.length === 0
      ? 'rebuild only (no bloat); columns, indexes, constraints, grants stay as they are'
      : m.transform.differences.join('; ');
  out.push(`- **Changes**: ${changes}.`);

  // Which application tables get ACCESS EXCLUSIVE, at which stages.
  const exclusive = new Map<string, StageName[]>();
  for (const s of m.stages) {
    for (const l of s.locks) {
      if (l.mode !== 'ACCESS EXCLUSIVE' || !l.blocksApplication) continue;
      const at = exclusive.get(l.relation) ?? [];
      if (!at.includes(s.name)) at.push(s.name);
      exclusive.set(l.relation, at);
    }
  }
  const byStages = new Map<string, string[]>();
  for (const [rel, stages] of exclusive) {
    const key = stages.join(', ');
    byStages.set(key, [...(byStages.get(key) ?? []), rel]);
  }
  const tables = [...byStages].map(([stages, rels]) => `${rels.join(', ')} (at ${stages})`).join('; ');
  out.push(
    `- **ACCESS EXCLUSIVE** (blocks every reader and writer): ${tables || 'none'}. Each time the application queues ≤ ${o.lockTimeoutMs} ms behind one attempt and ≤ ${o.lockBudgetMs} ms over all attempts of the step; then it waits while the lock is held.`,
  );
  const swap = m.stages.find((s) => s.name === 'swap');
  const n = swap?.statementsUnderLock;
  const ceiling =
    n !== undefined
      ? `${n} statements × ${o.swapStatementTimeoutMs} ms = ${duration((n * o.swapStatementTimeoutMs) / 1000)}`
      : `each statement ≤ ${o.swapStatementTimeoutMs} ms`;
  out.push(
    `- **Worst-case application stall**: ${o.lockTimeoutMs} ms behind an attempt, plus the hold of the attempt that succeeds. The swap holds its lock while it applies ≲ ${o.swapBacklog} log entries and renames: expect well under a second (its lock report gives the real figure); \`statement_timeout\` caps it at ${ceiling}. Cleanup and abort hold theirs for milliseconds (dropping triggers).${m.stages.some((s) => s.name === 'setup') ? ` Setup blocks writers (not readers) the same way, for milliseconds.` : ''}`,
  );
  out.push(
    `- **Disk**: ≈ ${bytes(e.totalBytes)} free in the table's tablespace${m.transform.spec.tablespace !== null || m.transform.spec.indexTablespace !== null ? 's named in What changes' : ''} (a second copy of table ${bytes(e.tableBytes)} and indexes ${bytes(e.indexBytes)}), plus the change log; WAL ≈ ${bytes(e.totalBytes)} or more.`,
  );
  out.push(`- **Duration**: ${durationRange(m)}`);
  const reverse = m.transform.reverse !== null;
  out.push(
    reverse
      ? '- **Revert**: possible after the swap until cleanup — `shadowpack run` stops after the swap, and the window stays open (the old table kept in sync, each write logged twice) until you run cleanup. Before the swap, abort leaves the table exactly as it was.'
      : `- **Revert**: **unavailable** for this plan (${m.transform.revertUnavailable.join('; ')}): once the swap commits only another rebuild goes back. Before the swap, abort leaves the table exactly as it was.`,
  );
  out.push('');
  return out;
}

/** Copy and build at the assumed rates, and the same plus every bounded wait run to its limit. */
function durationRange(m: PlanManifest): string {
  const e = m.environment;
  const o = m.options;
  const ceiling = o.maxRowsPerSecond > 0 ? o.maxRowsPerSecond : Infinity;
  const rate = Math.min(ASSUMED_COPY_ROWS_PER_SECOND, ceiling);
  const hasVerify = m.stages.some((s) => s.name === 'verify');
  const work =
    e.reltuples / rate +
    e.indexBytes / ASSUMED_INDEX_BYTES_PER_SECOND +
    (hasVerify ? e.reltuples / ASSUMED_COPY_ROWS_PER_SECOND : 0);
  // One locking step: every round an attempt plus the longest pause.
  const lockStep = (o.lockAttempts * (o.lockTimeoutMs + o.backoffMaxMs)) / 1000;
  const lockSteps = ['setup', 'swap', 'cleanup'].filter((s) => m.stages.some((x) => x.name === s)).length;
  // The swap waits for old snapshots twice (before and after vacuuming the log).
  const waits: [string, number][] = [
    [`${lockSteps} locking steps × ${o.lockAttempts} rounds ≤ ${duration(lockStep)} each`, lockSteps * lockStep],
    [`old snapshots 2 × ${o.snapshotWaitSeconds} s`, 2 * o.snapshotWaitSeconds],
    ...(o.holdSwap ? [[`the held swap ${o.holdWaitSeconds} s`, o.holdWaitSeconds] as [string, number]] : []),
  ];
  const total = work + waits.reduce((a, [, s]) => a + s, 0);
  return `≈ ${duration(work)} of work at the assumed rates (${rate.toLocaleString('en-US')} rows/s, ${ASSUMED_INDEX_BYTES_PER_SECOND / (1024 * 1024)} MB/s of index${hasVerify ? ', the verify stage' : ''}); up to ≈ ${duration(total)} if every bounded wait runs to its limit (${waits.map(([t]) => t).join(', ')}), after which that stage stops with nothing changed. Not bounded: catching up what the application writes meanwhile, throttling, pauses, and the revert window you leave open.`;
}
