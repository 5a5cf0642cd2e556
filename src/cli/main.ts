import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_OPTIONS, type NumericOptionKey } from '../compile/options.js';
import { CONTROL_FLAGS } from './control-flags.js';
import { ALL_STAGES, FORWARD_STAGES, type StageName } from '../compile/stages.js';
import { MOVE_STAGES } from '../compile/move/stages.js';
import { UserError } from '../model/errors.js';
import { TOOL_VERSION } from '../version.js';
import { DEFAULT_BLOATED_MIN_RATIO } from './batch-defaults.js';
import { redactSecrets } from './connection.js';
import { errorObject } from './machine-output.js';
import { commandLineOf } from './next-steps.js';
import { usageMessage } from './did-you-mean.js';

// Each command's module is imported when that command runs: `run` then loads neither the planner
// (pgsql-parser, the compiler, Handlebars) nor the embedded server of `demo`, which took about half a
// second of every run's startup, more than psql's start for all seven stage files together.

/** Where a command writes: the process's stdout and stderr, or a test's buffers. */
export interface CliIo {
  readonly out: (line: string) => void;
  readonly err: (text: string) => void;
}

const PROCESS_IO: CliIo = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (text) => process.stderr.write(text),
};

const OPTION_FLAGS: { readonly [K in NumericOptionKey]: string } = {
  lockTimeoutMs: 'lock_timeout of one attempt at a lock that blocks the application',
  lockAttempts:
    'rounds at such a lock (an attempt, or a wait behind a long-held lock) before the stage gives up (nothing changed)',
  backoffBaseMs: 'first pause between lock attempts (doubles, with jitter)',
  backoffMaxMs: 'longest pause between lock attempts',
  lockBudgetMs:
    'total time the application may queue behind the attempts of one locking step; at least --lock-timeout-ms',
  cancelBlockersAfterMs: 'cancel (pg_cancel_backend) sessions holding a conflicting lock after this long; 0 = never',
  waitLockTimeoutMs: 'lock_timeout for locks that block nobody',
  idleTimeoutMs: "idle_in_transaction_session_timeout of the tool's sessions",
  batchPages: 'heap pages copied per committed backfill batch',
  catchupRounds: 'most rounds of the catch-up stage',
  catchupTarget: 'catch-up stops once at most this many log entries remain',
  swapCatchupRounds: 'most catch-up rounds right before the swap lock',
  swapBacklog: 'log entries to leave, at most, for the swap lock',
  swapStatementTimeoutMs: 'statement_timeout of each statement under the swap lock',
  snapshotWaitSeconds: 'how long the swap waits for sessions with old snapshots',
  advisoryWaitSeconds: 'how long a stage waits for another session working on the table',
  verifyRanges: 'key ranges checked by the 04b-verify stage; 0: no such stage',
  buildMaintenanceWorkMemMb:
    "maintenance_work_mem (MB) of each build-stage session (index sorts); 0: the server's setting. N sessions may use N times it",
};

/** --verify-before-swap without --verify-ranges: this many key ranges. */
const DEFAULT_VERIFY_RANGES = 16;

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/**
 * Exit codes, the same in every command (docs/scripting.md): 0 ok; 1 a negative answer (verify
 * FAIL, diff: the plans differ); 2 anything that kept the command from answering: a usage error,
 * a refusal, a connection failure, a failed stage, a bug.
 */
const EXIT_OK = 0;
const EXIT_ERROR = 2;
/** 128 + SIGPIPE: what a shell shows for a tool that stopped because its reader left. */
const EXIT_PIPE_CLOSED = 141;

