import { describe, expect, it, vi } from 'vitest';
import { usageMessage } from '../../src/cli/did-you-mean.js';
import { closest, editDistance } from '../../src/model/edit-distance.js';
import { main } from '../../src/cli/main.js';
import { backfillLine, checkStageInPlan } from '../../src/cli/commands/run.js';
import { progressPrinter } from '../../src/cli/progress.js';
import { terminateHint } from '../../src/run/terminate-hint.js';
import { UserError } from '../../src/model/errors.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unifiedDiff } from '../../src/compile/text-diff.js';
import { verifyKeysSql, verifySql } from '../../src/compile/verify-sql.js';
import { compile } from '../../src/compile/compile.js';
import { resolveOptions } from '../../src/compile/options.js';
import { loadTemplates } from '../../src/planning/templates.js';
import { writePlanDir } from '../../src/planning/plan-dir.js';
import type { EnvironmentFacts, TableModel } from '../../src/model/types.js';

/** Runs the CLI in-process; nothing here may connect (a connection attempt would fail with CONNECTION_FAILED, not the code expected). */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, {
    out: (l) => {
      out += l + '\n';
    },
    err: (t) => {
      err += t;
    },
  });
  return { code, out, err };
}

describe('did you mean (newcomer review finding 33)', () => {
  it('counts a transposition as one edit', () => {
    expect(editDistance('tabel', 'table')).toBe(1);
    expect(editDistance('plna', 'plan')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests only a close name', () => {
    expect(closest('tabel', ['out', 'table', 'force'])).toBe('table');
    expect(closest('zzzzzz', ['out', 'table', 'force'])).toBeNull();
    expect(closest('x', ['out'])).toBeNull();
  });

  it('lists an unknown flag once, as typed, with the closest flag', () => {
    expect(usageMessage('Unknown arguments: bogus-flag, bogusFlag', ['plan', '--bogus-flag'], ['table', 'out'])).toBe(
      'Unknown argument: bogus-flag',
    );
    expect(usageMessage('Unknown argument: tabel', ['plan', '--tabel', 'x'], ['table', 'out', 'help'])).toBe(
      'Unknown argument: tabel; did you mean --table for --tabel?',
    );
    expect(usageMessage('Unknown argument: plna', ['plna'], [])).toBe(
      'Unknown command: plna; did you mean "shadowpack plan"?',
    );
    expect(usageMessage('Unknown arguments: frobnicate', ['frobnicate'], [])).toBe(
      'Unknown command: frobnicate; the commands are bloat, plan, run, status, control, verify, show, diff, demo',
    );
    expect(usageMessage('Missing required argument: out', ['plan'], ['out'])).toBe('Missing required argument: out');
  });

  it('is what the command line prints, exit 2', async () => {
    const typo = await cli('plan', '--tabel', 'public.small', '--out', 'x');
    expect(typo).toMatchObject({ code: 2, out: '' });
    expect(typo.err).toBe(
      'shadowpack: BAD_ARGUMENT: Unknown argument: tabel; did you mean --table for --tabel? (see shadowpack --help)\n',
    );
    const command = await cli('stauts', '--plan', 'x');
    expect(command.code).toBe(2);
    expect(command.err).toMatch(/: Unknown command: stauts; did you mean "shadowpack status"\?/);
    const option = await cli('status', '--plan', 'x', '--jsno');
    expect(option.err).toMatch(/did you mean --json for --jsno\?/);
  });
});

describe('run --until verify / --stage verify without a verify stage (finding 33)', () => {
  const plan = (stages: string[]) =>
    ({ manifest: { stages: stages.map((name) => ({ name })) } }) as unknown as LoadedPlan;
  const error = (f: () => void): UserError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      return e as UserError;
    }
    throw new Error('expected a refusal');
  };

  it('is refused with the way on', () => {
    const e = error(() =>
      checkStageInPlan(plan(['preflight', 'catchup', 'swap']), { plan: 'plans/s1', until: 'verify' }),
    );
    expect(e.code).toBe('BAD_ARGUMENT');
    expect(e.message).toBe(
      '--until verify: plans/s1 has no verify stage (planned without --verify-before-swap); stop before the swap with --until catchup and compare with shadowpack verify --plan plans/s1, or plan again with --verify-before-swap',
    );
    expect(error(() => checkStageInPlan(plan(['catchup']), { plan: 'p', stage: 'verify' })).message).toMatch(
      /^--stage verify: p has no verify stage/,
    );
  });

  it('goes ahead when the plan has one, or for other stages', () => {
    expect(() => checkStageInPlan(plan(['catchup', 'verify', 'swap']), { plan: 'p', until: 'verify' })).not.toThrow();
    expect(() => checkStageInPlan(plan(['catchup', 'swap']), { plan: 'p', until: 'catchup' })).not.toThrow();
  });
});

