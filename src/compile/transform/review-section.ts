import type { UnmappedColumn } from './derive.js';
import type { TransformManifest } from './manifest.js';

function defaultText(u: UnmappedColumn): string {
  return u.default === null ? 'NULL (it has no default)' : `its default \`${u.default}\``;
}

/**
 * Columns of the rebuilt table no source column fills. Their value is evaluated once per row; the
 * batching makes that differ from PostgreSQL's own ADD COLUMN for a default like now().
 */
function addedColumnLines(cols: readonly UnmappedColumn[]): string[] {
  if (cols.length === 0) return [];
  const out = ['Columns no source column fills, and when they get their value:', ''];
  for (const u of cols) {
    out.push(
      u.default === null
        ? `- \`${u.column}\`: NULL in every row (it has no default).`
        : `- \`${u.column}\`: ${defaultText(u)}, evaluated once per row when the row first reaches the copy: by the backfill batch that copies it, or, for a row written during the run, by the first catch-up round (or the swap) that applies it. It is never evaluated again when later writes to the row are applied.`,
    );
  }
  if (cols.some((u) => u.default !== null)) {
    out.push(
      '',
      "Each backfill batch is its own transaction: a default such as `now()` takes one value per batch, where PostgreSQL's own ADD COLUMN gives every existing row the same one. A row whose key changes during the run counts as new; a row deleted and inserted again under the same key may keep the value its deleted row had.",
    );
  }
  out.push('');
  return out;
}

/** Columns of the old table the rebuilt one does not have: what revert leaves in them. */
function droppedColumnLines(cols: readonly UnmappedColumn[]): string[] {
  if (cols.length === 0) return [];
  const out = ['Columns of the old table that the rebuilt table does not have, as revert leaves them:', ''];
  for (const u of cols)
    out.push(
      `- \`${u.column}\`: kept as it was in the old table for rows that existed before the swap; rows inserted after the swap get ${defaultText(u)}.`,
    );
  out.push(
    '',
    'A row whose key changed after the swap counts as inserted after the swap (its old key as deleted); a row deleted and inserted again under the same key may keep the value its deleted row had.',
    '',
  );
  return out;
}

/** The "What changes" section of the review summary: source vs target, before any SQL. */
export function transformReviewLines(t: TransformManifest): string[] {
  if (t.differences.length === 0) {
    return [
      'Rebuild only: the table gets a fresh heap and fresh indexes (no bloat); its columns, indexes, constraints, foreign keys, owned sequences, grants and comments stay as they are.',
      '',
    ];
  }
  const out = ['The rebuilt table differs from the table as it is now (everything not listed stays as it is):', ''];
  for (const d of t.differences) out.push(`- ${d}`);
  out.push('', 'Every copying statement names its columns. Target column ← source expression:', '');
  for (const m of t.forward) out.push(`- \`${m.column}\` ← \`${m.expr}\``);
  out.push('');
  out.push(...addedColumnLines(t.unmapped?.forward ?? []));
  if (t.reverse === null) {
    out.push(
      `**Revert is unavailable** for this plan: ${t.revertUnavailable.join('; ')}. Once the swap commits, the only way back is another rebuild.`,
      '',
    );
  } else {
    out.push(
      'After the swap, writes to the rebuilt table are carried back to the old one (for revert) with: ' +
        t.reverse.map((m) => `\`${m.column}\` ← \`${m.expr}\``).join(', ') +
        '.',
      '',
    );
    out.push(...droppedColumnLines(t.unmapped?.reverse ?? []));
  }
  if (t.narrowReferences.length > 0) {
    out.push(
      `Foreign keys into the table keep their narrower columns: ${t.narrowReferences.join(', ')}. They overflow where the old key did; plan again with \`--with-referencing\` to convert them too.`,
      '',
    );
  }
  if (t.spec.withReferencing && t.spec.keyToBigint) {
    out.push(
      "Referencing tables get their own plans (written beside this one, one folder per table), to run after this plan's cleanup.",
      '',
    );
  }
  return out;
}