/** The command line: parses argv, runs the command, returns the exit code (never exits itself). */
export async function main(argv: string[], io: CliIo = PROCESS_IO): Promise<number> {
  const { out, err } = io;
  let code = EXIT_OK;
  // --json (and run --events, which reports its own error event) promise JSON on stdout, failures included.
  const wantsJson = argv.includes('--json');
  const guard = async (fn: () => Promise<void>, json = false) => {
    try {
      await fn();
    } catch (e) {
      reportError(e, json, io);
      code = EXIT_ERROR;
    }
  };
  const planOptions = {
    ...Object.fromEntries(
      Object.entries(OPTION_FLAGS).map(([k, describe]) => [
        kebab(k),
        {
          type: 'number' as const,
          describe: `${describe} (default ${DEFAULT_OPTIONS[k as NumericOptionKey]})`,
          group: 'Plan options:',
        },
      ]),
    ),
    ...Object.fromEntries(Object.entries(CONTROL_FLAGS).map(([k, o]) => [kebab(k), o])),
  };
  try {
    const parser = yargs(argv);
    await parser
      // yargs renders the command's whole help text right after starting its handler, to have it at
      // hand should the command fail later. .fail() below reports a failure in one line instead, so
      // that text was never shown, and rendering it (the display width of every character of every
      // option line) took 40-70 ms of CPU at the start of every command (issue 14).
      .middleware(() => skipHelpCache(parser))
      .scriptName('shadowpack')
      // --help and --version print and return; the caller decides when the process ends.
      .exitProcess(false)
      .version(TOOL_VERSION)
      .strict()
      .demandCommand(1, 'give a command: bloat, plan, run, status, control, verify, show, diff or demo')
      .command(
        'bloat',
        'list the tables worth rebuilding: size, estimated bloat, disk a rebuild needs, whether shadowpack can rebuild it (read-only)',
        (y) =>
          withUrl(y, URL_DESCRIBE)
            .option('schema', {
              type: 'string',
              array: true,
              describe: 'only this schema (repeatable); default: every schema but the system ones',
            })
            .option('min-ratio', {
              type: 'number',
              default: 0,
              describe: 'leave out tables with less than this fraction of the heap reclaimable (0.2 = 20 %)',
            })
            .option('min-size', {
              type: 'string',
              default: '0',
              describe: 'leave out tables smaller than this (table, TOAST and indexes), e.g. 10MB',
            })
            .option('json', JSON_ANSWER),
        (a) =>
          guard(
            async () =>
              (await import('./commands/bloat.js')).bloatCommand(
                {
                  schemas: (a.schema ?? []).map(String),
                  minRatio: a.minRatio,
                  minSize: a.minSize,
                  json: a.json,
                  ...(a.url ? { url: a.url } : {}),
                },
                out,
              ),
            a.json,
          ),
      )
      .command(
        'plan',
        'read a table and write a reviewable plan folder; several tables (--table A --table B, --schema, --bloated): a batch, one folder per table',
        (y) =>
          withUrl(y, URL_DESCRIBE)
            .option('table', {
              type: 'string',
              array: true,
              describe: 'schema.table, as the catalog spells it ("..." quotes names); repeat it for a batch',
            })
            .option('schema', {
              type: 'string',
              array: true,
              describe: 'a batch of every table of this schema (repeatable); with --bloated, only the bloated ones',
              group: 'Batches:',
            })
            .option('bloated', {
              type: 'boolean',
              describe:
                'a batch of the tables `shadowpack bloat` lists above the thresholds (every schema unless --schema)',
              group: 'Batches:',
            })
            .option('min-ratio', {
              type: 'number',
              describe: `with --bloated: at least this fraction of the heap reclaimable (default ${DEFAULT_BLOATED_MIN_RATIO})`,
              group: 'Batches:',
            })
            .option('min-size', {
              type: 'string',
              describe:
                'with --bloated: tables of at least this size (table, TOAST and indexes), e.g. 10MB (default 0)',
              group: 'Batches:',
            })
            .option('out', {
              type: 'string',
              demandOption: true,
              describe:
                'folder to write the plan into (a batch: one folder per table inside, plus plan.json and README.md)',
            })
            .option('force', { type: 'boolean', default: false, describe: 'replace a plan already in --out' })
            .option('json', { type: 'boolean', default: false, describe: 'print a JSON summary' })
            .option('verify-before-swap', {
              type: 'boolean',
              default: false,
              describe: `add the 04b-verify stage (checksums of key ranges); the swap refuses unless it passed (${DEFAULT_VERIFY_RANGES} ranges unless --verify-ranges)`,
            })
            .option('run-as', {
              type: 'string',
              describe: 'check privileges for this role (the one that will run the plan) instead of the connected one',
            })
            .option('target-url', {
              type: 'string',
              describe:
                'move the tables to this database of another cluster (a move plan; docs/cross-cluster-usage.md); its password is never written',
              group: 'Moves:',
            })
            .option('with-fk-closure', {
              type: 'boolean',
              describe: 'with --target-url: add the tables the group is bound to by foreign keys',
              group: 'Moves:',
            })
            .option('fdw-auth', {
              type: 'string',
              describe:
                'with --target-url: how the target logs in to the source: scram-passthrough (target 18+), cert, pgpass (both superuser) or password (from SHADOWPACK_FDW_PASSWORD at run time; password unless given)',
              group: 'Moves:',
            })
            .option('fdw-sslcert', {
              type: 'string',
              describe: 'with --fdw-auth cert: the client certificate, a path on the target host',
              group: 'Moves:',
            })
            .option('fdw-sslkey', {
              type: 'string',
              describe: 'with --fdw-auth cert: its private key, a path on the target host',
              group: 'Moves:',
            })
            .option('sequence-margin', {
              type: 'number',
              describe:
                'with --target-url: added to every synced sequence past its highest used value (10000 unless given)',
              group: 'Moves:',
            })
            .option('hold-cutover', {
              type: 'boolean',
              describe:
                'with --target-url: the catch-up waits (rounds going on) until "shadowpack control --release-cutover" before the source may be fenced',
              group: 'Moves:',
            })
            .option('reversible', {
              type: 'boolean',
              describe:
                'with --target-url: from the cut-over until 08-cleanup.target.sql the target captures every write to the group (and refuses TRUNCATE), so the move can be taken back after the cut-over',
              group: 'Moves:',
            })
            .option('split-shared-sequences', {
              type: 'boolean',
              describe:
                'with --target-url: move a group whose sequence also feeds a table outside it (a column default); after the cut-over each cluster hands out values from its own copy',
              group: 'Moves:',
            })
            .options(planOptions as Record<never, never>)
            .option('key-to-bigint', {
              type: 'boolean',
              describe: 'the key column(s) and their sequence become bigint',
              group: 'Transformations:',
            })
            .option('with-referencing', {
              type: 'boolean',
              describe:
                'with --key-to-bigint: also write a plan per referencing table (OUT-schema.table) converting its foreign key columns',
              group: 'Transformations:',
            })
            .option('order-by', {
              type: 'string',
              describe: 'col[,col…]: the backfill writes rows in this order (one transaction)',
              group: 'Transformations:',
            })
            .option('fillfactor', {
              type: 'number',
              describe: 'fillfactor of the rebuilt table (10–100)',
              group: 'Transformations:',
            })
            .option('tablespace', {
              type: 'string',
              describe: 'tablespace of the rebuilt table',
              group: 'Transformations:',
            })
            .option('index-tablespace', {
              type: 'string',
              describe: "tablespace of the rebuilt table's indexes",
              group: 'Transformations:',
            })
            .option('alter', {
              type: 'string',
              array: true,
              describe:
                'an ALTER TABLE action for the rebuilt table (repeatable), e.g. "ALTER COLUMN c TYPE bigint USING c::bigint"',
              group: 'Transformations:',
            })
            .option('alter-file', {
              type: 'string',
              describe: 'a file of ALTER TABLE actions, one action list per line (-- comments and blank lines skipped)',
              group: 'Transformations:',
            })
            .option('partition-by', {
              type: 'string',
              describe: 'range(col): the rebuilt table is range-partitioned on a date, timestamp or integer column',
              group: 'Transformations:',
            })
            .option('interval', {
              type: 'string',
              describe: "with --partition-by: '1 month', 'N days', … for dates, a whole number N for integers",
              group: 'Transformations:',
            })
            .option('partitions-ahead', {
              type: 'number',
              describe: 'with --partition-by: partitions created beyond the largest value (default 3)',
              group: 'Transformations:',
            })
            .option('check-data', {
              type: 'boolean',
              default: false,
              describe: 'before writing the plan, push every row through the new shape and list rows that do not fit',
              group: 'Transformations:',
            }),
        (a) =>
          guard(async () => {
            const options: Record<string, unknown> = {};
            for (const k of [...Object.keys(OPTION_FLAGS), ...Object.keys(CONTROL_FLAGS)])
              options[k] = (a as Record<string, unknown>)[k];
            if (a.verifyBeforeSwap && options['verifyRanges'] === undefined)
              options['verifyRanges'] = DEFAULT_VERIFY_RANGES;
            const transform = {
              keyToBigint: a.keyToBigint,
              withReferencing: a.withReferencing,
              orderBy: a.orderBy,
              fillfactor: a.fillfactor,
              tablespace: a.tablespace,
              indexTablespace: a.indexTablespace,
              partitionBy: a.partitionBy,
              interval: a.interval,
              partitionsAhead: a.partitionsAhead,
            };
            const alter = [...(a.alter ?? []).map(String), ...(a.alterFile ? readAlterFile(a.alterFile) : [])];
            const tables = (a.table ?? []).map(String);
            if (a.targetUrl !== undefined) {
              if (tables.length === 0)
                throw new UserError(
                  'BAD_ARGUMENT',
                  'give --table schema.table (repeat it for a group) with --target-url',
                );
              return (await import('./commands/plan-move.js')).planMoveCommand(
                {
                  tables,
                  targetUrl: a.targetUrl,
                  out: a.out,
                  force: a.force,
                  json: a.json,
                  withFkClosure: a.withFkClosure ?? false,
                  ...(a.fdwAuth !== undefined ? { fdwAuth: a.fdwAuth } : {}),
                  ...(a.fdwSslcert !== undefined ? { fdwSslcert: a.fdwSslcert } : {}),
                  ...(a.fdwSslkey !== undefined ? { fdwSslkey: a.fdwSslkey } : {}),
                  ...(a.sequenceMargin !== undefined ? { sequenceMargin: a.sequenceMargin } : {}),
                  ...(a.holdCutover !== undefined ? { holdCutover: a.holdCutover } : {}),
                  ...(a.reversible !== undefined ? { reversible: a.reversible } : {}),
                  ...(a.splitSharedSequences !== undefined ? { splitSharedSequences: a.splitSharedSequences } : {}),
                  ...(typeof a.holdWaitSeconds === 'number' ? { holdWaitSeconds: a.holdWaitSeconds } : {}),
                  ...(typeof a.maxRowsPerSecond === 'number' ? { maxRowsPerSecond: a.maxRowsPerSecond } : {}),
                  ...(typeof a.batchPages === 'number' ? { batchPages: a.batchPages } : {}),
                  ...(a.url ? { url: a.url } : {}),
                },
                out,
              );
            }
            if (a.reversible !== undefined)
              throw new UserError(
                'BAD_ARGUMENT',
                '--reversible goes with --target-url (a move plan); a rebuild needs no such option: it can always be reverted between the swap and cleanup (run --stage revert)',
              );
            if (
              a.withFkClosure !== undefined ||
              a.fdwAuth !== undefined ||
              a.fdwSslcert !== undefined ||
              a.fdwSslkey !== undefined ||
              a.sequenceMargin !== undefined ||
              a.holdCutover !== undefined ||
              a.splitSharedSequences !== undefined
            )
              throw new UserError(
                'BAD_ARGUMENT',
                '--with-fk-closure, --fdw-auth, --fdw-sslcert, --fdw-sslkey, --sequence-margin, --hold-cutover and --split-shared-sequences go with --target-url (a move plan)',
              );
            const schemas = (a.schema ?? []).map(String);
            if (tables.length > 1 || schemas.length > 0 || a.bloated) {
              const given = Object.entries({
                ...transform,
                alter: alter.length > 0 ? true : undefined,
                checkData: a.checkData || undefined,
              }).filter(([, v]) => v !== undefined && v !== false);
              if (given.length > 0)
                throw new UserError(
                  'BAD_ARGUMENT',
                  `--${kebab(given[0]![0])} changes one table: plan that table alone (a batch rebuilds its tables as they are)`,
                );
              return (await import('./commands/plan-batch.js')).planBatchCommand(
                {
                  out: a.out,
                  force: a.force,
                  json: a.json,
                  options,
                  command: commandLineOf(argv),
                  tables,
                  schemas,
                  bloated: a.bloated ?? false,
                  ...(a.minRatio !== undefined ? { minRatio: a.minRatio } : {}),
                  ...(a.minSize !== undefined ? { minSize: a.minSize } : {}),
                  ...(a.url ? { url: a.url } : {}),
                  ...(a.runAs ? { runAs: a.runAs } : {}),
                },
                out,
              );
            }
            if (tables.length === 0)
              throw new UserError(
                'BAD_ARGUMENT',
                'give --table schema.table (or several, --schema or --bloated for a batch)',
              );
            if (a.minRatio !== undefined || a.minSize !== undefined)
              throw new UserError('BAD_ARGUMENT', '--min-ratio and --min-size only go with --bloated');
            return (await import('./commands/plan.js')).planCommand(
              {
                table: tables[0]!,
                out: a.out,
                force: a.force,
                json: a.json,
                options,
                transform,
                alter,
                checkData: a.checkData,
                command: commandLineOf(argv),
                ...(a.url ? { url: a.url } : {}),
                ...(a.runAs ? { runAs: a.runAs } : {}),
              },
              out,
              (line) => err(line + '\n'),
            );
          }, a.json),
      )
      .command(
        'run',
        'execute a plan up to the swap, leaving the revert window open (checks every file against plan.json first; resumes where the last run stopped); --until cleanup finishes it',
        (y) =>
          withTargetUrl(withUrl(y, URL_DESCRIBE))
            .option('plan', { type: 'string', demandOption: true, describe: 'plan folder' })
            .option('until', {
              choices: [
                ...new Set<string>([
                  ...FORWARD_STAGES,
                  ...MOVE_STAGES.filter((r) => r.kind === 'forward' || r.kind === 'check').map((r) => r.stage),
                ]),
              ],
              describe:
                'stop after this forward stage (default: swap, so the old table is kept and revert stays possible; cleanup: go through to the end, ending the revert window; a move plan: cutover)',
            })
            .option('stage', {
              choices: [...new Set<string>([...ALL_STAGES, ...MOVE_STAGES.map((r) => r.stage)])],
              describe:
                'run only this stage (e.g. abort or revert; a move plan: cleanup also gives up a revert whose source is not live yet)',
            })
            .option('expect-hash', {
              type: 'string',
              describe: 'refuse unless the plan hash is exactly this (the approved one)',
            })
            .option('events', { type: 'boolean', default: false, describe: 'print one JSON event per line on stdout' })
            .option('jobs', {
              type: 'number',
              default: 1,
              describe:
                'sessions that run the backfill and the build at once, dividing their work (as N psql sessions running 02-backfill.sql or 03-build.sql would)',
            })
            .option('parallel-tables', {
              type: 'number',
              describe:
                "a batch with --until cleanup: rebuild up to N tables at once (never two that share a foreign key); the free disk needed is the N largest tables' together",
            })
            .conflicts('until', 'stage'),
        (a) =>
          guard(async () =>
            (await import('../run/move-plan.js')).isMovePlanDir(a.plan)
              ? (await import('./commands/run-move.js')).runMoveCommand(
                  {
                    plan: a.plan,
                    ...(a.url ? { url: a.url } : {}),
                    ...(a.targetUrl ? { targetUrl: a.targetUrl } : {}),
                    ...(a.until ? { until: a.until } : {}),
                    ...(a.stage ? { stage: a.stage } : {}),
                    ...(a.expectHash ? { expectHash: a.expectHash } : {}),
                    ...(a.jobs !== 1 ? { jobs: a.jobs } : {}),
                    ...(a.parallelTables !== undefined ? { parallelTables: a.parallelTables } : {}),
                    events: a.events,
                  },
                  out,
                  err,
                  process.stderr.isTTY === true,
                )
              : (await import('./commands/run.js')).runCommand(
                  {
                    plan: a.plan,
                    ...(a.url ? { url: a.url } : {}),
                    ...(a.until ? { until: a.until as StageName } : {}),
                    ...(a.stage ? { stage: a.stage as StageName } : {}),
                    ...(a.expectHash ? { expectHash: a.expectHash } : {}),
                    ...(a.parallelTables !== undefined ? { parallelTables: a.parallelTables } : {}),
                    events: a.events,
                    jobs: a.jobs,
                  },
                  out,
                  err,
                  process.stderr.isTTY === true,
                ),
          ),
      )
      .command(
        'status',
        'show where a run stands (whichever executor ran it)',
        (y) => withTargetUrl(withUrl(y, URL_DESCRIBE)).option('plan', PLAN_FOLDER).option('json', JSON_ANSWER),
        (a) =>
          guard(
            async () =>
              (await import('../run/move-plan.js')).isMovePlanDir(a.plan)
                ? (await import('./commands/status-move.js')).statusMoveCommand(
                    {
                      plan: a.plan,
                      json: a.json,
                      ...(a.url ? { url: a.url } : {}),
                      ...(a.targetUrl ? { targetUrl: a.targetUrl } : {}),
                    },
                    out,
                  )
                : (await import('./commands/status.js')).statusCommand(
                    { plan: a.plan, json: a.json, ...(a.url ? { url: a.url } : {}) },
                    out,
                  ),
            a.json,
          ),
      )
      .command(
        'control',
        'pause, resume, resize or slow down a running backfill/catch-up, or release a held swap or cut-over (takes effect within one batch)',
        (y) =>
          withTargetUrl(withUrl(y, URL_DESCRIBE))
            .option('plan', PLAN_FOLDER)
            .option('pause', { type: 'boolean', describe: 'wait between batches until --resume' })
            .option('resume', { type: 'boolean', describe: 'go on after --pause' })
            .option('batch-pages', { type: 'number', describe: 'heap pages per backfill batch from the next batch on' })
            .option('max-rows-per-second', {
              type: 'number',
              describe: 'rows/s ceiling for backfill and catch-up, 0 for none',
            })
            .option('release-swap', { type: 'boolean', describe: 'let a swap held by --hold-swap go ahead' })
            .option('release-cutover', {
              type: 'boolean',
              describe: 'a move plan: let a catch-up held by --hold-cutover end, so the fence and the cut-over follow',
            })
            .option('json', JSON_ANSWER)
            .conflicts('pause', 'resume'),
        (a) =>
          guard(
            async () =>
              ((await import('../run/move-plan.js')).isMovePlanDir(a.plan)
                ? (await import('./commands/control-move.js')).controlMoveCommand
                : (await import('./commands/control.js')).controlCommand)(
                {
                  plan: a.plan,
                  json: a.json,
                  ...(a.url ? { url: a.url } : {}),
                  ...(a.pause !== undefined ? { pause: a.pause } : {}),
                  ...(a.resume !== undefined ? { resume: a.resume } : {}),
                  ...(a.batchPages !== undefined ? { batchPages: a.batchPages } : {}),
                  ...(a.maxRowsPerSecond !== undefined ? { maxRowsPerSecond: a.maxRowsPerSecond } : {}),
                  ...(a.releaseSwap !== undefined ? { releaseSwap: a.releaseSwap } : {}),
                  ...(a.releaseCutover !== undefined ? { releaseCutover: a.releaseCutover } : {}),
                  ...(a.targetUrl ? { targetUrl: a.targetUrl } : {}),
                },
                out,
              ),
            a.json,
          ),
      )
      .command(
        'verify',
        'compare the table with the copy (before the swap) or the old table (after it), leaving out changes not yet applied; a move plan: each target table with its source table; exit 0 pass, 1 fail',
        (y) =>
          withTargetUrl(withUrl(y, URL_DESCRIBE))
            .option('plan', PLAN_FOLDER)
            .option('json', JSON_ANSWER)
            .option('ranges', {
              type: 'number',
              describe: 'compare checksums of N key ranges (sp-range-md5-v1) and name the ranges that differ',
            })
            .option('buckets', {
              type: 'number',
              describe: 'a move plan: key-hash buckets per table (sp-bucket-md5-v1), a power of two (default 1024)',
            }),
        (a) =>
          guard(async () => {
            code = await (
              await import('./commands/verify.js')
            ).verifyCommand(
              {
                plan: a.plan,
                json: a.json,
                ...(a.url ? { url: a.url } : {}),
                ...(a.targetUrl ? { targetUrl: a.targetUrl } : {}),
                ...(a.ranges !== undefined ? { ranges: a.ranges } : {}),
                ...(a.buckets !== undefined ? { buckets: a.buckets } : {}),
              },
              out,
            );
          }, a.json),
      )
      .command(
        'show',
        'print the review summary of a plan folder, opening with the plan hash to approve (printed from plan.json) after checking every file against it; never connects',
        (y) =>
          y
            .option('url', { type: 'string', hidden: true })
            .option('plan', { type: 'string', demandOption: true, describe: 'plan folder (or batch folder)' }),
        (a) =>
          guard(async () => {
            if (a.url !== undefined)
              throw new UserError(
                'BAD_ARGUMENT',
                `show reads only the plan folder and never connects: drop --url (shadowpack show --plan ${a.plan})`,
              );
            return (await import('./commands/show.js')).showCommand({ plan: a.plan }, out, (line) => err(line + '\n'));
          }),
      )
      .command(
        'diff [a] [b]',
        'compare two plan folders (e.g. staging and production), or --plan DIR with the live database; exit 0 same SQL, 1 different, 2 error',
        (y) =>
          withTargetUrl(
            withUrl(
              y,
              'with --plan: the database to compare with (else DATABASE_URL, else the PG* variables and ~/.pgpass; docs/connections.md); two plan folders are compared without connecting',
            ),
          )
            .positional('a', { type: 'string', describe: 'plan folder A' })
            .positional('b', { type: 'string', describe: 'plan folder B' })
            .option('plan', {
              type: 'string',
              describe: 'an approved plan folder to compare with what the live database gives now',
            })
            .option('json', JSON_ANSWER),
        (a) =>
          guard(async () => {
            code = await (
              await import('./commands/diff.js')
            ).diffCommand(
              {
                json: a.json,
                ...(a.a ? { a: a.a } : {}),
                ...(a.b ? { b: a.b } : {}),
                ...(a.plan ? { plan: a.plan } : {}),
                ...(a.url ? { url: a.url } : {}),
                ...(a.targetUrl ? { targetUrl: a.targetUrl } : {}),
              },
              out,
            );
          }, a.json),
      )
      .command(
        'demo',
        'start an embedded PostgreSQL, build a busy table and rebuild it online while writers run',
        (y) =>
          withUrl(y, URL_DESCRIBE)
            .option('rows', { type: 'number', default: 1_000_000, describe: 'rows in the demo table' })
            .option('writers', { type: 'number', default: 4, describe: 'concurrent writer connections' })
            .option('out', { type: 'string', default: 'plans/demo', describe: 'where to write the plan' })
            .option('executor', {
              choices: ['runner', 'psql'] as const,
              default: 'runner' as const,
              describe: 'run the stages with the built-in runner, or with psql -f as an operator would',
            }),
        (a) =>
          guard(async () =>
            (await import('./commands/demo.js')).demoCommand(
              { rows: a.rows, writers: a.writers, out: a.out, executor: a.executor, ...(a.url ? { url: a.url } : {}) },
              out,
              err,
              process.stderr.isTTY === true,
            ),
          ),
      )
      .fail((msg, e, usage: unknown) => {
        // Throwing stops yargs: otherwise it would go on to run the command after a bad argument.
        throw (
          e ?? new UserError('BAD_ARGUMENT', `${usageMessage(msg, argv, knownFlags(usage))} (see shadowpack --help)`)
        );
      })
      .parseAsync();
  } catch (e) {
    // A usage error (yargs stops by throwing it) or anything else that escaped a command.
    reportError(e, wantsJson, io);
    return EXIT_ERROR;
  }
  return code;
}

