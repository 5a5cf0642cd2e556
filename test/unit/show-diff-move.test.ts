/**
 * `show` and `diff` on move plans (issue 15): both used to crash on a move plan's plan.json (an internal
 * error reading the rebuild's fields). Written from the move-group golden input, no database.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileMove } from '../../src/compile/move/compile-move.js';
import type { MoveInput } from '../../src/compile/move/context.js';
import { diffCommand } from '../../src/cli/commands/diff.js';
import { showCommand } from '../../src/cli/commands/show.js';
import { loadMoveTemplates, writeMovePlan } from '../../src/planning/plan-move.js';
import { FIXTURES } from '../helpers/compile-fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'sp-show-move-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const templates = loadMoveTemplates();
const input = JSON.parse(readFileSync(join(FIXTURES, 'move-group', 'move-input.json'), 'utf8')) as MoveInput;

function write(name: string, inp: MoveInput): { dir: string; hash: string } {
  const plan = compileMove(inp, templates, '0.1.0');
  const dir = join(root, name);
  writeMovePlan(dir, plan, false);
  return { dir, hash: plan.manifest.planHash };
}

const a = write('a', input);
const same = write('same', input);
const other = write('other', { ...input, options: { ...input.options, batchPages: 250 } });

async function show(dir: string): Promise<{ out: string; warn: string }> {
  const out: string[] = [];
  const warn: string[] = [];
  await showCommand(
    { plan: dir },
    (l) => out.push(l),
    (l) => warn.push(l),
  );
  return { out: out.join('\n'), warn: warn.join('\n') };
}

async function diff(args: Parameters<typeof diffCommand>[0]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const code = await diffCommand(args, (l) => out.push(l));
  return { code, out: out.join('\n') };
}

describe('show on a move plan', () => {
  it('prints the plan hash, both sides, every stage with its side, then the README; no warning on an intact plan', async () => {
    const r = await show(a.dir);
    expect(r.warn).toBe('');
    expect(r.out).toContain(`move plan hash ${a.hash}`);
    expect(r.out).toMatch(/source: database shop on db-old\.example\.internal:5432 \(server_version_num 140023\)/);
    expect(r.out).toMatch(/target: database shop on db-new\.example\.internal:5432/);
    expect(r.out).toMatch(/^ {2}06-fence\.source\.sql {2}source {2}fence {2}hazards: .*WRITE_FREEZE/m);
    expect(r.out).toMatch(/^ {2}07-cutover\.target\.sql {2}target {2}cutover/m);
    expect(r.out).toContain('Run each stage on its side, in this order:');
  });

  it('warns, on stderr and in the output, when a stage script was edited after review', async () => {
    const t = write('tampered', input);
    writeFileSync(
      join(t.dir, '05-catchup.target.sql'),
      readFileSync(join(t.dir, '05-catchup.target.sql'), 'utf8') + '-- edited\n',
    );
    const r = await show(t.dir);
    expect(r.warn).toMatch(/PLAN_TAMPERED: .*05-catchup\.target\.sql differs from the reviewed plan/);
    expect(r.out).toMatch(/WARNING\*\*: 2 integrity problem/);
  });
});

describe('diff of move plans', () => {
  it('says identical (exit 0) for the same plan made twice', async () => {
    const r = await diff({ a: a.dir, b: same.dir });
    expect(r.code).toBe(0);
    expect(r.out).toContain('SQL identical');
    expect(r.out).toContain(`A: ${a.dir} (${a.hash})`);
  });

  it('names the changed option and shows the script diffs with both hashes (exit 1)', async () => {
    expect(other.hash).not.toBe(a.hash);
    const r = await diff({ a: a.dir, b: other.dir });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^SQL differs in \d+ file\(s\)/);
    expect(r.out).toContain(`B: ${other.dir} (${other.hash})`);
    expect(r.out).toMatch(/options: .*"batchPages":1000.* in A, .*"batchPages":250.* in B/);
    expect(r.out).toMatch(/^--- .*\/a\/02-setup\.target\.sql\n\+\+\+ .*\/other\/02-setup\.target\.sql$/m);
    // The batch size is the control row's starting value (control --batch-pages changes it while running).
    expect(r.out).toMatch(/^-VALUES \(1000, 0, true\);\n\+VALUES \(250, 0, true\);$/m);
    const json = await diff({ a: a.dir, b: other.dir, json: true });
    expect(json.code).toBe(1);
    expect(json.out).toContain(other.hash);
  });

  it('refuses a move plan against a rebuild folder, and --plan of a move plan without --target-url, in one line', async () => {
    const empty = mkdtempSync(join(root, 'rebuild-'));
    await expect(diff({ a: a.dir, b: empty })).rejects.toThrow(
      /is a move plan and .* is not: compare a move plan with a move plan/,
    );
    await expect(diff({ plan: a.dir, url: 'postgres://x@127.0.0.1:1/x' })).rejects.toThrow(
      /is a move plan: its stages run on two clusters; give the target with --target-url/,
    );
  });
});
