import { describe, expect, it } from 'vitest';
import {
  batchHashOf,
  peakDiskBytes,
  tableDirName,
  type BatchManifest,
  type BatchTable,
} from '../../src/batch/manifest.js';
import { renderBatchReadme } from '../../src/batch/readme.js';

function table(name: string, disk: number, extra: Partial<BatchTable> = {}): BatchTable {
  return {
    schema: 's',
    name,
    dir: tableDirName('s', name),
    planHash: 'p1:x',
    planId: 'i1:x',
    rows: 10,
    totalBytes: disk * 2,
    reclaimableBytes: disk,
    bloatMethod: 'statistics',
    diskNeededBytes: disk,
    walBytes: disk,
    hazards: ['NEEDS_DISK'],
    locks: ['swap: ACCESS EXCLUSIVE on s.t'],
    lockBudgetMs: 2000,
    estimatedSeconds: 1,
    neighbours: [],
    ...extra,
  };
}

function manifest(tables: BatchTable[]): Omit<BatchManifest, 'readmeSha256' | 'batchHash'> {
  return {
    formatVersion: 1,
    kind: 'batch',
    tool: { name: 'shadowpack', version: '0.1.0' },
    selection: { schemas: ['s'], tables: [], bloated: null },
    order: 'largest first',
    tables,
    skipped: [{ schema: 's', name: 'nokey', reason: 'it has no primary key\nsecond line' }],
    totals: {
      tables: tables.length,
      rows: 0,
      totalBytes: 0,
      reclaimableBytes: 0,
      peakDiskBytes: peakDiskBytes(tables, 1),
      walBytes: 0,
      estimatedSeconds: 0,
    },
    environment: { database: 'd', databaseOid: 1, systemIdentifier: null, serverVersion: '17' },
  };
}

describe('batch folder names, totals and summary', () => {
  it('gives every catalog name one folder: / and % are percent-encoded, dots and unicode kept', () => {
    expect(tableDirName('app', 'orders')).toBe('app.orders');
    expect(tableDirName('a/b', 'c%2Fd')).toBe('a%2Fb.c%252Fd');
    expect(tableDirName('..', 'ünï.code')).toBe('...ünï.code');
    expect(tableDirName('a/b', 'c')).not.toBe(tableDirName('a%2Fb', 'c'));
  });

  it('peak disk: the largest table one at a time, the N largest together with N at once', () => {
    const ts = [table('a', 5), table('b', 50), table('c', 20)];
    expect(peakDiskBytes(ts, 1)).toBe(50);
    expect(peakDiskBytes(ts, 2)).toBe(70);
    expect(peakDiskBytes(ts, 9)).toBe(75);
  });

  it('keeps a | or a line break in a name or a reason from breaking the summary table, and the hash moves with any field', () => {
    const m = manifest([table('pipe|name', 10, { neighbours: ['"s"."x|y"'] })]);
    const text = renderBatchReadme(m);
    const row = text.split('\n').find((l) => l.startsWith('| 1 |'))!;
    expect(row).toContain('pipe\\|name');
    expect(row.split(/(?<!\\)\|/).length).toBe(12);
    expect(text).toContain('- "s"."nokey": it has no primary key\n');
    expect(batchHashOf({ ...m, readmeSha256: 'r' })).not.toBe(batchHashOf({ ...m, readmeSha256: 'r', order: 'other' }));
  });
});
