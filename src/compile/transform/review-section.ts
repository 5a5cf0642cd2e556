import type { TransformManifest } from './manifest.js';

/** The "What changes" section of the review summary: source vs target, before any SQL. */
export function transformReviewLines(t: TransformManifest): string[] {
  if (t.differences.length === 0) {
    return ['Rebuild only: the table gets a fresh heap and fresh indexes (no bloat); its columns, indexes, constraints, foreign keys, owned sequences, grants and comments stay as they are.', ''];
  }
  const out = ['The rebuilt table differs from the table as it is now (everything not listed stays as it is):', ''];
  for (const d of t.differences) out.push(`- ${d}`);
  out.push('', 'Every copying statement names its columns. Target column ← source expression:', '');
  for (const m of t.forward) out.push(`- \`${m.column}\` ← \`${m.expr}\``);
  out.push('');
  if (t.reverse === null) {
    out.push(`**Revert is unavailable** for this plan: ${t.revertUnavailable.join('; ')}. Once the swap commits, the only way back is another rebuild.`, '');
  } else {
    out.push('After the swap, writes to the rebuilt table are carried back to the old one (for revert) with: ' + t.reverse.map((m) => `\`${m.column}\` ← \`${m.expr}\``).join(', ') + '.', '');
  }
  if (t.narrowReferences.length > 0) {
    out.push(`Foreign keys into the table keep their narrower columns: ${t.narrowReferences.join(', ')}. They overflow where the old key did; plan again with \`--with-referencing\` to convert them too.`, '');
  }
  if (t.spec.withReferencing && t.spec.keyToBigint) {
    out.push('Referencing tables get their own plans (written beside this one, one folder per table), to run after this plan\'s cleanup.', '');
  }
  return out;
}
