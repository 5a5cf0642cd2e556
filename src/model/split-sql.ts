/**
 * Split a PostgreSQL script into statements exactly where psql would.
 *
 * Users run our stage scripts with `psql -X -f file.sql`;
 * the runner sends the same file statement by statement over node-postgres.
 * To behave identically the split has to follow psql's own lexer
 * (src/fe_utils/psqlscan.l, which mirrors the backend's scan.l), so this is a
 * hand-written transcription of the parts of that lexer that decide where a
 * statement ends:
 *
 * - `;` ends a statement only outside quotes and comments: '...' ('' escape),
 *   E'...' (backslash escapes too), "..." ("" escape), $$...$$ / $tag$...$tag$,
 *   `--` line comments and nested `/* *\/` block comments.
 * - Like psql, `;` inside parentheses does NOT end a statement (psql counts
 *   parentheses; this matters for e.g. `CREATE RULE ... DO (a; b)`).
 * - Like psql, in a statement that starts with CREATE [OR REPLACE]
 *   FUNCTION|PROCEDURE, the words BEGIN / CASE / END outside parentheses,
 *   quotes and comments are counted, so the semicolons of a SQL-standard
 *   `BEGIN ATOMIC ... END` body stay inside the statement. (psql counts any
 *   BEGIN there, not only one followed by ATOMIC; so do we.)
 * - Token boundaries follow the lexer where they matter: identifiers may
 *   contain `$` (so `a$$` is not a dollar quote), `$1` is a parameter,
 *   `1e'...'` is a number followed by an ordinary string (PostgreSQL 15+
 *   "junk" rules), and `:name` is a psql variable reference.
 * - psql reads its input line by line, so a string is never continued
 *   (`E'a'<newline>'b'`) across a line feed; see quoteContinuation.
 *
 * Assumptions: standard_conforming_strings is on (the default since 9.1) and
 * the script contains no psql backslash meta-commands (includes.ts takes
 * those lines out first).
 *
 * Offsets and columns count UTF-16 code units (JavaScript string indices).
 */

export interface SqlStatement {
  /**
   * The statement text exactly as in the file, from its first non-blank,
   * non-comment character through its terminating semicolon (inclusive).
   * A final statement without a semicolon runs to its last token (trailing
   * whitespace and comments are not included).
   */
  readonly text: string;
  /** 1-based line of the statement's first character in the file */
  readonly line: number;
  /** 0-based character offset of text in the file */
  readonly offset: number;
  /**
   * Comment lines (starting with `--`) immediately preceding the statement,
   * without the `--` prefix and trimmed; useful for labels. Only a run of
   * consecutive whole-line `--` comments ending on the line just above the
   * statement counts: a blank line, a block comment or a comment trailing the
   * previous statement's line breaks the run.
   */
  readonly leadingComments: readonly string[];
}

/** Thrown for an unterminated quote, dollar quote or block comment. */
export class SqlSplitError extends Error {
  /** 1-based line where the unterminated construct starts */
  readonly line: number;
  /** 1-based column where the unterminated construct starts */
  readonly column: number;
  /** 0-based character offset where the unterminated construct starts */
  readonly offset: number;
  constructor(message: string, line: number, column: number, offset: number) {
    super(message);
    this.name = 'SqlSplitError';
    this.line = line;
    this.column = column;
    this.offset = offset;
  }
}

// Character codes.
const TAB = 0x09;
const LF = 0x0a;
const VT = 0x0b;
const FF = 0x0c;
const CR = 0x0d;
const SPACE = 0x20;
const DQUOTE = 0x22;
const DOLLAR = 0x24;
const AMP = 0x26;
const QUOTE = 0x27;
const LPAREN = 0x28;
const RPAREN = 0x29;
const STAR = 0x2a;
const PLUS = 0x2b;
const DASH = 0x2d;
const DOT = 0x2e;
const SLASH = 0x2f;
const COLON = 0x3a;
const SEMI = 0x3b;
const BACKSLASH = 0x5c;
const UNDERSCORE = 0x5f;

/** psql's {space}: [ \t\n\r\f\v] */
function isSpace(c: number): boolean {
  return c === SPACE || c === TAB || c === LF || c === CR || c === FF || c === VT;
}

