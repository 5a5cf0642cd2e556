import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { spawn } from 'node:child_process';
import { cli, planTable, ROOT, type Exit } from '../helpers/rebuild.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { connectClient } from '../../src/run/connect.js';
import { resolveConnection } from '../../src/run/connection-config.js';
import { main } from '../../src/cli/main.js';

/** A closed port on this machine: connecting is refused at once. */
const REFUSED = 'postgresql://nobody:s3cret-pw@127.0.0.1:1/nowhere';

/** The command line in this process (fast: no Node start-up per case); the exit code is what the process would exit with. */
async function inProcess(args: string[]): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (line) => (stdout += line + '\n'), err: (text) => (stderr += text) });
  return { code, signal: null, stdout, stderr };
}

describe('the command-line contract for scripts (docs/scripting.md)', () => {
  let db: FreshDatabase;
  let plan: LoadedPlan;
  let other: string;
  beforeAll(async () => {
    db = await freshDatabase('cli_contract');
    await withClient(db.url, (c) =>
      c.query(
        'CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text); INSERT INTO app.t SELECT g, g::text FROM generate_series(1, 100) g',
      ),
    );
    plan = await planTable(db.url, 'app', 't');
    // The same plan with one option changed: its SQL differs.
    other = mkdtempSync(join(tmpdir(), 'sp-contract-'));
    const changed = await planTable(db.url, 'app', 't', { batchPages: 7 });
    cpSync(changed.dir, other, { recursive: true });
  });
  afterAll(async () => db?.drop());

  it('exit codes: 0 ok, 1 a negative answer, 2 usage, refusal, connection or internal error, in every command', async () => {
    const cases: [string[], number, RegExp | null][] = [
      [['diff', plan.dir, plan.dir], 0, null],
      [['diff', plan.dir, other], 1, null],
      [['diff', 'a', 'b', 'c'], 2, /BAD_ARGUMENT: Unknown argument: c/],
      // Once, as typed (yargs would list bogus-flag and bogusFlag).
      [
        ['status', '--plan', 'p', '--bogus-flag'],
        2,
        /BAD_ARGUMENT: Unknown argument: bogus-flag \(see shadowpack --help\)\n/,
      ],
      [['diff', plan.dir, '/nonexistent/plan'], 2, /PLAN_INVALID/],
      [['verify', '--plan', plan.dir, '--bogus'], 2, /BAD_ARGUMENT/],
      [['verify'], 2, /BAD_ARGUMENT: Missing required argument: plan/],
      [['verify', '--plan', plan.dir, '--url', db.url], 2, /nothing to verify/],
      [['verify', '--plan', plan.dir, '--url', REFUSED], 2, /CONNECTION_FAILED/],
      [['plan', '--table', 'app.t', '--out', join(other, 'x'), '--url', REFUSED], 2, /CONNECTION_FAILED/],
      [['plan', '--table', 'app.t'], 2, /Missing required argument: out/],
      // Both before connecting: the refused URL is never tried.
      [
        ['plan', '--table', 'pg_catalog.pg_class', '--out', join(other, 'sys'), '--url', REFUSED],
        2,
        /UNSUPPORTED_TABLE: pg_catalog\.pg_class: pg_catalog is a system schema/,
      ],
      [['plan', '--table', 'app.t', '--out', '', '--url', REFUSED], 2, /BAD_ARGUMENT: --out "": empty/],
      [['run', '--plan', '/nonexistent/plan'], 2, /PLAN_INVALID/],
      [['control', '--plan', plan.dir], 2, /BAD_ARGUMENT: nothing to change/],
      [['show', '--plan', '/nonexistent/plan'], 2, /PLAN_INVALID/],
    ];
    for (const [args, code, says] of cases) {
      const r = await inProcess(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      if (says) {
        expect(r.stderr).toMatch(says);
        // One line, never a stack, never the password.
        expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
        expect(r.stderr).not.toContain('s3cret-pw');
      }
    }
    // And as a process: the code main returns is the process's exit code.
    expect((await cli(['verify'])).code).toBe(2);
  });

  it('--json and --events: a failure is an error object (or event) on stdout too, with its stable code', async () => {
    const status = await inProcess(['status', '--plan', plan.dir, '--url', REFUSED, '--json']);
    const run = await inProcess(['run', '--plan', plan.dir, '--url', REFUSED, '--events']);
    const verify = await inProcess(['verify', '--plan', plan.dir, '--url', db.url, '--json']);
    const parsed = (r: Exit) =>
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(status.code).toBe(2);
    const [s] = parsed(status);
    expect(s).toMatchObject({ schemaVersion: 1, error: { code: 'CONNECTION_FAILED' } });
    expect(JSON.stringify(s)).not.toContain('s3cret-pw');
    expect(run.code).toBe(2);
    const events = parsed(run);
    expect(events.at(-1)).toMatchObject({
      schemaVersion: 1,
      type: 'error',
      code: 'CONNECTION_FAILED',
      runId: plan.manifest.runId,
      planHash: plan.manifest.planHash,
    });
    for (const e of events) expect(e['ts']).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(verify.code).toBe(2);
    expect(parsed(verify)[0]).toMatchObject({ schemaVersion: 1, error: { code: 'RUN_STATE' } });
  });

  it('a usage error under --json is an error object too', async () => {
    const r = await inProcess(['status', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ schemaVersion: 1, error: { code: 'BAD_ARGUMENT' } });
  });

  it('connects the way libpq does: a keyword/value string, no driver warnings; failures name host, port, database and user with a hint that fits', async () => {
    const u = new URL(db.url);
    // A role of its own, so the password is a string no message could hold by chance.
    const user = `sp_contract_${process.pid}`;
    const password = "pw'Zq7-never-printed";
    await withClient(db.url, (c) => c.query(`CREATE ROLE ${user} LOGIN PASSWORD '${password.replace(/'/g, "''")}'`));
    onTestFinished(async () => {
      await withClient(db.url, (c) => c.query(`DROP ROLE ${user}`));
    });
    const kv = (extra: string) => `host=${u.hostname} port = ${u.port} user=${user} ${extra}`;
    const pw = `password='${password.replace(/'/g, "\\'")}'`;
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const r = await inProcess(['status', '--plan', plan.dir, '--url', kv(`dbname='${db.name}' ${pw}`)]);
    process.off('warning', onWarning);
    expect(warnings).toEqual([]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^app\.t: no run in progress/);
    // sslmode=prefer (libpq's default) against a server without TLS: no warning, no fallback noise
    // (a process warning would reach stderr through process.emitWarning: none is emitted).
    expect(r.stderr).toBe('');

    const failure = async (conninfo: string): Promise<string> => {
      try {
        const c = await connectClient(resolveConnection(conninfo, {}));
        await c.end();
      } catch (e) {
        const m = (e as Error).message;
        expect(m).not.toContain(password);
        expect(m).not.toContain('s3cret');
        return m;
      }
      throw new Error(`connected with ${conninfo}`);
    };
    const where = `PostgreSQL at ${u.hostname}:${u.port}`;
    expect(await failure(kv(`dbname=${db.name} password=s3cret-wrong`))).toMatch(
      new RegExp(
        `^cannot connect to ${where} \\(database ${db.name}, user ${user}\\): password authentication failed .*; check the password of ${user} \\(PGPASSWORD, ~/\\.pgpass`,
      ),
    );
    expect(await failure(kv(`dbname=${db.name} passfile=/nonexistent/pgpass`))).toMatch(
      new RegExp(
        `^cannot connect to ${where} .*: the server asks for a password for user ${user}: set PGPASSWORD, put a line ${u.hostname}:${u.port}:${db.name}:${user}:PASSWORD in /nonexistent/pgpass`,
      ),
    );
    expect(await failure(kv(`dbname=nosuchdb ${pw}`))).toMatch(
      /\(database nosuchdb, user .*database "nosuchdb" does not exist; check the database name/,
    );
    expect(await failure(`host=127.0.0.1 port=1 dbname=x user=y password=s3cret`)).toMatch(
      /^cannot connect to PostgreSQL at 127\.0\.0\.1:1 \(database x, user y\): .*ECONNREFUSED.*; is the server running there/,
    );
    expect(await failure(kv(`dbname=${db.name} sslmode=require ${pw}`))).toMatch(
      /does not support SSL.*; the server has no TLS: use sslmode=prefer/,
    );
  });

  it('a closed pipe ends the command quietly (shadowpack show … | head -1; here a reader gone before the first line)', async () => {
    const r = await new Promise<Exit>((res) => {
      const p = spawn(
        'bash',
        ['-c', `node --import tsx src/cli/main.ts show --plan "$1" | true; echo "\${PIPESTATUS[0]}"`, 'show', plan.dir],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
    });
    expect(r.stderr).toBe('');
    // 141 when the EPIPE came before the end; 0 when the output was all written first. Never a stack.
    expect(r.stdout.trim()).toMatch(/^(0|141)$/);
  });

  it('Ctrl-C during run: one line with the commands to resume and to give up, exit 130; the wait before it is said once, with its bound', async () => {
    const [, classId, objId] = /pg_try_advisory_lock\((\d+), (\d+)\)/.exec(
      readFileSync(join(plan.dir, '00-preflight.sql'), 'utf8'),
    )!;
    // Another session holds the run's advisory lock: preflight waits for it (up to --advisory-wait-seconds).
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock($1::int, $2::int)', [classId, objId]);
    try {
      const r = await new Promise<Exit>((res) => {
        const p = spawn(
          process.execPath,
          ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'run', '--plan', plan.dir, '--url', db.url],
          { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let stdout = '';
        let stderr = '';
        let sent = false;
        p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        p.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          // Once: a second Ctrl-C ends the process the default way, as it should.
          if (!sent && /waiting: another session/.test(stderr)) {
            sent = true;
            p.kill('SIGINT');
          }
        });
        p.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
      });
      expect(r.code, JSON.stringify(r)).toBe(130);
      const lines = r.stderr.trim().split('\n');
      expect(lines.filter((l) => l.includes('waiting:'))).toEqual([
        expect.stringMatching(
          /^ {2}waiting: another session \(pid \d+\) is working on "app"\."t" \(at most 10\.0 s\)$/,
        ),
      ]);
      expect(lines.at(-1)).toBe(
        `shadowpack: interrupted in stage preflight; what was committed stays. To resume: shadowpack run --plan ${plan.dir} --url '${db.url.replace(/:[^:@/]*@/, ':***@')}'; to give up: shadowpack run --plan ${plan.dir} --url '${db.url.replace(/:[^:@/]*@/, ':***@')}' --stage abort to remove everything the run made`,
      );
    } finally {
      await holder.end();
    }
  });
});
