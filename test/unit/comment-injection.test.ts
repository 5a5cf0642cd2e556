import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compile } from '../../src/compile/compile.js';
import { resolveOptions } from '../../src/compile/options.js';
import { loadTemplates } from '../../src/planning/templates.js';
import type { EnvironmentFacts, TableModel } from '../../src/model/types.js';
import { splitSql } from '../../src/model/split-sql.js';

const dir = join(import.meta.dirname, '..', '..', 'fixtures', 'compile', 'orders');
const model = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as TableModel;
const facts = JSON.parse(readFileSync(join(dir, 'facts.json'), 'utf8')) as EnvironmentFacts;

function scripts(m: TableModel): string[] {
  const plan = compile({
    model: m,
    facts,
    options: resolveOptions({}),
    templates: loadTemplates(),
    toolVersion: '0.1.0',
  });
  return [...plan.files].filter(([f]) => f.endsWith('.sql')).map(([, t]) => t);
}

describe('names that try to escape the SQL text', () => {
  it('a line break in a table or index name cannot end a comment and start a statement', () => {
    const evil = 'x\nDROP TABLE victim; --';
    const m: TableModel = {
      ...model,
      name: `orders${evil}`,
      indexes: model.indexes.map((i, n) => (n === 0 ? { ...i, name: `idx${evil}` } : i)),
    };
    const benign = scripts(model).map((t) => splitSql(t).length);
    const hostile = scripts(m);
    // Same statements as with plain names: nothing was split off the name into a statement of its own.
    expect(hostile.map((t) => splitSql(t).length)).toEqual(benign);
    for (const text of hostile) {
      for (const st of splitSql(text)) expect(st.text.startsWith('DROP TABLE victim')).toBe(false);
      // And no comment line was cut short by the line break.
      for (const line of text.split('\n')) if (line.startsWith('--')) expect(line).not.toMatch(/^--.*ordersx$/);
    }
  });

  it('a definition holding the dollar tag gets a DO block with another tag', () => {
    const m: TableModel = {
      ...model,
      constraints: [
        ...model.constraints,
        {
          name: 'odd_check',
          kind: 'check',
          definition: "CHECK ((note <> '$sp$'::text))",
          validated: true,
          references: null,
          comment: null,
        },
      ],
    };
    const build = scripts(m).find((t) => t.includes('odd_check'))!;
    // The check is a build item: a DO block (the plan's tag, $sp1$ here) holding the step's block.
    expect(build).toContain('DO $sp1$\nBEGIN\n  IF NOT pg_try_advisory_xact_lock(');
    expect(build).toContain('BEGIN\n  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid');
    // Added as the table's owner: the statement is a literal passed to the owner function.
    expect(build).toContain("CHECK ((note <> ''$sp$''::text))');\n  END IF;\nEND;\nEND\n$sp1$;");
    expect(build).not.toMatch(/\$sp\$;?\n/);
  });

  it('a name holding the dollar tag gets a plan quoted with another tag, the same in every script', () => {
    const plain = scripts(model);
    for (const name of ['bad$sp$owner', 'ends$sp']) {
      const hostile = scripts({
        ...model,
        owner: name,
        columns: model.columns.map((c, n) => (n === 1 ? { ...c, name: `c${name}` } : c)),
      });
      // Every body the templates quote now uses $sp1$: preflight (only such bodies) says $sp$ nowhere but in the name.
      const preflight = hostile.find((t) => t.includes('psql -X -f 00-preflight.sql'))!;
      expect(preflight).toContain('\n$sp1$;');
      expect(preflight.replaceAll(name, '')).not.toContain('$sp$');
      // Each script splits into as many statements as with plain names: no body ended early.
      expect(hostile.map((t) => splitSql(t).length)).toEqual(plain.map((t) => splitSql(t).length));
    }
  });
});
