import { UserError } from '../model/errors.js';
import { splitSql } from '../model/split-sql.js';

/** A run of statements from one file, with where it starts in that file (for error positions). */
export interface ScriptPart {
  readonly file: string;
  /** The whole file the part comes from. */
  readonly fileText: string;
  /** Offset of `text` inside `fileText`. */
  readonly base: number;
  readonly text: string;
}

/** The psql meta-commands our scripts use, each on a line of its own: `\ir FILE` and `\set NAME VALUE`. */
const META = /^\\(ir|set)[ \t]+(\S+)(?:[ \t]+(\S+))?[ \t]*$/gm;

/**
 * psql variables the scripts set for themselves so that psql behaves as the runner does however it is
 * called: stop at the first error, and show a refusal as its message and hint without the PL/pgSQL
 * CONTEXT lines. The runner always stops at the first error and reports message, detail and hint, so
 * for it these lines change nothing; any other variable would be a behaviour the runner does not have.
 */
const PSQL_SETTINGS: ReadonlyMap<string, string> = new Map([
  ['ON_ERROR_STOP', 'on'],
  ['SHOW_CONTEXT', 'never'],
]);

/**
 * Handles the psql meta-command lines of a script the way psql runs them, so the runner sends
 * exactly the statements psql would: `\ir FILE` splices the included file in place of the line;
 * `\set` of one of PSQL_SETTINGS is left out (nothing to send). Only files listed in `includable`
 * (checked against plan.json beforehand) may be included, and a meta-command only between
 * statements: a line inside a statement or a quoted body would be text to psql, not a command.
 */
export function scriptParts(file: string, script: string, includable: ReadonlyMap<string, string>): ScriptPart[] {
  const parts: ScriptPart[] = [];
  let from = 0;
  for (const m of script.matchAll(META)) {
    const [line, command, arg, value] = m as unknown as [string, 'ir' | 'set', string, string | undefined];
    const at = m.index;
    // The previous meta-command line was between statements, so the text since it tells.
    if (!betweenStatements(script.slice(from, at))) {
      throw new UserError(
        'PLAN_INVALID',
        `${file}:${lineOf(script, at)}: "${line.trim()}" is inside a statement; the runner and psql would disagree on it (make the plan again)`,
      );
    }
    parts.push({ file, fileText: script, base: from, text: script.slice(from, at) });
    if (command === 'ir') {
      const included = value === undefined ? includable.get(arg) : undefined;
      if (included === undefined) {
        throw new UserError(
          'PLAN_INVALID',
          `${file}:${lineOf(script, at)}: includes ${arg}, which plan.json does not list with a sha256; make the plan again`,
        );
      }
      // Its own meta-command lines are handled the same way (it may set, not include further).
      parts.push(...scriptParts(arg, included, new Map()));
    } else if (PSQL_SETTINGS.get(arg) !== value) {
      throw new UserError(
        'PLAN_INVALID',
        `${file}:${lineOf(script, at)}: "${line.trim()}" is a psql setting the runner does not know; make the plan again`,
      );
    }
    from = at + line.length;
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
