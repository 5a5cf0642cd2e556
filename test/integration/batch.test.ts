import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli } from '../helpers/rebuild.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';
import { readBloat } from '../../src/introspect/bloat.js';
import { planBatch } from '../../src/batch/plan-batch.js';
import { writeBatchDir } from '../../src/batch/batch-dir.js';
import type { BatchManifest } from '../../src/batch/manifest.js';
import { resolveOptions } from '../../src/compile/options.js';
import { runBatch, type BatchEvent } from '../../src/batch/run-batch.js';
import { readBatchDir } from '../../src/batch/batch-dir.js';
import { runCommand } from '../../src/cli/commands/run.js';
import { statusCommand } from '../../src/cli/commands/status.js';
import { diffCommand } from '../../src/cli/commands/diff.js';
import { showCommand } from '../../src/cli/commands/show.js';
import { splitReadme } from '../../src/compile/provenance.js';

/** A command run in this process (a CLI process costs seconds on a loaded machine): its stdout and stderr. */
async function inProcess(
  fn: (out: (line: string) => void, err: (text: string) => void) => Promise<unknown>,
): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  await fn(
    (line) => (stdout += line + '\n'),
    (text) => (stderr += text),
  );
  return { stdout, stderr };
}

/** name, rows, fraction deleted (spread over every page, so VACUUM cannot truncate it away). */
const TABLES: readonly [string, number, number][] = [
  ['big_holes', 12_000, 0.7],
  ['mid_holes', 6_000, 0.5],
  ['few_holes', 6_000, 0.05],
];

async function bloatedSchema(c: pg.ClientBase): Promise<void> {
  await c.query('CREATE SCHEMA b');
  for (const [name, rows, fraction] of TABLES) {
    await c.query(`CREATE TABLE b.${name} (id int PRIMARY KEY, v text NOT NULL)`);
    await c.query(`INSERT INTO b.${name} SELECT g, repeat('x', 80) FROM generate_series(1, ${rows}) g`);
    if (fraction > 0) await c.query(`DELETE FROM b.${name} WHERE (id * 7919) % 1000 < ${Math.round(fraction * 1000)}`);
  }
  await c.query(`
    CREATE TABLE b.nokey (a int, v text);
    INSERT INTO b.nokey SELECT g, repeat('x', 80) FROM generate_series(1, 6000) g;
    DELETE FROM b.nokey WHERE a % 2 = 0;
    CREATE UNLOGGED TABLE b.scratch (id int PRIMARY KEY, v text);
    INSERT INTO b.scratch SELECT g, repeat('x', 80) FROM generate_series(1, 3000) g;
    DELETE FROM b.scratch WHERE id % 2 = 0;
    CREATE TABLE b.parted (id int, d date, PRIMARY KEY (id, d)) PARTITION BY RANGE (d);`);
}

function manifestOf(dir: string): BatchManifest {
  return JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as BatchManifest;
}

const names = (m: BatchManifest) => m.tables.map((t) => `${t.schema}.${t.name}`);

