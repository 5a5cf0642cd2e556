import { bytes, duration } from '../compile/review-plan.js';
import { HAZARD_TEXT, type HazardCode } from '../compile/stages.js';
import { qualified } from '../model/quote.js';
import type { BatchManifest } from './manifest.js';

/** Table cells hold catalog names: keep a `|` or a line break from breaking the table. */
function cell(text: string): string {
  return text
    .replaceAll('\\', '\\\\')
    .replaceAll('|', '\\|')
    .replace(/[\r\n]+/g, ' ');
}

/** The batch's review summary (DIR/README.md): pure, from the manifest without its hashes. */
export function renderBatchReadme(m: Omit<BatchManifest, 'readmeSha256' | 'batchHash'>): string {
  const t = m.totals;
  const e = m.environment;
  const out: string[] = [];
  const sel = m.selection;
  const chosen =
    sel.tables.length > 0
      ? `the tables given (${sel.tables.map((x) => `\`${x}\``).join(', ')})`
      : `${sel.schemas.length > 0 ? `schema${sel.schemas.length > 1 ? 's' : ''} ${sel.schemas.map((s) => `\`${s}\``).join(', ')}` : 'every schema'}${sel.bloated ? `, tables with at least ${Math.round(sel.bloated.minRatio * 100)} % of the heap reclaimable and ${bytes(sel.bloated.minSizeBytes)} or more` : ''}`;
  out.push(`# Batch: ${t.tables} table${t.tables === 1 ? '' : 's'} of database \`${e.database}\``, '');
  out.push(
    `Chosen: ${chosen}. Made with shadowpack ${m.tool.version} on PostgreSQL ${e.serverVersion}${e.systemIdentifier !== null ? `, cluster ${e.systemIdentifier}` : ''}.`,
    '',
  );
  out.push(
    'Each table has its own plan folder (`<schema>.<table>/`), exactly what `shadowpack plan --table` writes: review its README.md, diff it, or run it alone with psql. `plan.json` here lists the folders with their plan hashes; the batch hash covers them all.',
    '',
  );
  out.push('## Summary', '');
  out.push(`- Tables: ${t.tables}; rows ≈ ${t.rows.toLocaleString('en-US')}; size now ${bytes(t.totalBytes)}.`);
  out.push(
    `- Expected gain ≈ ${bytes(t.reclaimableBytes)} (the sum of each table's reclaimable bytes, as \`shadowpack bloat\` estimates them).`,
  );
  out.push(
    `- Free disk needed at the peak ≈ ${bytes(t.peakDiskBytes)}: the largest table's packed copy, since the tables run one after another (with \`--parallel-tables N\`, the N largest together), plus its change log.`,
  );
  out.push(
    `- WAL written ≈ ${bytes(t.walBytes)} or more (each copy, plus about twice each application write during its run).`,
  );
  out.push(
    `- Duration ≈ ${duration(t.estimatedSeconds)} at the rates each table's summary assumes, one after another; catch-up adds the time to apply what the application writes meanwhile.`,
  );
  out.push('');
  out.push('## Order', '');
  out.push(
    `The tables run in this order: ${m.order}. Each stops after its swap unless the run is given \`--until cleanup\` (see "Running"). Tables that share a foreign key are never rebuilt at the same time, even with \`--parallel-tables\`.`,
    '',
  );
  out.push(
    '| # | table | rows | size | reclaimable | disk needed | ≈ duration | locks that block the application | shares a foreign key with | folder |',
  );
  out.push('|---|---|---|---|---|---|---|---|---|---|');
  m.tables.forEach((x, i) => {
    out.push(
      `| ${i + 1} | ${cell(qualified(x.schema, x.name))} | ${x.rows.toLocaleString('en-US')} | ${bytes(x.totalBytes)} | ${bytes(x.reclaimableBytes)} | ${bytes(x.diskNeededBytes)} | ${duration(x.estimatedSeconds)} | ${cell(x.locks.join('; ') || 'none')} (queued ≤ ${x.lockBudgetMs} ms each) | ${cell(x.neighbours.join(', ') || '-')} | \`${cell(x.dir)}/\` |`,
    );
  });
  out.push('');
  const hazards = [...new Set(m.tables.flatMap((x) => x.hazards))].sort() as HazardCode[];
  out.push('## Hazards', '');
  if (hazards.length === 0) out.push('None.');
  for (const h of hazards) {
    const which = m.tables.filter((x) => x.hazards.includes(h)).map((x) => qualified(x.schema, x.name));
    out.push(
      `- **${h}**: ${HAZARD_TEXT[h]}. ${which.length === m.tables.length ? 'Every table.' : `Tables: ${which.join(', ')}.`}`,
    );
  }
  out.push('');
  out.push('## Skipped', '');
  if (m.skipped.length === 0) out.push('None: every table chosen has a plan.');
  for (const s of m.skipped) out.push(`- ${qualified(s.schema, s.name)}: ${s.reason.split('\n')[0]}`);
  out.push('');
  out.push('## Running', '');
  out.push(
    '- `shadowpack run --plan DIR --expect-hash <batch hash>` runs the tables one after another. Like a single-table run, it stops after a swap: the table just swapped keeps its revert window open, and the batch goes no further until that table is cleaned up (`shadowpack run --plan DIR/<schema>.<table> --until cleanup`, or revert it with `--stage revert`). Running the batch again then goes on with the next table.',
  );
  out.push(
    "- `shadowpack run --plan DIR --until cleanup` runs every table through cleanup, unattended (what `pg_repack -d db` does); `--parallel-tables N` runs up to N at once (never two that share a foreign key), needing the N largest tables' disk at once.",
  );
  out.push(
    '- A table whose run stops before its swap with nothing changed (a lock not taken within its budget, a snapshot taken under the swap lock) is tried again, three attempts in all. Then the batch stops: that table is aborted (nothing of it is left, the table is as it was) and the tables after it are untouched. Run the batch again to go on; finished tables are never redone.',
  );
  out.push(
    '- `shadowpack status --plan DIR` shows every table; `shadowpack diff A B` compares two batches table by table.',
  );
  out.push('');
  return out.join('\n');
}