/** Turns off yargs' help-text cache for the command being run (see main); not in yargs' typings, so defensive. */
function skipHelpCache(parser: unknown): void {
  type Usage = { cacheHelpMessage?: unknown };
  const internal = (parser as { getInternalMethods?: () => { getUsageInstance?: () => Usage } }).getInternalMethods;
  const usage = typeof internal === 'function' ? internal.call(parser).getUsageInstance?.() : undefined;
  if (usage !== undefined && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
}

/**
 * One line on stderr; with --json also the error object on stdout, so a script reading stdout
 * never meets an empty answer. A UserError's message says what is wrong and how to fix it.
 */
function reportError(e: unknown, json: boolean, { out, err }: CliIo): void {
  if (e instanceof UserError) {
    err(`shadowpack: ${e.code}: ${redactSecrets(e.message)}\n`);
    if (json) out(JSON.stringify(errorObject(e.code, redactSecrets(e.message), e.details)));
    return;
  }
  const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
  err(`shadowpack: internal error (this is a bug, please report it):\n${redactSecrets(text)}\n`);
  if (json)
    out(JSON.stringify(errorObject('INTERNAL_ERROR', redactSecrets(e instanceof Error ? e.message : String(e)), {})));
}

/**
 * The flags of the command being parsed, for a "did you mean": yargs hands its usage object to
 * .fail(), whose descriptions are keyed by flag. Not in yargs' typings, so read defensively.
 */
function knownFlags(usage: unknown): string[] {
  const get = (usage as { getDescriptions?: unknown } | null)?.getDescriptions;
  if (typeof get !== 'function') return [];
  const d: unknown = get.call(usage);
  return d !== null && typeof d === 'object' ? Object.keys(d) : [];
}

/** --plan of the commands that act on a plan folder someone made with plan --out. */
const PLAN_FOLDER = {
  type: 'string',
  demandOption: true,
  describe: 'plan folder (written by shadowpack plan --out)',
} as const;

/** --json of the commands whose answer scripts read. */
const JSON_ANSWER = {
  type: 'boolean',
  default: false,
  describe: 'print one JSON object on stdout, an error object on failure (docs/scripting.md)',
} as const;

const URL_DESCRIBE =
  'connection string: a URL or host=… port=… dbname=… user=… (else DATABASE_URL, else the PG* variables and ~/.pgpass; docs/connections.md)';

/**
 * --url on the commands that connect (not global: show and a diff of two folders never connect,
 * so --help must not offer it there; newcomer review finding 36).
 */
function withUrl<T>(y: Argv<T>, describe: string): Argv<T & { url: string | undefined }> {
  return y.option('url', { type: 'string', describe });
}

/** --target-url on the commands that act on a move plan's second cluster (docs/cross-cluster.md). */
function withTargetUrl<T>(y: Argv<T>): Argv<T & { 'target-url': string | undefined; targetUrl: string | undefined }> {
  return y.option('target-url', {
    type: 'string',
    describe: 'a move plan: the target cluster (URL or host=… port=… dbname=… user=…), as --url names the source',
  }) as Argv<T & { 'target-url': string | undefined; targetUrl: string | undefined }>;
}

/** --alter-file: one action list per line; blank lines and -- comments are skipped. */
function readAlterFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError('BAD_ARGUMENT', `--alter-file ${path}: cannot read it (${(e as Error).message})`);
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('--'));
}

/** Runs this process's command line and exits with its code (bin/shadowpack.js, or this file run directly). */
export function runMain(): void {
  // A reader that went away (shadowpack show … | head -1): stop quietly, as a tool killed by SIGPIPE
  // would, instead of Node's unhandled EPIPE and its stack.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(EXIT_PIPE_CLOSED);
      throw e;
    });
  }
  main(hideBin(process.argv)).then(
    (code) => process.exit(code),
    (e) => {
      PROCESS_IO.err(
        `shadowpack: internal error (this is a bug, please report it):\n${redactSecrets(e instanceof Error ? (e.stack ?? e.message) : String(e))}\n`,
      );
      process.exit(EXIT_ERROR);
    },
  );
}

// `node src/cli/main.ts …` (the tests, development); importing this file runs nothing.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) runMain();
