import { UserError } from '../model/errors.js';
import { splitSql } from './split-sql.js';

/** A run of statements from one file, with where it starts in that file (for error positions). */
export interface ScriptPart {
  readonly file: string;
  /** The whole file the part comes from. */
  readonly fileText: string;
  /** Offset of `text` inside `fileText`. */
  readonly base: number;
  readonly text: string;
}

const INCLUDE = /^\\ir[ \t]+(\S+)[ \t]*$/gm;

/**
 * Splices psql `\ir FILE` lines the way psql runs them, so the runner sends
 * exactly the statements psql would: the script up to the line, the included
 * file, then the rest. Only files listed in `includable` (checked against
 * plan.json beforehand) may be included, and only between statements: a line
 * inside a statement or a quoted body would be text to psql, not a command.
 */
export function scriptParts(file: string, script: string, includable: ReadonlyMap<string, string>): ScriptPart[] {
  const parts: ScriptPart[] = [];
  let from = 0;
  for (const m of script.matchAll(INCLUDE)) {
    const target = m[1]!;
    const at = m.index;
    const before = script.slice(from, at);
    if (!betweenStatements(script.slice(0, at))) {
      throw new UserError('PLAN_INVALID', `${file}:${lineOf(script, at)}: "\\ir ${target}" is inside a statement; the runner and psql would disagree on it (make the plan again)`);
    }
    const included = includable.get(target);
    if (included === undefined) {
      throw new UserError('PLAN_INVALID', `${file}:${lineOf(script, at)}: includes ${target}, which plan.json does not list with a sha256; make the plan again`);
    }
    parts.push({ file, fileText: script, base: from, text: before });
    parts.push({ file: target, fileText: included, base: 0, text: included });
    from = at + m[0].length;
  }
  parts.push({ file, fileText: script, base: from, text: script.slice(from) });
  return parts;
}

function betweenStatements(prefix: string): boolean {
  try {
    const last = splitSql(prefix).at(-1);
    return last === undefined || last.text.endsWith(';');
  } catch {
    // An unterminated quote or comment: the line is inside it.
    return false;
  }
}

function lineOf(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length;
}
