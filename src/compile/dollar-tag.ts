/**
 * The dollar tag of the plan's function and DO bodies.
 *
 * Templates write `$sp$`; it is rendered as a mark (NUL, which no quoted name, literal or comment
 * can hold: quote.ts refuses it and PostgreSQL text cannot contain it), and once every stage is
 * rendered one tag is chosen for the whole plan that occurs in none of the bodies it quotes, so a
 * name or an expression holding `$sp$` cannot end a body early. Deterministic: `$sp$` unless a body
 * holds `$sp`, then `$sp1$`, `$sp2$`, … (plans without such text stay byte-identical).
 */

const MARK = '\u0000';
const TEMPLATE_TAG = '$sp$';

/** The helper that renders the mark (Handlebars' lexer refuses NUL in template text). */
export const DOLLAR_HELPER = 'planDollarTag';
export const dollarMark = (): string => MARK;

/** Template text with each `$sp$` replaced by a call of the helper that renders the mark. */
export function markDollarTags(template: string): string {
  return template.replaceAll(TEMPLATE_TAG, `{{${DOLLAR_HELPER}}}`);
}

/** The bodies of a rendered text: what lies between an opening mark and its closing one. */
function bodies(text: string): string[] {
  const parts = text.split(MARK);
  if (parts.length % 2 === 0) throw new Error('internal error: a rendered script has an unpaired dollar tag');
  return parts.filter((_, i) => i % 2 === 1);
}

/**
 * The first tag whose opening text (`$sp`, `$sp1`, …) is in none of the bodies: a body ending in
 * `$sp` would otherwise join the closing `$sp$` into an early end.
 */
export function planDollarTag(rendered: readonly string[]): string {
  const all = rendered.flatMap(bodies);
  for (let i = 0; ; i++) {
    const open = `$sp${i === 0 ? '' : String(i)}`;
    if (!all.some((b) => b.includes(open))) return `${open}$`;
  }
}

/** The rendered text with its marks replaced by the chosen tag. */
export function withDollarTag(rendered: string, tag: string): string {
  return rendered.replaceAll(MARK, tag);
}
