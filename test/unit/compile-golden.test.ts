import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTemplates } from '../../src/planning/templates.js';
import { BINDING_FILE, compile, type Plan } from '../../src/compile/compile.js';
import { splitReadme, type PlanProvenance } from '../../src/compile/provenance.js';
import type { PlanOptions } from '../../src/compile/options.js';
import { runNames } from '../../src/model/names.js';
import { byteLength } from '../../src/model/quote.js';
import type { EnvironmentFacts } from '../../src/model/types.js';
import { cases, FIXTURES, load, type Case } from '../helpers/compile-fixtures.js';

const UPDATE = process.env['UPDATE_GOLDENS'] === '1';
const TOOL_VERSION = '0.1.0';
const templates = loadTemplates();

/** A fixed provenance, so the README goldens show the approver's header as `plan` writes it. */
const provenanceOf = (c: Case): PlanProvenance => ({
  plannedAt: '2026-12-01T09:30:00Z',
  role: 'dba',
  runAs: null,
  host: 'db1.example.internal',
  port: 5432,
  command: `shadowpack plan --table ${c.model.schema}.${c.model.name} --out plans/${c.model.name}`,
});

const build = (c: Case, options: PlanOptions = c.options, provenance: PlanProvenance = provenanceOf(c)): Plan =>
  compile({
    model: c.model,
    facts: c.facts,
    options,
    templates,
    toolVersion: TOOL_VERSION,
    provenance,
    ...(c.transform ? { transform: c.transform } : {}),
  });

/** Files compared with goldens: every script and the README. */
const goldenNames = (plan: Plan): string[] =>
  [...plan.files.keys()].filter((f) => f.endsWith('.sql') || f === 'README.md').sort();

/** The stage scripts: every .sql file but binding.sql, which is written per environment. */
const sqlFiles = (plan: Plan): [string, string][] =>
  [...plan.files.entries()]
    .filter(([f]) => f.endsWith('.sql') && f !== BINDING_FILE)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** First differing line, to make a golden mismatch readable without a full dump. */
function firstDifference(expected: string, actual: string): string {
  const e = expected.split('\n');
  const a = actual.split('\n');
  for (let i = 0; i < Math.max(e.length, a.length); i++) {
    if (e[i] !== a[i])
      return `line ${i + 1}:\n  expected: ${JSON.stringify(e[i])}\n  actual:   ${JSON.stringify(a[i])}`;
  }
  return 'identical lines, different bytes (line endings?)';
}

