import { UserError } from '../model/errors.js';

/**
 * A value the runner sends where the script's `\if` block would have psql send it: the COPY statement psql's
 * `\copy … FROM PROGRAM 'printenv ENV'` sends, with the environment variable's value as its data. The value
 * (the FDW password) never becomes statement text or a bound parameter, so no statement log or
 * pg_stat_activity shows it.
 */
export interface CopyInjection {
  /** Offset in the file of the line that psql would run. */
  readonly offset: number;
  /** `COPY table FROM STDIN options`, as psql sends it. */
  readonly copy: string;
  /** The COPY data: the value and a newline, as printenv prints it. */
  readonly data: string;
}

const GETENV = /^\\getenv[ \t]+(\w+)[ \t]+(\w+)[ \t]*$/;
const IF_DEFINED = /^\\if[ \t]+:\{\?(\w+)\}[ \t]*$/;
const ENDIF = /^\\endif[ \t]*$/;
const COPY_PRINTENV =
  /^\\copy ([a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*) FROM PROGRAM 'printenv (\w+)'( WITH \([^\n]*\))?[ \t]*$/;

/**
 * The psql meta-commands a move's 02-setup.target.sql uses besides `\ir` and `\set` (src/run/includes.ts):
 *
 *     \getenv VAR ENVNAME
 *     \if :{?VAR}
 *     \copy schema.table FROM PROGRAM 'printenv ENVNAME' WITH (…)
 *     \endif
 *
 * Handled the way psql runs them: VAR is ENVNAME from `env`; the block's `\copy` lines run only when it is
 * set. The lines are blanked out of the text (same length, so error positions stay right) and each `\copy`
 * becomes an injection the runner sends as COPY … FROM STDIN with the value as data. Anything else inside
 * such a block, an `\if` of another form or a `\copy` of another variable, is refused: the runner and psql
 * would disagree.
 */
export function moveMetaCommands(
  file: string,
  script: string,
  env: NodeJS.ProcessEnv,
): { readonly text: string; readonly injections: readonly CopyInjection[] } {
  const vars = new Map<string, { readonly env: string; readonly value: string | undefined }>();
  const injections: CopyInjection[] = [];
  let block: { readonly defined: boolean; readonly variable: string; readonly env: string } | null = null;
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
      vars.set(m[1]!, { env: m[2]!, value: env[m[2]!] });
      blank();
    } else if ((m = IF_DEFINED.exec(line)) !== null) {
      if (block !== null) refuse('nested \\if');
      if (!vars.has(m[1]!)) refuse(`\\if tests ${m[1]!}, which no \\getenv before it sets`);
      const v = vars.get(m[1]!)!;
      block = { defined: v.value !== undefined, variable: m[1]!, env: v.env };
      blank();
    } else if (ENDIF.test(line)) {
      if (block === null) refuse('\\endif without \\if');
      block = null;
      blank();
    } else if (block !== null) {
      const copy = COPY_PRINTENV.exec(line);
      if (copy === null || copy[2] !== block.env)
        refuse(`only "\\copy schema.table FROM PROGRAM 'printenv ${block.env}' …" may stand inside the \\if block`);
      if (block.defined)
        injections.push({
          offset,
          copy: `COPY ${copy![1]!} FROM STDIN${copy![3] ?? ''}`,
          data: `${vars.get(block.variable)!.value!}\n`,
        });
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
