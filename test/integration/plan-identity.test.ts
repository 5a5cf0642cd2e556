import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable } from '../helpers/rebuild.js';
import { createDemoSchema } from '../../src/dev/workload.js';

describe('plans are bound to the schema, not the data', () => {
  let small: FreshDatabase;
  let large: FreshDatabase;
  beforeAll(async () => {
    small = await freshDatabase('ident_small');
    large = await freshDatabase('ident_large');
    await withClient(small.url, (c) => createDemoSchema(c, 1_000));
    await withClient(large.url, (c) => createDemoSchema(c, 30_000));
  });
  afterAll(async () => {
    await small?.drop();
    await large?.drop();
  });

  it('gives byte-identical scripts for the same schema in two databases with different data', async () => {
    const a = await planTable(small.url, 'app', 'orders');
    const b = await planTable(large.url, 'app', 'orders');
    expect(a.manifest.fingerprint).toBe(b.manifest.fingerprint);
    expect(a.manifest.environment.reltuples).not.toBe(b.manifest.environment.reltuples);
    for (const s of a.manifest.stages) {
      expect(a.files.get(s.file), s.file).toBe(b.files.get(s.file));
    }
  });

  it('diff: exit 0 naming only environment facts, exit 1 naming an added index first', async () => {
    const a = await planTable(small.url, 'app', 'orders');
    const b = await planTable(large.url, 'app', 'orders');
    let r = await cli(['diff', a.dir, b.dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^SQL identical\nA: \S+ \(p1:[0-9a-f]+\)\nB: \S+ \(p1:[0-9a-f]+\)\n/);
    // Finding 37: the hashes differ with the SQL the same, and the output says why.
    expect(r.stdout).toContain('the plan hashes differ although the SQL is the same: a plan is bound to its database');
    expect(r.stdout).toContain('environment (never part of the SQL):');
    expect(r.stdout).toMatch(/reltuples: .* in A, .* in B/);
    expect(r.stdout).not.toContain('table differences');
    await withClient(large.url, (c) => c.query('CREATE INDEX orders_note_idx ON app.orders (note)'));
    try {
      const c2 = await planTable(large.url, 'app', 'orders');
      r = await cli(['diff', a.dir, c2.dir]);
      expect(r.code).toBe(1);
      const lines = r.stdout.split('\n');
      expect(lines[0]).toMatch(/^SQL differs/);
      expect(lines[1]).toBe(`A: ${a.dir} (${a.manifest.planHash})`);
      expect(lines[2]).toBe(`B: ${c2.dir} (${c2.manifest.planHash})`);
      expect(lines[4]).toBe('table differences:');
      expect(lines[5]).toBe('  index orders_note_idx only in B');
      expect(r.stdout).toContain('+CREATE INDEX IF NOT EXISTS');
      const j = await cli(['diff', a.dir, c2.dir, '--json']);
      expect(j.code).toBe(1);
      expect(JSON.parse(j.stdout).identical).toBe(false);
      // An approved plan against the live database: the index added since shows.
      r = await cli(['diff', '--plan', b.dir, '--url', large.url]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('index orders_note_idx only in B');
      expect(r.stdout).toMatch(/\nB: the live database now \(the plan it gives, p1:[0-9a-f]+\)\n/);
      r = await cli(['diff', '--plan', c2.dir, '--url', large.url]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    } finally {
      await withClient(large.url, (c) => c.query('DROP INDEX app.orders_note_idx'));
    }
    r = await cli(['diff', a.dir, '/nonexistent/plan']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('PLAN_INVALID');
  });

  it('refuses a tampered script, a wrong --expect-hash and a changed table before changing anything', async () => {
    const plan = await planTable(small.url, 'app', 'orders');
    const setup = join(plan.dir, '01-setup.sql');
    const original = readFileSync(setup, 'utf8');
    writeFileSync(setup, original.replace('-- The copy.', '-- The copy!'));
    let r = await cli(['run', '--plan', plan.dir, '--url', small.url, '--until', 'cleanup']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PLAN_TAMPERED: .*01-setup\.sql differs/);
    writeFileSync(setup, original);
    r = await cli(['run', '--plan', plan.dir, '--url', small.url, '--expect-hash', 'p1:0000', '--until', 'cleanup']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('PLAN_HASH_MISMATCH');
    await withClient(small.url, async (c) => {
      expect(await leftovers(c)).toEqual([]);
      await c.query('CREATE INDEX orders_note_idx ON app.orders (note)');
    });
    r = await cli([
      'run',
      '--plan',
      plan.dir,
      '--url',
      small.url,
      '--expect-hash',
      plan.manifest.planHash,
      '--until',
      'cleanup',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/changed since this plan was made/);
    await withClient(small.url, async (c) => {
      expect(await leftovers(c)).toEqual([]);
      await c.query('DROP INDEX app.orders_note_idx');
    });
  });

  it('reports where a run stands, whichever executor ran it', async () => {
    const plan = await planTable(small.url, 'app', 'orders');
    let r = await cli(['status', '--plan', plan.dir, '--url', small.url]);
    expect(r.stdout).toContain('no run in progress');
    r = await cli(['run', '--plan', plan.dir, '--url', small.url, '--until', 'backfill']);
    expect(r.code, r.stderr).toBe(0);
    r = await cli(['status', '--plan', plan.dir, '--url', small.url, '--json']);
    const status = JSON.parse(r.stdout) as { state: { stage: string; rowsCopied: number }; next: string };
    expect(status.state.stage).toBe('backfill');
    expect(status.next).toBe('build');
    expect(status.state.rowsCopied).toBeGreaterThanOrEqual(1_000);
    r = await cli(['run', '--plan', plan.dir, '--url', small.url, '--stage', 'abort']);
    expect(r.code, r.stderr).toBe(0);
    await withClient(small.url, async (c) => expect(await leftovers(c)).toEqual([]));
  });
});
