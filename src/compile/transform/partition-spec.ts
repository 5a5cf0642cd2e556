import { UserError } from '../../model/errors.js';

/** How far apart partition bounds are: calendar months or days (dates, timestamps), or a number (integers). */
export type PartitionInterval =
  | { readonly unit: 'month'; readonly step: number }
  | { readonly unit: 'day'; readonly step: number }
  | { readonly unit: 'number'; readonly step: string };

/**
 * --partition-by range(col) --interval … --partitions-ahead K. `dataRange` is
 * the column's smallest and largest value, read at plan time and recorded here
 * (YYYY-MM-DD for dates and timestamps, integer text for numbers; null when the
 * table is empty), so the bounds — and the scripts — follow from the plan alone.
 */
export interface PartitionSpec {
  readonly column: string;
  readonly interval: PartitionInterval;
  readonly ahead: number;
  readonly dataRange: { readonly min: string; readonly max: string } | null;
}

export const DEFAULT_PARTITIONS_AHEAD = 3;

export interface PartitionArgs {
  readonly partitionBy?: string | undefined;
  readonly interval?: string | number | undefined;
  readonly partitionsAhead?: number | undefined;
  readonly partitionRange?: { readonly min: string; readonly max: string } | null | undefined;
}

function parseInterval(text: string): PartitionInterval {
  const t = text.trim().toLowerCase();
  const cal = /^(\d{1,4})\s+(month|months|day|days)$/.exec(t);
  if (cal) {
    const step = Number(cal[1]);
    if (step >= 1) return { unit: cal[2]!.startsWith('month') ? 'month' : 'day', step };
  }
  if (/^[1-9]\d{0,17}$/.test(t)) return { unit: 'number', step: t };
  throw new UserError(
    'BAD_OPTION',
    `--interval must be '1 month', 'N months', '1 day', 'N days' or a positive whole number (got ${JSON.stringify(text)})`,
  );
}

/** Checks the partitioning flags; null when --partition-by is absent. */
export function resolvePartition(a: PartitionArgs): PartitionSpec | null {
  if (a.partitionBy === undefined) {
    if (a.interval !== undefined || a.partitionsAhead !== undefined)
      throw new UserError('BAD_OPTION', '--interval and --partitions-ahead only go with --partition-by range(col)');
    return null;
  }
  const m = /^\s*range\s*\(\s*(?:"((?:[^"]|"")+)"|([^\s"(),]+))\s*\)\s*$/i.exec(a.partitionBy);
  if (!m)
    throw new UserError(
      'BAD_OPTION',
      `--partition-by takes range(column), e.g. --partition-by 'range(created_at)' (got ${JSON.stringify(a.partitionBy)})`,
    );
  const column = m[1] !== undefined ? m[1].replaceAll('""', '"') : m[2]!;
  if (a.interval === undefined)
    throw new UserError('BAD_OPTION', "--partition-by needs --interval, e.g. --interval '1 month'");
  const ahead = a.partitionsAhead ?? DEFAULT_PARTITIONS_AHEAD;
  if (!Number.isInteger(ahead) || ahead < 0 || ahead > 1000)
    throw new UserError(
      'BAD_OPTION',
      `--partitions-ahead must be a whole number from 0 to 1000 (got ${String(ahead)})`,
    );
  return { column, interval: parseInterval(String(a.interval)), ahead, dataRange: a.partitionRange ?? null };
}
