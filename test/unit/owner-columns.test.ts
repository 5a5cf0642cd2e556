import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { copyColumns } from '../../src/compile/transform/owner-columns.js';
import type { ColumnModel, TableModel } from '../../src/model/types.js';

const base = JSON.parse(readFileSync('fixtures/compile/orders/model.json', 'utf8')) as TableModel;
const col = (name: string, generated: string | null = null): ColumnModel => ({
  ...base.columns[0]!,
  name,
  default: null,
  generated,
});

describe("the copy's columns the table owner adds (issue 19)", () => {
  it('are none without a generated column: setup creates them all', () => {
    const c = copyColumns([col('id'), col('v')]);
    expect([c.created.map((x) => x.name), c.addedByOwner.map((x) => x.name)]).toEqual([['id', 'v'], []]);
  });
  it('start at the first generated column and keep the column order', () => {
    const c = copyColumns([col('id'), col('v'), col('g', '(v + app.grab())'), col('w'), col('h', '(w * 2)')]);
    expect([c.created.map((x) => x.name), c.addedByOwner.map((x) => x.name)]).toEqual([
      ['id', 'v'],
      ['g', 'w', 'h'],
    ]);
  });
  it('refuse a generated column that reads a later column (ALTER TABLE cannot add it first)', () => {
    expect(() => copyColumns([col('id'), col('g', '(v * 2)'), col('v')])).toThrow(
      /generated column g reads column v, which comes after it/,
    );
  });
});
