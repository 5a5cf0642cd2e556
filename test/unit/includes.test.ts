import { describe, expect, it } from 'vitest';
import { scriptParts } from '../../src/run/includes.js';
import { splitSql } from '../../src/model/split-sql.js';

const binding = new Map([['binding.sql', 'SELECT 1;\nSELECT 2;\n']]);

describe('scriptParts: \\ir the way psql runs it', () => {
  it('runs the included statements in place of the line', () => {
    const script = 'SET a = 1;\n\\ir binding.sql\nSELECT 3;\n';
    const parts = scriptParts('01-setup.sql', script, binding);
    expect(parts.flatMap((p) => splitSql(p.text).map((s) => `${p.file}: ${s.text}`))).toEqual([
      '01-setup.sql: SET a = 1;',
      'binding.sql: SELECT 1;',
      'binding.sql: SELECT 2;',
      '01-setup.sql: SELECT 3;',
    ]);
    // Offsets map back into the original file, for error positions.
    const last = parts.at(-1)!;
    expect(last.fileText.slice(last.base + splitSql(last.text)[0]!.offset)).toBe('SELECT 3;\n');
  });

  it('refuses a file plan.json does not list', () => {
    expect(() => scriptParts('x.sql', '\\ir other.sql\n', binding)).toThrow(
      /includes other\.sql, which plan\.json does not list/,
    );
  });

  it('refuses an include inside a statement or a quoted body', () => {
    expect(() => scriptParts('x.sql', 'SELECT\n\\ir binding.sql\n1;\n', binding)).toThrow(
      /x\.sql:2: .* is inside a statement/,
    );
    expect(() => scriptParts('x.sql', 'DO $sp$\n\\ir binding.sql\n$sp$;\n', binding)).toThrow(/inside a statement/);
  });

  it('leaves out the psql settings the scripts make for themselves, and refuses any other', () => {
    const script = '\\set ON_ERROR_STOP on\n\\set SHOW_CONTEXT never\nSET a = 1;\n\\ir binding.sql\nSELECT 3;\n';
    const parts = scriptParts('01-setup.sql', script, binding);
    expect(parts.flatMap((p) => splitSql(p.text).map((s) => `${p.file}: ${s.text}`))).toEqual([
      '01-setup.sql: SET a = 1;',
      'binding.sql: SELECT 1;',
      'binding.sql: SELECT 2;',
      '01-setup.sql: SELECT 3;',
    ]);
    expect(() => scriptParts('x.sql', 'SELECT 1;\n\\set ON_ERROR_STOP off\n', binding)).toThrow(
      /x\.sql:2: "\\set ON_ERROR_STOP off" is a psql setting the runner does not know/,
    );
    expect(() => scriptParts('x.sql', '\\set AUTOCOMMIT off\n', binding)).toThrow(
      /psql setting the runner does not know/,
    );
    expect(() => scriptParts('x.sql', 'SELECT\n\\set ON_ERROR_STOP on\n1;\n', binding)).toThrow(
      /x\.sql:2: .* is inside a statement/,
    );
  });

  it('leaves a script without includes whole', () => {
    expect(scriptParts('x.sql', 'SELECT 1;\n', new Map())).toEqual([
      { file: 'x.sql', fileText: 'SELECT 1;\n', base: 0, text: 'SELECT 1;\n' },
    ]);
  });
});
