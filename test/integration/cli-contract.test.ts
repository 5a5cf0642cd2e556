import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, planTable, type Exit } from '../helpers/rebuild.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';

/** A closed port on this machine: connecting is refused at once. */
const REFUSED = 'postgresql://nobody:s3cret-pw@127.0.0.1:1/nowhere';

/** At most two CLIs at a time: each is a Node process, and the machine is shared. */
async function pairs<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += 2) results.push(...(await Promise.all(items.slice(i, i + 2).map(fn))));
  return results;
}

describe('the command-line contract for scripts (docs/scripting.md)', () => {
  let db: FreshDatabase;
  let plan: LoadedPlan;
  let other: string;
  beforeAll(async () => {
    db = await freshDatabase('cli_contract');
    await withClient(db.url, (c) => c.query('CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text); INSERT INTO app.t SELECT g, g::text FROM generate_series(1, 100) g'));
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
      [['diff', plan.dir, '/nonexistent/plan'], 2, /PLAN_INVALID/],
      [['verify', '--plan', plan.dir, '--bogus'], 2, /BAD_ARGUMENT/],
      [['verify'], 2, /BAD_ARGUMENT: Missing required argument: plan/],
      [['verify', '--plan', plan.dir, '--url', db.url], 2, /nothing to verify/],
      [['verify', '--plan', plan.dir, '--url', REFUSED], 2, /CONNECTION_FAILED/],
      [['plan', '--table', 'app.t', '--out', join(other, 'x'), '--url', REFUSED], 2, /CONNECTION_FAILED/],
      [['plan', '--table', 'app.t'], 2, /Missing required argument: out/],
      [['run', '--plan', '/nonexistent/plan'], 2, /PLAN_INVALID/],
      [['control', '--plan', plan.dir], 2, /BAD_ARGUMENT: nothing to change/],
      [['show', '--plan', '/nonexistent/plan'], 2, /PLAN_INVALID/],
    ];
    const results = await pairs(cases, async ([args]) => cli(args));
    cases.forEach(([args, code, says], i) => {
      const r = results[i]!;
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      if (says) {
        expect(r.stderr).toMatch(says);
        // One line, never a stack, never the password.
        expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
        expect(r.stderr).not.toContain('s3cret-pw');
      }
    });
  });

  it('--json and --events: a failure is an error object (or event) on stdout too, with its stable code', async () => {
    const [status, run, verify] = await Promise.all([
      cli(['status', '--plan', plan.dir, '--url', REFUSED, '--json']),
      cli(['run', '--plan', plan.dir, '--url', REFUSED, '--events']),
      cli(['verify', '--plan', plan.dir, '--url', db.url, '--json']),
    ]);
    const parsed = (r: Exit) => r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(status.code).toBe(2);
    const [s] = parsed(status);
    expect(s).toMatchObject({ schemaVersion: 1, error: { code: 'CONNECTION_FAILED' } });
    expect(JSON.stringify(s)).not.toContain('s3cret-pw');
    expect(run.code).toBe(2);
    const events = parsed(run);
    expect(events.at(-1)).toMatchObject({ schemaVersion: 1, type: 'error', code: 'CONNECTION_FAILED', runId: plan.manifest.runId, planHash: plan.manifest.planHash });
    for (const e of events) expect(e['ts']).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(verify.code).toBe(2);
    expect(parsed(verify)[0]).toMatchObject({ schemaVersion: 1, error: { code: 'RUN_STATE' } });
  });

  it('a usage error under --json is an error object too', async () => {
    const r = await cli(['status', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ schemaVersion: 1, error: { code: 'BAD_ARGUMENT' } });
  });
});
