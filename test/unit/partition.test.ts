import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { partitionLayout, partitionName } from '../../src/compile/transform/partition.js';
import { resolvePartition } from '../../src/compile/transform/partition-spec.js';
import type { TableModel } from '../../src/model/types.js';

const base = JSON.parse(readFileSync('fixtures/compile/line-items-partition/model.json', 'utf8')) as TableModel;
/** The fixture with a created_at column of the given type. */
const withDate = (type: string, notNull = true): TableModel => ({
  ...base,
  columns: [...base.columns, { ...base.columns[2]!, name: 'created_at', type, notNull, default: null }],
});
const spec = (interval: string, range: { min: string; max: string } | null, ahead = 1) =>
  resolvePartition({ partitionBy: 'range(created_at)', interval, partitionsAhead: ahead, partitionRange: range })!;

describe('partition layout', () => {
  it('covers the data month by month from the first month, then the months ahead, then DEFAULT', () => {
    const l = partitionLayout(
      withDate('timestamp with time zone'),
      spec('1 month', { min: '2025-11-17', max: '2026-02-01' }),
    );
    expect(l.partitions.map((p) => [p.name, p.from, p.to])).toEqual([
      ['line_items_p202511', "'2025-11-01 00:00:00+00'", "'2025-12-01 00:00:00+00'"],
      ['line_items_p202512', "'2025-12-01 00:00:00+00'", "'2026-01-01 00:00:00+00'"],
      ['line_items_p202601', "'2026-01-01 00:00:00+00'", "'2026-02-01 00:00:00+00'"],
      ['line_items_p202602', "'2026-02-01 00:00:00+00'", "'2026-03-01 00:00:00+00'"],
      ['line_items_p202603', "'2026-03-01 00:00:00+00'", "'2026-04-01 00:00:00+00'"],
      ['line_items_default', null, null],
    ]);
  });

  it('steps days across a month end, with date bounds for a date column', () => {
    const l = partitionLayout(withDate('date'), spec('2 days', { min: '2026-01-30', max: '2026-02-01' }, 0));
    expect(l.partitions.map((p) => [p.name, p.from, p.to])).toEqual([
      ['line_items_p20260130', "'2026-01-30'", "'2026-02-01'"],
      ['line_items_p20260201', "'2026-02-01'", "'2026-02-03'"],
      ['line_items_default', null, null],
    ]);
  });

  it('keeps only a DEFAULT partition for an empty table', () => {
    expect(partitionLayout(withDate('date'), spec('1 month', null)).partitions).toEqual([
      { name: 'line_items_default', from: null, to: null },
    ]);
  });

  it('refuses a NULL-able column, a wrong type and too many partitions, each with the fix', () => {
    expect(() =>
      partitionLayout(withDate('date', false), spec('1 day', { min: '2026-01-01', max: '2026-01-02' })),
    ).toThrow(/allows NULL.*SET NOT NULL/);
    expect(() => partitionLayout(withDate('text'), spec('1 day', { min: 'a', max: 'b' }))).toThrow(
      /created_at is text/,
    );
    expect(() => partitionLayout(withDate('date'), spec('1 day', { min: '2000-01-01', max: '2026-01-01' }))).toThrow(
      /more than 2000 partitions; choose a larger --interval/,
    );
    expect(() => partitionLayout(withDate('date'), spec('1 day', { min: '', max: '2026-01-01' }))).toThrow(
      /infinity or a BC date/,
    );
  });

  it('names partitions deterministically within 63 bytes, even for long unicode table names', () => {
    const long = 'é'.repeat(40);
    const a = partitionName(long, 'p202601');
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(63);
    expect(a).toBe(partitionName(long, 'p202601'));
    expect(a).not.toBe(partitionName(long, 'p202602'));
    expect(partitionName('é'.repeat(41), 'p202601')).not.toBe(a);
  });

  it('rejects bad flags in one line', () => {
    expect(() => resolvePartition({ partitionBy: 'created_at', interval: '1 month' })).toThrow(/range\(column\)/);
    expect(() => resolvePartition({ partitionBy: 'range(x)' })).toThrow(/needs --interval/);
    expect(() => resolvePartition({ interval: '1 month' })).toThrow(/only go with --partition-by/);
    expect(() => resolvePartition({ partitionBy: 'range(x)', interval: '0' })).toThrow(/--interval must be/);
    expect(resolvePartition({ partitionBy: 'range("Due ""At""")', interval: '3 months' })).toMatchObject({
      column: 'Due "At"',
      interval: { unit: 'month', step: 3 },
      ahead: 3,
    });
  });
});
