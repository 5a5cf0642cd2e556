import { UserError } from '../model/errors.js';

/**
 * A setting the runner sets where the script's `\if` block would have set it under psql, as a bound
 * parameter: the value (the FDW password) never becomes SQL text, a statement or a log line.
 */
export interface SettingInjection {
  /** Offset in the file of the line that psql would run. */
  readonly offset: number;
  readonly setting: string;
  readonly value: string;
}

const GETENV = /^\\getenv[ \t]+(\w+)[ \t]+(\w+)[ \t]*$/;
const IF_DEFINED = /^\\if[ \t]+:\{\?(\w+)\}[ \t]*$/;
const ENDIF = /^\\endif[ \t]*$/;
const SET_LOCAL_VAR = /^SET LOCAL ([a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*) = :'(\w+)';[ \t]*$/;

/**
 * The psql meta-commands a move's 02-setup.target.sql uses besides `\ir` and `\set` (src/run/includes.ts):
 *
 *     \getenv VAR ENVNAME
 *     \if :{?VAR}
 *     SET LOCAL schema.setting = :'VAR';
 *     \endif
 *
 * Handled the way psql runs them: VAR is ENVNAME from `env`; the block's SET LOCAL lines run only when
 * it is set. The lines are blanked out of the text (same length, so error positions stay right) and
 * each SET LOCAL becomes an injection the runner sends with the value as a parameter. Anything else
 * inside such a block, or an `\if` of another form, is refused: the runner and psql would disagree.
 */
export function moveMetaCommands(
  file: string,
  script: string,
  env: NodeJS.ProcessEnv,
): { readonly text: string; readonly injections: readonly SettingInjection[] } {
  const vars = new Map<string, string | undefined>();
  const injections: SettingInjection[] = [];
  let block: { readonly defined: boolean; readonly variable: string } | null = null;
  let out = '';
  let offset = 0;
  const lines = script.split('\n');
  lines.forEach((line, i) => {
    const blank = () => (out += ' '.repeat(line.length));
    const refuse = (why: string): never => {
      throw new UserError(
        'PLAN_INVALID',
        `${file}:${i + 1}: ${why}; the runner and psql would disagree on it (make the plan again)`,
      );
    };
    let m: RegExpExecArray | null;
    if ((m = GETENV.exec(line)) !== null) {
      if (block !== null) refuse('\\getenv inside \\if');
      vars.set(m[1]!, env[m[2]!]);
      blank();
    } else if ((m = IF_DEFINED.exec(line)) !== null) {
      if (block !== null) refuse('nested \\if');
      if (!vars.has(m[1]!)) refuse(`\\if tests ${m[1]!}, which no \\getenv before it sets`);
      block = { defined: vars.get(m[1]!) !== undefined, variable: m[1]! };
      blank();
    } else if (ENDIF.test(line)) {
      if (block === null) refuse('\\endif without \\if');
      block = null;
      blank();
    } else if (block !== null) {
      const set = SET_LOCAL_VAR.exec(line);
      if (set === null || set[2] !== block.variable)
        refuse(`only "SET LOCAL name = :'${block.variable}';" may stand inside the \\if block`);
      if (block.defined) injections.push({ offset, setting: set![1]!, value: vars.get(block.variable)! });
      blank();
    } else if (/^\\(if|elif|else|endif|getenv)\b/.test(line)) {
      refuse(`"${line.trim()}" is a psql meta-command the runner does not know`);
    } else {
      out += line;
    }
    if (i < lines.length - 1) out += '\n';
    offset += line.length + 1;
  });
  if (block !== null) throw new UserError('PLAN_INVALID', `${file}: \\if without \\endif; make the plan again`);
  return { text: out, injections };
}
