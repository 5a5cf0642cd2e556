import type { PlanManifest } from './compile.js';
import type { StageName } from './stages.js';

/** What can keep each stage waiting, and for how long at most (from the plan's options). */
export function blockerLines(m: PlanManifest): string[] {
  const o = m.options;
  const has = (s: StageName) => m.stages.some((x) => x.name === s);
  const out = [
    `- \`01-setup.sql\`: any open transaction that has written to the table (it holds ROW EXCLUSIVE until it ends). Setup never queues behind it: it retries, waiting at most ${o.lockBudgetMs} ms in all, then stops with nothing changed.`,
    `- \`02-backfill.sql\`, \`04-catchup.sql\`${has('verify') ? ', `04b-verify.sql`' : ''}: only a session holding ACCESS EXCLUSIVE on the table (someone's DDL); each statement waits at most ${o.waitLockTimeoutMs} ms for it. DDL on the table since planning stops every stage (fingerprint check).`,
    '- `03-build.sql`: nothing the application does (it works on the copy); free disk for sorting.',
    `- \`05-swap.sql\`: any session with any lock on the table — even a SELECT in an open transaction — and any session with any lock on the tables whose foreign keys move (moving a foreign key takes ACCESS EXCLUSIVE on both of its tables). Before locking it waits up to ${o.snapshotWaitSeconds} s for sessions whose snapshot is older than the copy (REPEATABLE READ transactions, pg_dump), naming them.${o.holdSwap ? ' It also waits for `shadowpack control --release-swap`.' : ''}`,
    `- \`91-revert.sql\`: the same sessions as the swap, and the same waits before the lock: up to ${o.snapshotWaitSeconds} s for old snapshots and for the reverse log to shrink to ${o.swapBacklog} entries.`,
    "- `05-swap.sql` and `91-revert.sql` under their lock: a session that sits idle in a transaction with a snapshot, or runs a later statement of a transaction begun before the lock, makes them give the lock back and retry (hazard WAITS_FOR_OLD_SNAPSHOTS); so does any statement of another role that holds a snapshot, when the role running the plan cannot see that role's sessions (no pg_read_all_stats).",
    '- `06-cleanup.sql`, `90-abort.sql`: readers and writers of the table, briefly (dropping the tool triggers), with the same short attempts.',
    '- Validating foreign keys after the swap: another VACUUM, ANALYZE or DDL on the same table.',
  ];
  return out;
}

/** How to stop and how to go back, at each point of the run. */
export function goingBackLines(m: PlanManifest): string[] {
  const revert =
    m.transform?.reverse === null
      ? 'revert is unavailable for this plan (see What changes): finish with `06-cleanup.sql`, or rebuild again'
      : `\`91-revert.sql\` (or \`shadowpack run --plan DIR --stage revert\`): the old table was kept in sync${(m.transform?.unmapped?.reverse.length ?? 0) > 0 ? ' (its columns the rebuilt table lacks: see What changes)' : ''}; revert applies the rest under a short lock and swaps back`;
  const rows = [
    ['before or during `00-preflight.sql`', 'nothing has changed', 'nothing to undo'],
    ['during `01-setup.sql`', 'interrupt it: one transaction, nothing stays', 'nothing to undo'],
    [
      `after setup, during or after backfill, build, catch-up${m.stages.some((s) => s.name === 'verify') ? ', verify' : ''}`,
      'interrupt the stage (Ctrl-C, or kill the session): it commits batch by batch and resumes when run again',
      '`90-abort.sql` (or `shadowpack run --plan DIR --stage abort`): removes the trigger and every tool object; the table is exactly as before',
    ],
    [
      'during `05-swap.sql`, before it commits',
      'interrupt it: the swap transaction rolls back, nothing is swapped',
      'run `05-swap.sql` again, or `90-abort.sql`',
    ],
    [
      'after the swap committed, before cleanup (the revert window: `shadowpack run` stops here)',
      'nothing runs; the table is already the rebuilt one; the old one is kept in sync',
      revert,
    ],
    [
      'during or after `06-cleanup.sql`',
      'let it finish (run it again if interrupted; it is safe to repeat)',
      'none: the old table is gone; only another rebuild goes back',
    ],
  ];
  return ['| point | to stop | to go back |', '|---|---|---|', ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

/**
 * The approved sequence: up to the swap, check, then cleanup or revert. `run` stops after the swap
 * by default so that the revert window this summary promises is really there (issue 18).
 */
export function runbookLines(m: PlanManifest): string[] {
  const verify = m.stages.some((s) => s.name === 'verify');
  const canRevert = m.transform?.reverse !== null;
  return [
    '## Runbook',
    '',
    'H is the plan hash at the top of this summary (also printed by `shadowpack plan` and `shadowpack show`); `--expect-hash H` refuses any other plan. The header above gives these commands with it filled in.',
    '',
    `1. \`shadowpack run --plan DIR --until swap --expect-hash H\`: preflight, setup, backfill, build, catch-up${verify ? ', verify' : ''} and the swap (a plain \`run\` stops there too). It can be interrupted and run again at any point.`,
    '2. `shadowpack verify --plan DIR`: compares the rebuilt table with the old one, which is kept in sync. Check the application.',
    canRevert
      ? '3. Then either `shadowpack run --plan DIR --until cleanup --expect-hash H` (drops the old table: the end of the revert window), or `shadowpack run --plan DIR --stage revert --expect-hash H` (swaps back with every write made since).'
      : '3. Then `shadowpack run --plan DIR --until cleanup --expect-hash H` (drops the old table). Revert is unavailable for this plan (see What changes): after the swap the only way back is another rebuild.',
    '',
    `With psql: \`00-preflight.sql\` to \`05-swap.sql\` in order, then \`06-cleanup.sql\`${canRevert ? ' or `91-revert.sql`' : ''}.`,
    '',
    'While the window stays open, every write to the table also writes a change-log entry for the old table (WRITE_OVERHEAD: more WAL and I/O per write), and the revert backlog (writes a revert must carry back, applied in rounds before its short lock) grows, as does the disk held by the old table and the log. Keep the window as long as the checks need, not longer.',
    '',
  ];
}