describe('compile goldens', () => {
  it('finds at least four fixture cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(4);
    expect(cases).toEqual(expect.arrayContaining(['orders', 'composite-key', 'unique-index-key', 'hostile-names']));
  });

  describe.each(cases)('%s', (name) => {
    const c = load(name);
    const expectedDir = join(FIXTURES, name, 'expected');

    it('matches the golden files byte for byte', () => {
      const plan = build(c);
      const names = goldenNames(plan);
      expect(names).toContain('README.md');
      expect(names.filter((n) => n.endsWith('.sql')).length).toBeGreaterThan(0);
      if (UPDATE) mkdirSync(expectedDir, { recursive: true });
      const problems: string[] = [];
      for (const file of names) {
        const actual = plan.files.get(file)!;
        const path = join(expectedDir, file);
        if (UPDATE) {
          writeFileSync(path, actual, 'utf8');
          continue;
        }
        if (!existsSync(path)) {
          problems.push(`${name}/expected/${file} is missing`);
          continue;
        }
        const expected = readFileSync(path, 'utf8');
        if (expected !== actual)
          problems.push(`${name}/expected/${file} differs at ${firstDifference(expected, actual)}`);
      }
      if (!UPDATE && existsSync(expectedDir)) {
        for (const stale of readdirSync(expectedDir).sort()) {
          if (!names.includes(stale)) problems.push(`${name}/expected/${stale} is no longer generated`);
        }
      }
      if (problems.length > 0) {
        throw new Error(
          `${problems.join('\n')}\n\nIf the change is intended, run \`npm run goldens:update\` and review the diff of fixtures/compile/${name}/expected before committing.`,
        );
      }
    });

    it('is deterministic: compiling twice gives the same files and plan hash', () => {
      const a = build(c);
      const b = build(c);
      expect([...b.files.entries()]).toEqual([...a.files.entries()]);
      expect(b.manifest.planHash).toBe(a.manifest.planHash);
    });

    it('does not let environment facts reach the SQL', () => {
      const a = build(c);
      const other: EnvironmentFacts = {
        serverVersionNum: c.facts.serverVersionNum === 170002 ? 140011 : 170002,
        serverVersion: c.facts.serverVersion === '17.2' ? '14.11' : '17.2',
        relpages: c.facts.relpages * 7 + 3,
        reltuples: c.facts.reltuples * 11 + 5,
        totalBytes: c.facts.totalBytes * 13 + 8192,
        tableBytes: c.facts.tableBytes * 13 + 4096,
        indexBytes: c.facts.indexBytes * 13 + 4096,
        database: `${c.facts.database}_other`,
        databaseOid: c.facts.databaseOid + 1,
        systemIdentifier: c.facts.systemIdentifier === null ? '7000000000000000001' : null,
      };
      const b = build({ ...c, facts: other });
      expect(sqlFiles(b)).toEqual(sqlFiles(a));
      expect(b.manifest.environment).toEqual(other);
      // The binding is the one file that follows the environment, and every stage includes it.
      expect(b.files.get(BINDING_FILE)).not.toBe(a.files.get(BINDING_FILE));
      expect(b.files.get(BINDING_FILE)).toContain(`found_oid <> ${other.databaseOid}`);
      expect(b.manifest.binding.sha256).not.toBe(a.manifest.binding.sha256);
      for (const [file, text] of sqlFiles(a)) expect(text.match(/^\\ir binding\.sql$/gm), file).toHaveLength(1);
    });

    it('keeps who, when and where it was planned out of the scripts, the plan hash and the plan id', () => {
      const a = build(c);
      const other: PlanProvenance = {
        plannedAt: '2027-01-02T03:04:05Z',
        role: 'someone_else',
        runAs: 'app',
        host: '/var/run/postgresql',
        port: 6432,
        command: null,
      };
      const b = build(c, c.options, other);
      expect([...b.files].filter(([f]) => f !== 'README.md')).toEqual([...a.files].filter(([f]) => f !== 'README.md'));
      expect(b.manifest.planHash).toBe(a.manifest.planHash);
      expect(b.manifest.planId).toBe(a.manifest.planId);
      expect(b.manifest.provenance).toEqual(other);
      // Only the header differs; the review below it, which the hash covers, is the same.
      const ra = splitReadme(a.files.get('README.md')!);
      const rb = splitReadme(b.files.get('README.md')!);
      expect(rb.body).toBe(ra.body);
      expect(rb.header).not.toBe(ra.header);
      expect(rb.header).toContain('| planned by | role `someone_else`; privileges checked for `app` (`--run-as`) |');
    });

    it('lets a plan option change the SQL', () => {
      const base = c.options;
      const a = build(c, base);
      const b = build(c, { ...base, lockTimeoutMs: base.lockTimeoutMs + 1234 });
      const changed = sqlFiles(a).filter(([f, text]) => b.files.get(f) !== text);
      expect(changed.length).toBeGreaterThan(0);
      expect(b.manifest.planHash).not.toBe(a.manifest.planHash);
    });

    it('keeps every generated object name within 63 bytes', () => {
      const n = runNames(c.model.schema, c.model.name);
      const fixed = Object.entries(n).filter(([, v]) => typeof v === 'string') as [string, string][];
      expect(fixed.length).toBeGreaterThan(10);
      const all = [
        ...fixed.map(([, v]) => v),
        ...c.model.indexes.flatMap((_, i) => [n.copyIndex(i), n.oldIndex(i)]),
        n.copyIndex(9999),
        n.oldIndex(9999),
      ];
      for (const v of all) expect(byteLength(v), v).toBeLessThanOrEqual(63);
    });

    it('leaves no template residue in any script', () => {
      const plan = build(c);
      for (const [file, text] of sqlFiles(plan)) {
        expect(text, file).not.toContain('{{');
        expect(text, file).not.toContain('undefined');
        expect(text, file).not.toContain('[object Object]');
      }
    });
  });
});
