import pg from 'pg';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../dev/embedded-server.js';
import { compareWithTwin, createDemoSchema, DEMO_SCHEMA, DEMO_TABLE, startWriters } from '../../dev/workload.js';
import { readState } from '../../run/state.js';
import { UserError } from '../../model/errors.js';
import { runCommand } from './run.js';
import { verifyCommand } from './verify.js';
import { shellWord } from '../next-steps.js';
import { resolveOptions } from '../../compile/options.js';
import { planTable, writeTablePlan } from '../../planning/plan-table.js';
import { readPlanDir } from '../../planning/plan-dir.js';

export interface DemoArgs {
  readonly rows: number;
  readonly writers: number;
  readonly out: string;
  readonly executor: 'runner' | 'psql';
  readonly url?: string;
}

function psqlStage(url: string, file: string, err: (t: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    // The password goes through the environment, not the command line, where ps would show it.
    const u = new URL(url);
    const env = { ...process.env };
    if (u.password) {
      env['PGPASSWORD'] = decodeURIComponent(u.password);
      u.password = '';
    }
    const p = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', u.toString(), '-f', file], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    });
    p.stderr.on('data', (d: Buffer) => err(`  ${d.toString().trim()}\n`));
    p.on('error', (e) =>
      reject(
        new UserError(
          'BAD_ARGUMENT',
          `cannot start psql (${e.message}); install postgresql-client or use --executor runner`,
        ),
      ),
    );
    p.on('close', (code) =>
      code === 0 ? resolve() : reject(new UserError('STAGE_FAILED', `psql failed on ${file} (exit ${code})`)),
    );
  });
}

async function psqlStep(
  url: string,
  file: string,
  out: (line: string) => void,
  err: (t: string) => void,
): Promise<void> {
  const s0 = Date.now();
  out(`» psql -f ${file}`);
  await psqlStage(url, file, err);
  out(`  done in ${Date.now() - s0} ms`);
}

/**
 * The Quick start: an embedded PostgreSQL, a busy table with writers that
 * keep a twin, a plan, a run to the swap, verify in the revert window, cleanup, and a check of the
 * result against the twin.
 */