describe('--url only where a command connects (finding 36)', () => {
  it('show refuses it in one line, before reading anything', async () => {
    const r = await cli('show', '--plan', 'no/such/plan', '--url', 'postgres://u@h/d');
    expect(r).toMatchObject({ code: 2, out: '' });
    expect(r.err).toBe(
      'shadowpack: BAD_ARGUMENT: show reads only the plan folder and never connects: drop --url (shadowpack show --plan no/such/plan)\n',
    );
  });

  it('a diff of two folders refuses it and points at diff --plan', async () => {
    const r = await cli('diff', 'no/a', 'no/b', '--url', 'postgres://u@h/d');
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      'shadowpack: BAD_ARGUMENT: two plan folders are compared without connecting: drop --url, or compare one plan with a live database: shadowpack diff --plan no/a --url …\n',
    );
  });

  it('--help offers it on the commands that connect only', async () => {
    // yargs prints --help through console.log, not the CLI's io.
    const help = async (command: string) => {
      const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
      try {
        expect((await cli(command, '--help')).code).toBe(0);
        return log.mock.calls.map((c) => c.join(' ')).join('\n');
      } finally {
        log.mockRestore();
      }
    };
    expect(await help('show')).toMatch(/--plan/);
    expect(await help('show')).not.toMatch(/--url/);
    for (const c of ['plan', 'run', 'status', 'control', 'verify', 'bloat']) expect(await help(c), c).toMatch(/--url/);
    expect(await help('diff')).toMatch(/--url +with --plan: the database to compare with/);
  });
});

describe('diff (finding 37)', () => {
  it('prints removed lines before added ones, as diff(1) does', () => {
    expect(unifiedDiff('a\nold\nc', 'a\nnew\nc', 'A/f', 'B/f')).toBe(
      '--- A/f\n+++ B/f\n@@ -1,3 +1,3 @@\n a\n-old\n+new\n c',
    );
    expect(unifiedDiff('x\ny', 'x\ny\nz', 'A', 'B')).toBe('--- A\n+++ B\n@@ -1,2 +1,3 @@\n x\n y\n+z');
  });

  it('refuses two plans of different tables in one line, exit 2', async () => {
    const fixture = join(import.meta.dirname, '..', '..', 'fixtures', 'compile', 'orders');
    const model = JSON.parse(readFileSync(join(fixture, 'model.json'), 'utf8')) as TableModel;
    const facts = JSON.parse(readFileSync(join(fixture, 'facts.json'), 'utf8')) as EnvironmentFacts;
    const root = mkdtempSync(join(tmpdir(), 'sp-diff-'));
    const write = (dir: string, m: TableModel) =>
      writePlanDir(
        join(root, dir),
        compile({ model: m, facts, options: resolveOptions({}), templates: loadTemplates(), toolVersion: '0.1.0' }),
        false,
      );
    write('a', model);
    write('b', { ...model, name: 'orders_archive' });
    const r = await cli('diff', join(root, 'a'), join(root, 'b'));
    expect(r).toMatchObject({ code: 2, out: '' });
    expect(r.err).toBe(
      `shadowpack: BAD_ARGUMENT: ${join(root, 'a')} rebuilds public.orders and ${join(root, 'b')} public.orders_archive: diff compares two plans of one table (staging against production, or a plan against the live database)\n`,
    );
  });
});