describe('a batch of tables', () => {
  let db: FreshDatabase;
  const base = mkdtempSync(join(tmpdir(), 'sp-batch-'));
  beforeAll(async () => {
    db = await freshDatabase('batch');
    await withClient(db.url, async (c) => {
      await createDemoSchema(c, 3000);
      // Bloat the demo table and its twin alike (the twin is the oracle for every write).
      await c.query(
        'UPDATE app.orders SET qty = qty WHERE id % 2 = 0; UPDATE app.orders_twin SET qty = qty WHERE id % 2 = 0',
      );
      await bloatedSchema(c);
      await c.query('VACUUM ANALYZE');
    });
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('plan --bloated writes a folder for exactly the eligible tables above the threshold, each what plan --table writes, and lists the rest with reasons', async () => {
    const dir = join(base, 'bloated');
    const r = await cli(['plan', '--bloated', '--schema', 'b', '--min-ratio', '0.2', '--out', dir, '--url', db.url]);
    expect(r.code, r.stderr).toBe(0);
    const m = manifestOf(dir);
    const listed = (
      await withClient(db.url, (c) => readBloat(c, { schemas: ['b'], minRatio: 0.2, minSizeBytes: 0 }))
    ).tables.filter((t) => t.reclaimableBytes > 0);
    expect(names(m)).toEqual(listed.filter((t) => t.refusal === null).map((t) => `${t.schema}.${t.name}`));
    expect(names(m)).toEqual(['b.big_holes', 'b.mid_holes']);
    expect(m.skipped.map((s) => `${s.schema}.${s.name}`).sort()).toEqual(['b.nokey', 'b.scratch']);
    expect(m.skipped.find((s) => s.name === 'nokey')!.reason).toMatch(/no primary key/);
    expect(m.skipped.find((s) => s.name === 'scratch')!.reason).toMatch(/UNLOGGED/);
    expect(m.tables[0]!.reclaimableBytes).toBeGreaterThan(m.tables[1]!.reclaimableBytes);
    expect(m.totals.peakDiskBytes).toBe(Math.max(...m.tables.map((t) => t.diskNeededBytes)));
    expect(m.batchHash).toMatch(/^b1:[0-9a-f]{64}$/);
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    for (const text of [
      'Expected gain',
      'Free disk needed at the peak',
      '"b"."big_holes"',
      'ACCESS EXCLUSIVE',
      '"b"."nokey": it has no primary key',
    ])
      expect(readme).toContain(text);
    // sha256sum -c covers the batch's files and every folder's.
    expect(execFileSync('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], { cwd: dir }).toString()).toBe('');
    expect(readFileSync(join(dir, 'SHA256SUMS'), 'utf8')).toContain('  b.big_holes/02-backfill.sql\n');
    // Each folder is exactly a single-table plan.
    const single = join(base, 'single');
    expect((await cli(['plan', '--table', 'b.mid_holes', '--out', single, '--url', db.url])).code).toBe(0);
    // (Byte for byte but for the approver's header: when and by which command each was planned, outside the plan hash.)
    const files = readdirSync(single).sort();
    expect(readdirSync(join(dir, 'b.mid_holes')).sort()).toEqual(files);
    const inBatch = (f: string) => readFileSync(join(dir, 'b.mid_holes', f), 'utf8');
    const alone = (f: string) => readFileSync(join(single, f), 'utf8');
    for (const f of files.filter((x) => !['README.md', 'plan.json', 'SHA256SUMS'].includes(x)))
      expect(inBatch(f), f).toBe(alone(f));
    expect(splitReadme(inBatch('README.md')).body).toBe(splitReadme(alone('README.md')).body);
    expect(inBatch('README.md')).toContain('shadowpack plan --bloated --schema b');
    const { provenance: p1, ...m1 } = JSON.parse(inBatch('plan.json')) as { provenance: unknown };
    const { provenance: p2, ...m2 } = JSON.parse(alone('plan.json')) as { provenance: unknown };
    expect(m1).toEqual(m2);
    expect(p1).not.toEqual(p2);
    // show prints the batch's summary under the hash to approve, and warns about nothing.
    const shown = await inProcess((out, err) => showCommand({ plan: dir }, out, (line) => err(line + '\n')));
    expect(shown.stdout.split('\n')[0]).toContain(`batch hash ${m.batchHash}`);
    expect(shown.stdout).toContain(readme);
    expect(shown.stderr).toBe('');
    // An edited summary, or a folder that is not the one the batch recorded, stops the run before anything.
    writeFileSync(join(dir, 'README.md'), readme.replace('Expected gain', 'Gain'));
    await expect(
      runCommand(
        { plan: dir, url: db.url },
        () => undefined,
        () => undefined,
        false,
      ),
    ).rejects.toThrow(/README.md is missing or differs/);
    writeFileSync(join(dir, 'README.md'), readme);
    await expect(
      runCommand(
        { plan: dir, url: db.url, expectHash: 'b1:0' },
        () => undefined,
        () => undefined,
        false,
      ),
    ).rejects.toThrow(/not the approved b1:0/);
    // The second table's folder edited: refused before the first table starts.
    const planJson = join(dir, 'b.mid_holes', 'plan.json');
    const kept = readFileSync(planJson, 'utf8');
    const edited = kept.replace(/"batchPages": (\d+)/, (_, n: string) => `"batchPages": ${Number(n) + 1}`);
    expect(edited).not.toBe(kept);
    writeFileSync(planJson, edited);
    await expect(
      runCommand(
        { plan: dir, url: db.url },
        () => undefined,
        () => undefined,
        false,
      ),
    ).rejects.toThrow(/b\.mid_holes\/plan\.json was edited after it was made/);
    writeFileSync(planJson, kept);
    expect(await withClient(db.url, (c) => c.query("SELECT to_regnamespace('shadowpack') AS n"))).toMatchObject({
      rows: [{ n: null }],
    });
    // A table in one batch and a transformation do not mix.
    const bad = await cli(['plan', '--schema', 'b', '--fillfactor', '90', '--out', join(base, 'bad'), '--url', db.url]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--fillfactor changes one table');
  });

  it('run: stops after the first swap by default; --until cleanup goes on; after a SIGKILL it finishes without redoing a table, every write kept', async () => {
    const dir = join(base, 'run');
    const tables = ['app.orders', 'b.big_holes', 'b.mid_holes'];
    const p = await cli([
      'plan',
      ...tables.flatMap((t) => ['--table', t]),
      '--out',
      dir,
      '--url',
      db.url,
      '--batch-pages',
      '20',
    ]);
    expect(p.code, p.stderr).toBe(0);
    const m = manifestOf(dir);
    expect(names(m).sort()).toEqual([...tables].sort());
    const status = async () =>
      JSON.parse((await inProcess((out) => statusCommand({ plan: dir, url: db.url, json: true }, out))).stdout) as {
        tables: { standing: { kind: string } }[];
      };
    const writers = await startWriters({ connectionString: db.url }, 2, 2);
    try {
      // Default: like a single-table run, it stops after a swap, with that table's revert window open.
      let r = await inProcess((out, err) =>
        runCommand({ plan: dir, url: db.url, expectHash: m.batchHash }, out, err, false),
      );
      expect(r.stdout).toContain(
        `"${m.tables[0]!.schema}"."${m.tables[0]!.name}" is swapped and its revert window is open`,
      );
      expect((await status()).tables.map((t) => t.standing.kind)).toEqual(['swapped', 'not-started', 'not-started']);
      // Unattended through cleanup, killed while the last table runs.
      const killed = await cli(['run', '--plan', dir, '--url', db.url, '--until', 'cleanup'], {
        killWhen: { stderr: /\[table 3 of 3\]/, delayMs: 300 },
      });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      expect(killed.stderr).toMatch(/batch: 2 of 3 tables done, .* reclaimed so far/);
      r = await inProcess((out, err) => runCommand({ plan: dir, url: db.url, until: 'cleanup' }, out, err, false));
      expect(r.stderr).toMatch(/\[table 1 of 3\] .*: rebuilt earlier/);
      expect(r.stderr).toMatch(/\[table 2 of 3\] .*: rebuilt earlier/);
      expect(r.stdout).toContain('batch: 3 of 3 tables rebuilt and cleaned up');
    } finally {
      const stats = await writers.stop();
      expect(stats.errors, stats.lastError ?? '').toBe(0);
    }
    await withClient(db.url, async (c) => {
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
      // Each plan ran once: one cleaned run per table in the history, none aborted or redone.
      const h = await c.query<{ plan_id: string; outcome: string }>(
        'SELECT plan_id, outcome FROM shadowpack.history ORDER BY plan_id',
      );
      expect(h.rows.map((x) => x.plan_id).sort()).toEqual(m.tables.map((t) => t.planId).sort());
      expect(h.rows.every((x) => x.outcome === 'cleaned')).toBe(true);
      // The tables nobody wrote to shrank by at least 0.8 × the estimate.
      const b = m.tables.filter((t) => t.schema === 'b');
      const now = await c.query<{ n: string }>(
        "SELECT sum(pg_total_relation_size(format('b.%I', t)::regclass))::text AS n FROM unnest($1::text[]) t",
        [b.map((t) => t.name)],
      );
      const gained = b.reduce((sum, t) => sum + t.totalBytes, 0) - Number(now.rows[0]!.n);
      expect(gained).toBeGreaterThanOrEqual(0.8 * b.reduce((sum, t) => sum + t.reclaimableBytes, 0));
    });
    const st = await inProcess((out) => statusCommand({ plan: dir, url: db.url }, out));
    expect(st.stdout).toMatch(/3 of 3 tables finished; .* reclaimed so far/);
  });

  it('stops at the first failure with that table aborted and the rest untouched; run again finishes', async () => {
    await withClient(db.url, (c) =>
      c.query(`
      CREATE TABLE b.first (id int PRIMARY KEY, v text); INSERT INTO b.first SELECT g, repeat('y', 200) FROM generate_series(1, 4000) g;
      DELETE FROM b.first WHERE id % 4 <> 0;
      CREATE TABLE b.second (id int PRIMARY KEY, v text); INSERT INTO b.second SELECT g, 'z' FROM generate_series(1, 1000) g;`),
    );
    await withClient(db.url, (c) => c.query('VACUUM ANALYZE b.first, b.second'));
    const dir = join(base, 'failing');
    const p = await cli([
      'plan',
      '--table',
      'b.first',
      '--table',
      'b.second',
      '--out',
      dir,
      '--url',
      db.url,
      '--lock-attempts',
      '1',
      '--lock-timeout-ms',
      '50',
      '--lock-budget-ms',
      '50',
    ]);
    expect(p.code, p.stderr).toBe(0);
    expect(names(manifestOf(dir))).toEqual(['b.first', 'b.second']);
    // A transaction holding a row lock on the first table: setup's trigger lock gives up.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN; UPDATE b.first SET v = v WHERE id = 4');
      const r = await cli(['run', '--plan', dir, '--url', db.url, '--until', 'cleanup']);
      expect(r.code).toBe(2);
      // Tried three times (a stage that stops with nothing changed often passes a moment later), then aborted.
      expect(r.stderr).toMatch(/\[table 1 of 2\] "b"\."first": attempt 2 stopped .*; trying again/);
      expect(r.stderr).toMatch(
        /\[table 1 of 2\] "b"\."first": failed .*aborted: the table is as it was; the tables after it were not started/,
      );
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    await withClient(db.url, async (c) => {
      const left = await c.query<{ n: string }>(
        "SELECT count(*)::text AS n FROM pg_class WHERE relnamespace = 'shadowpack'::regnamespace AND relname <> 'history'",
      );
      expect(left.rows[0]!.n).toBe('0');
      const m = manifestOf(dir);
      const h = await c.query<{ outcome: string }>('SELECT outcome FROM shadowpack.history WHERE plan_id = $1', [
        m.tables[1]!.planId,
      ]);
      expect(h.rows).toEqual([]);
    });
    const again = await inProcess((out, err) =>
      runCommand({ plan: dir, url: db.url, until: 'cleanup' }, out, err, false),
    );
    expect(again.stdout).toContain('batch: 2 of 2 tables rebuilt and cleaned up');
  });
});

describe('diff of two batches', () => {
  const dbs: FreshDatabase[] = [];
  afterAll(async () => {
    for (const d of dbs) await d.drop();
  });

  async function batchOf(db: FreshDatabase, dir: string): Promise<void> {
    await withClient(db.url, async (c) =>
      writeBatchDir(
        dir,
        await planBatch(c, { selection: { schemas: ['s'], tables: [], bloated: null }, options: resolveOptions({}) }),
        true,
      ),
    );
  }

  it('exits 0 for the same schemas with other data, 1 naming the table first when one has an extra index', async () => {
    const base = mkdtempSync(join(tmpdir(), 'sp-batch-diff-'));
    for (const [label, rows] of [
      ['staging', 100],
      ['production', 2000],
    ] as const) {
      const db = await freshDatabase(`batch_${label}`);
      dbs.push(db);
      await withClient(db.url, (c) =>
        c.query(`
        CREATE SCHEMA s;
        CREATE TABLE s.a (id int PRIMARY KEY, v text); INSERT INTO s.a SELECT g, 'v' FROM generate_series(1, ${rows}) g;
        CREATE TABLE s.b (id bigint PRIMARY KEY, w int NOT NULL REFERENCES s.a); INSERT INTO s.b SELECT g, g FROM generate_series(1, ${rows}) g;
        ANALYZE;`),
      );
    }
    const [staging, production] = dbs as [FreshDatabase, FreshDatabase];
    await batchOf(staging, join(base, 'staging'));
    await batchOf(production, join(base, 'production'));
    let r = await cli(['diff', join(base, 'staging'), join(base, 'production')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('SQL identical in all 2 tables');
    await withClient(production.url, (c) => c.query('CREATE INDEX b_w_idx ON s.b (w)'));
    await batchOf(production, join(base, 'production'));
    r = await cli(['diff', join(base, 'staging'), join(base, 'production')]);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')[0]).toBe('SQL differs in 1 of 2 tables: "s"."b"');
    expect(r.stdout).toContain('b_w_idx');
    const j = JSON.parse(
      (
        await inProcess((out) =>
          diffCommand({ a: join(base, 'staging'), b: join(base, 'production'), json: true }, out),
        )
      ).stdout,
    ) as { identical: boolean; tables: { table: string }[] };
    expect(j.identical).toBe(false);
    expect(j.tables[0]!.table).toBe('"s"."b"');
    // Foreign-key neighbours are recorded, and --parallel-tables never runs them at once.
    await expect(
      diffCommand({ a: join(base, 'staging'), b: join(base, 'production', 's.a') }, () => undefined),
    ).rejects.toThrow(/is a batch and .* one table's plan/);
    const staged = readBatchDir(join(base, 'staging'))
      .manifest.tables.map((t) => [t.name, t.neighbours])
      .sort();
    expect(staged).toEqual([
      ['a', ['"s"."b"']],
      ['b', ['"s"."a"']],
    ]);
  });

  it('--parallel-tables 2 runs independent tables at once, never two that share a foreign key', async () => {
    const staging = dbs[0]!;
    await withClient(staging.url, (c) =>
      c.query(
        "CREATE TABLE s.c (id int PRIMARY KEY, v text); INSERT INTO s.c SELECT g, 'c' FROM generate_series(1, 100) g; ANALYZE s.c",
      ),
    );
    const dir = join(mkdtempSync(join(tmpdir(), 'sp-batch-par-')), 'batch');
    await batchOf(staging, dir);
    const batch = readBatchDir(dir);
    const order = batch.manifest.tables.map((t) => t.name);
    expect(order.sort()).toEqual(['a', 'b', 'c']);
    const events: BatchEvent[] = [];
    const summary = await runBatch({
      batch,
      connection: { connectionString: staging.url },
      until: 'cleanup',
      parallelTables: 2,
      onEvent: (e) => e.type !== 'run' && events.push(e),
    });
    expect(summary.finished).toBe(true);
    const at = (type: BatchEvent['type'], name: string) =>
      events.findIndex((e) => e.type === type && 'table' in e && e.table === `"s"."${name}"`);
    // a and b share a foreign key: whichever starts first ends before the other starts.
    const [first, second] = at('batch-table-start', 'a') < at('batch-table-start', 'b') ? ['a', 'b'] : ['b', 'a'];
    expect(at('batch-table-end', first)).toBeLessThan(at('batch-table-start', second));
    // c shares nothing: it starts alongside the first, before the second.
    expect(at('batch-table-start', 'c')).toBeLessThan(at('batch-table-start', second));
    await expect(
      runBatch({
        batch,
        connection: { connectionString: staging.url },
        until: 'swap',
        parallelTables: 2,
        onEvent: () => undefined,
      }),
    ).rejects.toThrow(/--parallel-tables runs tables unattended/);
  });
});