export async function demoCommand(
  args: DemoArgs,
  out: (line: string) => void,
  err: (text: string) => void,
  isTty: boolean,
): Promise<void> {
  let server: EmbeddedServer | null = null;
  let url = args.url;
  if (!url) {
    out('starting an embedded PostgreSQL …');
    server = await startEmbeddedPostgres();
    url = server.url;
    out(`PostgreSQL ${server.major} on port ${server.port}`);
  }
  try {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const t0 = Date.now();
    out(
      `creating ${DEMO_SCHEMA}.${DEMO_TABLE} with ${args.rows.toLocaleString('en-US')} rows, a twin, a foreign key in and out …`,
    );
    await createDemoSchema(admin, args.rows);
    // Bloat it a little, as a real table would be: that is what the rebuild removes.
    await admin.query('UPDATE app.orders SET qty = qty WHERE id % 4 = 0');
    await admin.query('UPDATE app.orders_twin SET qty = qty WHERE id % 4 = 0');
    const before = (
      await admin.query<{ s: string }>("SELECT pg_size_pretty(pg_total_relation_size('app.orders')) AS s")
    ).rows[0]!.s;
    out(`  ready in ${((Date.now() - t0) / 1000).toFixed(1)} s; app.orders takes ${before}`);

    // What the demo plans is what this command would: the header of the summary says so.
    const planned = await planTable(
      admin,
      { schema: DEMO_SCHEMA, table: DEMO_TABLE, options: resolveOptions({}) },
      { command: `shadowpack plan --table ${DEMO_SCHEMA}.${DEMO_TABLE} --out ${shellWord(args.out)} --force` },
    );
    writeTablePlan(args.out, planned, true);
    out(
      `plan for ${DEMO_SCHEMA}.${DEMO_TABLE} written to ${args.out} (plan hash ${planned.plan.manifest.planHash}); review ${args.out}/README.md`,
    );
    out(
      `starting ${args.writers} writer${args.writers === 1 ? '' : 's'} (inserts, updates, key changes, NULLs, unique values moving, deletes, rollbacks) …`,
    );
    const writers = await startWriters({ connectionString: url }, args.writers, 2);
    await new Promise((r) => setTimeout(r, 1000));
    const started = Date.now();
    // The approved sequence (docs/usage.md): up to the swap, check while the revert window is open, then cleanup.
    if (args.executor === 'runner') {
      out(`» shadowpack run --plan ${args.out}   (stops after the swap: the revert window stays open)`);
      await runCommand({ plan: args.out, url }, out, err, isTty);
    } else {
      const files = readdirSync(args.out)
        .filter((f) => /^0\d[a-z]?-/.test(f) && f !== '06-cleanup.sql')
        .sort();
      for (const f of files) await psqlStep(url, join(args.out, f), out, err);
    }
    out(`» shadowpack verify --plan ${args.out}   (the rebuilt table against the old one, kept in sync for revert)`);
    const verdict = await verifyCommand({ plan: args.out, url }, out);
    if (verdict !== 0)
      throw new UserError(
        'STAGE_FAILED',
        'verify found a difference after the swap; the old table is still there: shadowpack run --plan DIR --stage revert goes back',
      );
    if (args.executor === 'runner') {
      out(`» shadowpack run --plan ${args.out} --until cleanup   (ends the revert window)`);
      await runCommand({ plan: args.out, url, until: 'cleanup' }, out, err, isTty);
    } else {
      await psqlStep(url, join(args.out, '06-cleanup.sql'), out, err);
    }
    const runMs = Date.now() - started;
    await new Promise((r) => setTimeout(r, 500));
    const stats = await writers.stop();
    const cmp = await compareWithTwin(admin);
    const after = (await admin.query<{ s: string }>("SELECT pg_size_pretty(pg_total_relation_size('app.orders')) AS s"))
      .rows[0]!.s;
    // shadowpack.history is kept on purpose (one row per run); anything else in the schema is left over.
    const left = await admin.query<{
      n: string;
    }>(`SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = to_regnamespace('shadowpack') AND relname <> 'history')
                                                        + (SELECT count(*) FROM pg_proc WHERE pronamespace = to_regnamespace('shadowpack')) AS n`);
    const state = await readState(admin, readPlanDir(args.out).manifest);
    await admin.end();
    out('');
    out('summary');
    out(
      `  run: ${(runMs / 1000).toFixed(1)} s with ${args.writers} writer${args.writers === 1 ? '' : 's'}: ${stats.commits} commits, ${stats.rollbacks} rollbacks, ${stats.errors} write errors, worst transaction ${stats.maxLatencyMs} ms`,
    );
    out(`  size: ${before} before, ${after} after`);
    out(
      `  rows checked against the twin: ${cmp.rows.toLocaleString('en-US')}; missing ${cmp.missing}, extra or changed ${cmp.extra}, wrong generated values ${cmp.badGenerated}`,
    );
    out(
      `  tool objects left: ${Number(left.rows[0]!.n) === 0 && state === null ? 'none' : 'some (see shadowpack status)'}`,
    );
    const ok = cmp.missing === 0 && cmp.extra === 0 && cmp.badGenerated === 0 && stats.errors === 0;
    out(
      ok
        ? 'RESULT: PASS — the rebuilt table equals its twin'
        : `RESULT: FAIL${stats.lastError ? ` (last write error: ${stats.lastError})` : ''}`,
    );
    if (!ok)
      throw new UserError(
        'STAGE_FAILED',
        'the demo found a difference between the table and its twin; see the summary above',
      );
  } finally {
    if (server) await server.stop();
  }
}