function isNewline(c: number): boolean {
  return c === LF || c === CR;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** {ident_start} / {dolq_start}: [A-Za-z\200-\377_]; every non-ASCII character counts as a letter */
function isIdentStart(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === UNDERSCORE || c >= 0x80;
}

/** {ident_cont}: identifiers may contain digits and `$` after the first character */
function isIdentCont(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === DOLLAR;
}

/** {dolq_cont} and psql's {variable_char}: like ident_cont but without `$` */
function isTagChar(c: number): boolean {
  return isIdentStart(c) || isDigit(c);
}

function isLetter(c: number, lower: string): boolean {
  return c === lower.charCodeAt(0) || c === lower.toUpperCase().charCodeAt(0);
}

/** Maps offsets to 1-based lines; `\r\n`, `\n` and a lone `\r` each end a line. */
class LineIndex {
  private readonly starts: number[] = [0];

  constructor(text: string) {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === LF) {
        this.starts.push(i + 1);
      } else if (c === CR) {
        if (text.charCodeAt(i + 1) === LF) i++;
        this.starts.push(i + 1);
      }
    }
  }

  /** 1-based line and column of a 0-based offset */
  locate(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - (this.starts[lo] ?? 0) + 1 };
  }

  lineOf(offset: number): number {
    return this.locate(offset).line;
  }
}

/** Words that identify CREATE [OR REPLACE] FUNCTION|PROCEDURE, as psql records them (first letter). */
const SIGNATURE_WORDS = new Set(['create', 'function', 'procedure', 'or', 'replace']);

/** ASCII-only lower-casing (pg_strcasecmp semantics); non-ASCII words never match a keyword. */
function keywordOf(word: string): string {
  return word.length <= 9 && /^[A-Za-z]+$/.test(word) ? word.toLowerCase() : '';
}

