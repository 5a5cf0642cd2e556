import { parseTableName } from '../../introspect/introspect.js';
import { UserError } from '../../model/errors.js';
import { FDW_AUTH_MODES, type FdwAuth } from '../../compile/move/context.js';
import { checkOutDir } from '../../planning/out-dir.js';
import { planMove, writeMovePlan } from '../../planning/plan-move.js';
import { connectClient } from '../../run/connect.js';
import { connectionConfig } from '../connection.js';
import { jsonAnswer } from '../machine-output.js';
import type { MoveOptions } from '../../compile/move/context.js';

export interface PlanMoveArgs {
  readonly tables: readonly string[];
  readonly targetUrl: string;
  readonly out: string;
  readonly url?: string;
  readonly force?: boolean;
  readonly json?: boolean;
  readonly withFkClosure?: boolean;
  readonly fdwAuth?: string;
  readonly fdwSslcert?: string;
  readonly fdwSslkey?: string;
  readonly sequenceMargin?: number;
  readonly holdCutover?: boolean;
  readonly reversible?: boolean;
  readonly splitSharedSequences?: boolean;
  readonly holdWaitSeconds?: number;
  readonly maxRowsPerSecond?: number;
  readonly batchPages?: number;
}

function wholeNumber(flag: string, value: number | undefined, lo: number, hi: number): number | undefined {
  if (value !== undefined && (!Number.isInteger(value) || value < lo || value > hi))
    throw new UserError('BAD_OPTION', `${flag} must be a whole number from ${lo} to ${hi}, got ${String(value)}`);
  return value;
}

/** The move options given on the command line (the rest take MOVE_DEFAULTS). */
function moveOptions(args: PlanMoveArgs): Partial<MoveOptions> {
  // Only --hold-cutover makes the catch-up wait for a release: a bound on that wait without it would be ignored.
  if (args.holdWaitSeconds !== undefined && args.holdCutover !== true)
    throw new UserError(
      'BAD_OPTION',
      '--hold-wait-seconds bounds the wait for a release that only --hold-cutover asks for in a move plan: add --hold-cutover, or drop --hold-wait-seconds',
    );
  const given: Partial<Record<keyof MoveOptions, unknown>> = {
    sequenceMargin: wholeNumber('--sequence-margin', args.sequenceMargin, 0, Number.MAX_SAFE_INTEGER),
    holdWaitSeconds: wholeNumber('--hold-wait-seconds', args.holdWaitSeconds, 1, 86_400),
    maxRowsPerSecond: wholeNumber('--max-rows-per-second', args.maxRowsPerSecond, 0, 1_000_000_000),
    batchPages: wholeNumber('--batch-pages', args.batchPages, 1, 10_000_000),
    holdCutover: args.holdCutover,
    // Only when asked for: a plan without it keeps the plan id and files it had before the option existed.
    reversible: args.reversible === true ? true : undefined,
    splitSharedSequences: args.splitSharedSequences === true ? true : undefined,
  };
  return Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<MoveOptions>;
}

/** --fdw-auth and the options that go with it, checked before anything connects. */
function fdwAuthOf(args: PlanMoveArgs): FdwAuth {
  const mode = args.fdwAuth ?? 'password';
  if (!(FDW_AUTH_MODES as readonly string[]).includes(mode))
    throw new UserError(
      'BAD_ARGUMENT',
      `--fdw-auth ${mode} is not a mode; use one of ${FDW_AUTH_MODES.join(', ')} (docs/cross-cluster-usage.md)`,
    );
  const cert = args.fdwSslcert !== undefined || args.fdwSslkey !== undefined;
  if (mode === 'cert' && (args.fdwSslcert === undefined || args.fdwSslkey === undefined))
    throw new UserError(
      'BAD_ARGUMENT',
      '--fdw-auth cert needs --fdw-sslcert PATH and --fdw-sslkey PATH (the client certificate and key, files on the target host)',
    );
  if (mode !== 'cert' && cert)
    throw new UserError('BAD_ARGUMENT', '--fdw-sslcert and --fdw-sslkey go with --fdw-auth cert');
  return mode as FdwAuth;
}

/** `shadowpack plan --table S.T … --target-url URL --out DIR`: a move plan (issue 15). */
export async function planMoveCommand(args: PlanMoveArgs, print: (line: string) => void): Promise<void> {
  const tables = args.tables.map((t) => {
    const { schema, table } = parseTableName(t);
    return { schema, table };
  });
  const fdwAuth = fdwAuthOf(args);
  if (args.sequenceMargin !== undefined && (!Number.isInteger(args.sequenceMargin) || args.sequenceMargin < 0))
    throw new UserError(
      'BAD_OPTION',
      `--sequence-margin must be a whole number >= 0, got ${String(args.sequenceMargin)}`,
    );
  const options = moveOptions(args);
  checkOutDir(args.out, args.force ?? false);
  const source = await connectClient(connectionConfig(args.url));
  try {
    const target = await connectClient(connectionConfig(args.targetUrl));
    try {
      const plan = await planMove(source, target, {
        tables,
        withFkClosure: args.withFkClosure ?? false,
        options: { fdwAuth, ...options },
        ...(fdwAuth === 'cert' ? { fdwCert: { sslcert: args.fdwSslcert!, sslkey: args.fdwSslkey! } } : {}),
      });
      writeMovePlan(args.out, plan, args.force ?? false);
      const m = plan.manifest;
      if (args.json) {
        print(
          jsonAnswer({
            dir: args.out,
            kind: 'move',
            planHash: m.planHash,
            tables: m.tables.map((t) => `${t.schema}.${t.name}`),
            stages: m.stages.map((s) => ({ file: s.file, side: s.side, sha256: s.sha256 })),
            bindings: m.bindings,
          }),
        );
      } else {
        print(
          `move plan for ${m.tables.map((t) => `${t.schema}.${t.name}`).join(', ')} written to ${args.out} (plan hash ${m.planHash})`,
        );
        print(
          `source: database ${m.source.database} (PostgreSQL ${m.source.serverVersionNum}); target: database ${m.target.database} on ${m.target.host ?? 'local socket'}:${m.target.port ?? 5432} (PostgreSQL ${m.target.serverVersionNum})`,
        );
        print(
          `review ${args.out}/README.md, then run each stage on its side: psql -X -v ON_ERROR_STOP=1 -d <side> -f FILE${fdwAuth === 'password' ? ' (export SHADOWPACK_FDW_PASSWORD for 02-setup.target.sql if the source asks for a password)' : ''}`,
        );
      }
    } finally {
      await target.end().catch(() => undefined);
    }
  } finally {
    await source.end().catch(() => undefined);
  }
}
