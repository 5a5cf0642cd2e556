/**
 * The one quoting module. Every identifier and literal that reaches SQL text
 * goes through here; schema and name are always quoted separately.
 */

/** Always double-quotes, so reserved words, case and unicode need no thought. */
export function ident(name: string): string {
  if (name.length === 0) throw new Error('empty identifier');
  if (name.includes('\u0000')) throw new Error('identifier contains NUL');
  return '"' + name.replaceAll('"', '""') + '"';
}

export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

/**
 * A standard-conforming string literal. Backslashes are plain characters
 * there; we refuse to run with standard_conforming_strings off (preflight).
 */
export function literal(value: string): string {
  if (value.includes('\u0000')) throw new Error('literal contains NUL');
  return "'" + value.replaceAll("'", "''") + "'";
}

/** Byte length as PostgreSQL counts it for NAMEDATALEN. */
export function byteLength(name: string): number {
  return Buffer.byteLength(name, 'utf8');
}

/**
 * Picks a dollar-quote tag that does not occur in `body`, deterministically,
 * so a hostile name inside a function body cannot end it early. The tag without
 * its closing `$` must not occur either: a body ending in `$sp` would join the
 * closing `$sp$` into an earlier end.
 */
export function dollarTag(body: string, base = 'sp'): string {
  for (let i = 0; ; i++) {
    const open = `$${base}${i === 0 ? '' : String(i)}`;
    if (!body.includes(open)) return `${open}$`;
  }
}

/**
 * Text placed in a `-- comment`: a line break inside a quoted name would end
 * the comment and turn the rest of the name into SQL, so control characters
 * are shown escaped instead.
 */
export function commentText(text: string): string {
  return text.replace(
    /[\u0000-\u001f\u007f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