export function splitSql(script: string): SqlStatement[] {
  const s = script;
  const n = s.length;
  const lines = new LineIndex(s);
  const out: SqlStatement[] = [];

  const fail = (what: string, at: number): never => {
    const { line, column } = lines.locate(at);
    throw new SqlSplitError(`unterminated ${what} starting at line ${line}, column ${column}`, line, column, at);
  };

  // ---- token scanners: each takes the token's first index and returns the index after it ----

  /** `/* ... *\/`, nesting like PostgreSQL */
  const skipBlockComment = (at: number): number => {
    let depth = 0;
    let j = at + 2;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (c === SLASH && s.charCodeAt(j + 1) === STAR) {
        depth++;
        j += 2;
      } else if (c === STAR && s.charCodeAt(j + 1) === SLASH) {
        if (depth === 0) return j + 2;
        depth--;
        j += 2;
      } else {
        j++;
      }
    }
    return fail('block comment', at);
  };

  /** `--` to the end of the line (the newline itself is not part of the comment) */
  const skipLineComment = (at: number): number => {
    let j = at + 2;
    while (j < n && !isNewline(s.charCodeAt(j))) j++;
    return j;
  };

  /**
   * After a closing quote, SQL continues a literal across whitespace containing
   * a newline ('a'<newline>'b') and the lexer stays in the same string mode,
   * which matters for E'...'. psql, however, lexes its input one line at a
   * time with the line feed removed, so its lookahead never crosses a "\n":
   * the only continuation psql sees is one whose newline is a bare "\r" within
   * a single line. Mirror that. ({whitespace_with_newline}{quote}, limited to
   * one psql input line.) Returns the index just after the continuation's
   * opening quote, or -1.
   */
  const quoteContinuation = (from: number): number => {
    let j = from;
    // {non_newline_whitespace}*
    for (;;) {
      const c = s.charCodeAt(j);
      if (c === SPACE || c === TAB || c === FF || c === VT) j++;
      else if (c === DASH && s.charCodeAt(j + 1) === DASH) j = skipLineComment(j);
      else break;
    }
    // {newline}, which can only be a "\r" inside one psql input line
    if (s.charCodeAt(j) !== CR) return -1;
    j++;
    // {special_whitespace}*: spaces, or a comment followed by a newline
    for (;;) {
      const c = s.charCodeAt(j);
      if (c === LF) return -1;
      if (isSpace(c)) {
        j++;
      } else if (c === DASH && s.charCodeAt(j + 1) === DASH) {
        const end = skipLineComment(j);
        if (s.charCodeAt(end) !== CR) return -1;
        j = end + 1;
      } else {
        break;
      }
    }
    return s.charCodeAt(j) === QUOTE ? j + 1 : -1;
  };

  /** '...' with '' escapes; with backslashEscapes (E'...') a backslash escapes the next character */
  const skipString = (quoteAt: number, tokenStart: number, backslashEscapes: boolean): number => {
    let j = quoteAt + 1;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (backslashEscapes && c === BACKSLASH) {
        j += 2;
      } else if (c === QUOTE) {
        if (s.charCodeAt(j + 1) === QUOTE) {
          j += 2;
        } else {
          const next = quoteContinuation(j + 1);
          if (next < 0) return j + 1;
          j = next;
        }
      } else {
        j++;
      }
    }
    return fail(backslashEscapes ? "escape string (E'...')" : 'quoted string', tokenStart);
  };

  /** "..." with "" escapes */
  const skipQuotedIdentifier = (quoteAt: number, tokenStart: number): number => {
    let j = quoteAt + 1;
    while (j < n) {
      if (s.charCodeAt(j) === DQUOTE) {
        if (s.charCodeAt(j + 1) !== DQUOTE) return j + 1;
        j += 2;
      } else {
        j++;
      }
    }
    return fail('quoted identifier', tokenStart);
  };

  /** `$`: a $n parameter, a $tag$ dollar quote, or a lone `$` */
  const skipDollar = (at: number): number => {
    let j = at + 1;
    if (isDigit(s.charCodeAt(j))) {
      // {param}, or {param_junk} when an identifier follows
      while (isDigit(s.charCodeAt(j))) j++;
      if (isIdentStart(s.charCodeAt(j))) {
        while (isIdentCont(s.charCodeAt(j))) j++;
      }
      return j;
    }
    if (isIdentStart(s.charCodeAt(j))) {
      j++;
      while (isTagChar(s.charCodeAt(j))) j++;
    }
    if (s.charCodeAt(j) !== DOLLAR) return at + 1; // {dolqfailed}: only the `$` is consumed
    const delimiter = s.slice(at, j + 1);
    const close = s.indexOf(delimiter, j + 1);
    if (close < 0) return fail(`dollar-quoted string (${delimiter})`, at);
    return close + delimiter.length;
  };

  /** numbers, including the lexer's "junk" forms such as 1e or 0x1F or 12abc */
  const skipNumber = (at: number): number => {
    let j = at;
    const digits = (): void => {
      while (isDigit(s.charCodeAt(j)) || (s.charCodeAt(j) === UNDERSCORE && isDigit(s.charCodeAt(j + 1)))) j++;
    };
    digits();
    if (s.charCodeAt(j) === DOT && s.charCodeAt(j + 1) !== DOT) {
      j++;
      digits();
    }
    const e = s.charCodeAt(j);
    if (isLetter(e, 'e')) {
      let k = j + 1;
      const sign = s.charCodeAt(k);
      if (sign === PLUS || sign === DASH) k++;
      if (isDigit(s.charCodeAt(k))) {
        j = k; // {real}
        digits();
      } else if (k > j + 1) {
        return k; // {realfail}: 1e+ / 1e-
      }
    }
    if (isIdentStart(s.charCodeAt(j))) {
      while (isIdentCont(s.charCodeAt(j))) j++; // {integer_junk} / {numeric_junk} / {real_junk}
    }
    return j;
  };

  // ---- per-statement state ----
  let start = -1; // offset of the current statement's first character, -1 between statements
  let lastTokenEnd = -1;
  let leadingComments: string[] = [];
  let parenDepth = 0;
  let beginDepth = 0;
  let identifierCount = 0;
  let signature: string[] = ['', '', '', ''];

  // ---- between statements: the run of `--` comment lines seen so far ----
  let pending: string[] = [];
  let pendingLastLine = -1;

  const noteLineComment = (at: number, end: number): void => {
    let k = at - 1;
    while (k >= 0) {
      const c = s.charCodeAt(k);
      if (c === SPACE || c === TAB || c === FF || c === VT) k--;
      else break;
    }
    if (k >= 0 && !isNewline(s.charCodeAt(k))) {
      // trails something on the same line (e.g. the previous statement): not a comment line
      pending = [];
      pendingLastLine = -1;
      return;
    }
    const line = lines.lineOf(at);
    const textOf = s.slice(at + 2, end).trim();
    if (pending.length > 0 && pendingLastLine === line - 1) pending.push(textOf);
    else pending = [textOf];
    pendingLastLine = line;
  };

  /** psql's BEGIN ... END heuristic for CREATE [OR REPLACE] FUNCTION|PROCEDURE */
  const onIdentifier = (word: string): void => {
    const keyword = keywordOf(word);
    if (SIGNATURE_WORDS.has(keyword) && identifierCount < signature.length) {
      signature[identifierCount] = keyword.charAt(0);
    }
    identifierCount++;
    const [w0, w1, w2, w3] = signature;
    const routine =
      w0 === 'c' && (w1 === 'f' || w1 === 'p' || (w1 === 'o' && w2 === 'r' && (w3 === 'f' || w3 === 'p')));
    if (!routine || parenDepth !== 0) return;
    if (keyword === 'begin') beginDepth++;
    else if (keyword === 'case') {
      if (beginDepth >= 1) beginDepth++;
    } else if (keyword === 'end') {
      if (beginDepth > 0) beginDepth--;
    }
  };

  const emit = (end: number): void => {
    out.push({ text: s.slice(start, end), line: lines.lineOf(start), offset: start, leadingComments });
    start = -1;
  };

  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === DASH && s.charCodeAt(i + 1) === DASH) {
      const end = skipLineComment(i);
      if (start < 0) noteLineComment(i, end);
      i = end;
      continue;
    }
    if (c === SLASH && s.charCodeAt(i + 1) === STAR) {
      i = skipBlockComment(i);
      if (start < 0) {
        pending = [];
        pendingLastLine = -1;
      }
      continue;
    }

    if (start < 0) {
      start = i;
      leadingComments = pending.length > 0 && pendingLastLine === lines.lineOf(i) - 1 ? pending : [];
      pending = [];
      pendingLastLine = -1;
      parenDepth = 0;
      beginDepth = 0;
      identifierCount = 0;
      signature = ['', '', '', ''];
    }

    const next = s.charCodeAt(i + 1);
    let end: number;
    if (c === SEMI) {
      if (parenDepth === 0 && beginDepth === 0) {
        emit(i + 1);
        i++;
        continue;
      }
      end = i + 1;
    } else if (c === LPAREN) {
      parenDepth++;
      end = i + 1;
    } else if (c === RPAREN) {
      if (parenDepth > 0) parenDepth--;
      end = i + 1;
    } else if (c === QUOTE) {
      end = skipString(i, i, false);
    } else if (c === DQUOTE) {
      end = skipQuotedIdentifier(i, i);
    } else if (c === DOLLAR) {
      end = skipDollar(i);
    } else if (isDigit(c) || (c === DOT && isDigit(next))) {
      end = skipNumber(i);
    } else if (c === COLON) {
      if (next === COLON) {
        end = i + 2; // typecast
      } else if (isTagChar(next)) {
        end = i + 2; // psql variable reference :name
        while (isTagChar(s.charCodeAt(end))) end++;
      } else {
        end = i + 1;
      }
    } else if (isIdentStart(c)) {
      if (next === QUOTE && isLetter(c, 'e')) {
        end = skipString(i + 1, i, true);
      } else if (next === QUOTE && (isLetter(c, 'b') || isLetter(c, 'x') || isLetter(c, 'n'))) {
        end = skipString(i + 1, i, false);
      } else if (next === AMP && isLetter(c, 'u') && s.charCodeAt(i + 2) === QUOTE) {
        end = skipString(i + 2, i, false);
      } else if (next === AMP && isLetter(c, 'u') && s.charCodeAt(i + 2) === DQUOTE) {
        end = skipQuotedIdentifier(i + 2, i);
      } else {
        end = i + 1;
        while (isIdentCont(s.charCodeAt(end))) end++;
        onIdentifier(s.slice(i, end));
      }
    } else {
      end = i + 1;
    }
    lastTokenEnd = end;
    i = end;
  }

  if (start >= 0) emit(lastTokenEnd);
  return out;
}
