import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import { resolveOptions } from '../../src/compile/options.js';
import { HEADER_END } from '../../src/compile/provenance.js';
import { resolveTransform } from '../../src/compile/transform/spec.js';
import { loadTemplates } from '../../src/planning/templates.js';
import type { EnvironmentFacts, TableModel } from '../../src/model/types.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'compile');
const read = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

/**
 * The approver's first screen (issue 18): what the README golden files hold byte for byte, checked
 * here for what it must say and how long it may be. The orders-alter case has foreign keys in and
 * out (other tables locked at the swap) and a type change.
 */
describe('the review summary opens with the approval facts and a one-screen summary', () => {
  const spec = read<{ appendColumns: TableModel['columns']; alter: unknown[] }>(
    join(FIXTURES, 'orders-alter', 'transform.json'),
  );
  const base = read<TableModel>(join(FIXTURES, 'orders', 'model.json'));
  const plan = compile({
    model: { ...base, columns: [...base.columns, ...spec.appendColumns] },
    facts: read<EnvironmentFacts>(join(FIXTURES, 'orders', 'facts.json')),
    options: resolveOptions({}),
    templates: loadTemplates(),
    toolVersion: '0.1.0',
    transform: resolveTransform(spec as never),
    provenance: {
      plannedAt: '2026-12-01T09:30:00Z',
      role: 'dba',
      runAs: 'app',
      host: 'db1',
      port: 5433,
      command: "shadowpack plan --table public.orders --out plans/o --alter 'ALTER COLUMN status TYPE varchar(20)'",
    },
  });
  const readme = plan.files.get('README.md')!;
  const firstScreen = readme.slice(0, readme.indexOf('## What changes'));
  const hash = plan.manifest.planHash;

  it('puts the header first: hash, when, who, where, command, version, then the commands with the hash', () => {
    const lines = firstScreen.split('\n');
    expect(lines.slice(0, 10)).toEqual([
      '# shadowpack plan: rebuild public.orders',
      '',
      '| | |',
      '|---|---|',
      `| plan hash | \`${hash}\` — approve this one; \`run --expect-hash\` refuses any other |`,
      '| planned at | 2026-12-01 09:30:00 UTC |',
      '| planned by | role `dba`; privileges checked for `app` (`--run-as`) |',
      '| planned on | host `db1` port 5433, database `shop`, cluster id 7311947382190823453, PostgreSQL 17.2 |',
      "| command | `shadowpack plan --table public.orders --out plans/o --alter 'ALTER COLUMN status TYPE varchar(20)'` |",
      '| tool | shadowpack 0.1.0, plan format 1 |',
    ]);
    expect(firstScreen).toContain(`shadowpack run --plan DIR --until swap --expect-hash ${hash}`);
    expect(firstScreen).toContain(`shadowpack run --plan DIR --until cleanup --expect-hash ${hash}`);
    expect(firstScreen).toContain(`shadowpack run --plan DIR --stage revert --expect-hash ${hash}`);
    expect(firstScreen).toContain(HEADER_END);
  });

  it('then says in one screen what the application feels, what it costs, and how to go back', () => {
    const glance = firstScreen.slice(firstScreen.indexOf('## At a glance'));
    // Every table that gets ACCESS EXCLUSIVE, the parent and the child of the foreign keys too.
    expect(glance).toContain(
      '"public"."orders" (at swap, cleanup, abort, revert); "public"."order_lines", "public"."customers", "public"."orders_id_seq" (at swap, revert)',
    );
    expect(glance).toMatch(
      /\*\*Worst-case application stall\*\*: 200 ms behind an attempt, .* caps it at \d+ statements × 5000 ms = \d+ min/,
    );
    expect(glance).toContain('**Disk**: ≈ 156.3 MB free');
    expect(glance).toMatch(
      /\*\*Duration\*\*: ≈ 11 s of work .* up to ≈ \d+ min if every bounded wait runs to its limit \(3 locking steps × 30 rounds ≤ 96 s each, old snapshots 2 × 300 s\)/,
    );
    expect(glance).toContain('**Revert**: possible after the swap until cleanup');
    // --alter: the old type too (newcomer review finding 22).
    expect(glance).toContain('column status: type text → varchar(20) (USING upper(status))');
    // One screen: the header and the glance together, before the details.
    expect(firstScreen.split('\n').length).toBeLessThanOrEqual(35);
  });
});