describe('progress after a resume (finding 31)', () => {
  it("the ETA goes by this run's pace, not the cumulative fraction over this run's time", () => {
    let t = 0;
    let text = '';
    const print = progressPrinter(
      (s) => {
        text += s;
      },
      false,
      () => t,
    );
    print({ type: 'stage-start', stage: 'backfill', file: '02-backfill.sql' });
    // Resumed at page 500 of 1000: the first report comes 2.5 s in, the next 2.5 s later, 100 pages on
    // (a log line at most every 2 s off a terminal).
    t = 2500;
    print({ type: 'backfill', stage: 'backfill', page: 500, pages: 1000, rows: 1000 });
    t = 5000;
    print({ type: 'backfill', stage: 'backfill', page: 600, pages: 1000, rows: 1000 });
    const lines = text.trim().split('\n');
    expect(lines[1]).toMatch(
      /50\.0% of the pages, 1,000 rows copied by this run, 400 rows\/s ETA after the next batch$/,
    );
    // 100 pages in 2.5 s: 400 left take 10 s (the cumulative fraction over this run's time said 3.3 s).
    expect(lines[2]).toMatch(/60\.0% of the pages, 2,000 rows copied by this run, 400 rows\/s ETA 10\.0 s$/);
  });

  it("the run's summary line rates this run's rows", () => {
    expect(backfillLine(2_000, 10_000, 1_000)).toBe(
      'backfill: 10,000 rows in all, 2,000 of them copied by this run in 1000 ms (2,000 rows/s over the whole stage)',
    );
    expect(backfillLine(10_000, 10_000, 1_000)).toBe(
      'backfill: 10,000 rows in 1000 ms (10,000 rows/s over the whole stage)',
    );
    expect(backfillLine(0, 10_000, 1_000)).toBe(
      'backfill: 10,000 rows in 1000 ms (10,000 rows/s over the whole stage)',
    );
  });
});

describe('pg_terminate_backend with the pids that hold a run up (finding 28)', () => {
  it('for a long-held lock and for old snapshots, while waiting and when giving up', () => {
    expect(
      terminateHint(
        'ACCESS EXCLUSIVE on "app"."orders" is held by pid 4242 (psql, dba, query started 2026-12-03 10:00:00+00, transaction started 2026-12-03 10:00:00+00); not queueing behind it (round 3)',
      ),
    ).toBe('to end that session rather than wait: SELECT pg_terminate_backend(4242);');
    expect(terminateHint('old snapshots: pid 27266 (psql, dba, transaction started …); pid 27300 (app, app, …)')).toBe(
      'to end those sessions rather than wait: SELECT pg_terminate_backend(27266), pg_terminate_backend(27300);',
    );
    expect(
      terminateHint(
        'shadowpack: could not take ACCESS EXCLUSIVE on "app"."orders" after 8 rounds (0 attempts): held by pid 77 (idle-writer, app, …); nothing was changed',
      ),
    ).toBe('to end that session rather than wait: SELECT pg_terminate_backend(77);');
    expect(
      terminateHint('shadowpack: gave up after 300 s waiting for sessions with old snapshots: pid 5 (x, y, z)'),
    ).toMatch(/pg_terminate_backend\(5\)/);
  });

  it('never for autovacuum, another shadowpack session, or waits without pids', () => {
    expect(
      terminateHint(
        'ACCESS EXCLUSIVE on "t" is held by autovacuum pid 9 (autovacuum: VACUUM t, started …; waited for); not queueing',
      ),
    ).toBe('');
    expect(terminateHint('another session (pid 12) is working on "app"."orders"')).toBe('');
    expect(terminateHint('paused by the operator (resume: shadowpack control --resume)')).toBe('');
    expect(
      terminateHint(
        'ACCESS EXCLUSIVE on "t" is held by prepared transaction \'g1\' (owner dba, prepared …); not queueing',
      ),
    ).toBe('');
  });

  it('is printed with the wait', () => {
    let text = '';
    const print = progressPrinter(
      (s) => {
        text += s;
      },
      false,
      () => 0,
    );
    print({ type: 'wait', stage: 'swap', message: 'old snapshots: pid 27266 (psql, dba, transaction started …)' });
    expect(text).toBe(
      '  waiting: old snapshots: pid 27266 (psql, dba, transaction started …); to end that session rather than wait: SELECT pg_terminate_backend(27266);\n',
    );
  });
});

describe('verify names the keys that differ (finding 21)', () => {
  it('reads the same join as the counts, in key order, at most five', () => {
    const model = JSON.parse(
      readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'compile', 'orders', 'model.json'), 'utf8'),
    ) as TableModel;
    const counts = verifySql(model, 'before-swap');
    const keys = verifyKeysSql(model, 'before-swap');
    const from = counts.slice(counts.indexOf('  FROM (SELECT true AS present'));
    expect(keys).toContain(from);
    expect(keys).toMatch(
      /WHERE a\.present IS NULL OR b\.present IS NULL OR a\.body <> b\.body\n ORDER BY "id"\n LIMIT 5\) AS d$/,
    );
  });
});
