import { UserError } from '../../model/errors.js';
import type { AlterAction } from './alter-actions.js';
import { resolvePartition, type PartitionArgs, type PartitionSpec } from './partition-spec.js';

/**
 * What the rebuilt table should look like, as asked on the command line.
 * Part of the plan (manifest and review summary); the compiler derives the
 * target model and the column mappings from it and the source model.
 */
export interface TransformSpec {
  /** Key columns (and the sequences feeding them) become bigint. */
  readonly keyToBigint: boolean;
  /** Also plan the referencing tables' foreign key columns to bigint (separate plans). */
  readonly withReferencing: boolean;
  /** Other columns that become bigint: a referencing table's foreign key columns (see --with-referencing). */
  readonly bigintColumns: readonly string[];
  /** The backfill writes rows in this order (clustering). Column names as in the source. */
  readonly orderBy: readonly string[];
  readonly fillfactor: number | null;
  readonly tablespace: string | null;
  readonly indexTablespace: string | null;
  /** --alter / --alter-file actions, parsed (parse-alter.ts), in the order given. */
  readonly alter: readonly AlterAction[];
  /** --partition-by range(col) --interval …: the rebuilt table is range-partitioned (partition.ts). */
  readonly partition: PartitionSpec | null;
}

export const NO_TRANSFORM: TransformSpec = {
  keyToBigint: false,
  withReferencing: false,
  bigintColumns: [],
  orderBy: [],
  fillfactor: null,
  tablespace: null,
  indexTablespace: null,
  alter: [],
  partition: null,
};

export interface TransformArgs extends PartitionArgs {
  readonly keyToBigint?: boolean | undefined;
  readonly withReferencing?: boolean | undefined;
  readonly bigintColumns?: readonly string[] | undefined;
  readonly orderBy?: string | readonly string[] | undefined;
  readonly fillfactor?: number | undefined;
  readonly tablespace?: string | undefined;
  readonly indexTablespace?: string | undefined;
  readonly alter?: readonly AlterAction[] | undefined;
}

function nonEmptyName(flag: string, value: string | undefined): string | null {
  if (value === undefined) return null;
  if (value.trim() === '' || value.includes('\u0000'))
    throw new UserError('BAD_OPTION', `--${flag} needs a name (got ${JSON.stringify(value)})`);
  return value;
}

/** Checks flag values; a bad one is a user error naming the flag and the fix. */
export function resolveTransform(a: TransformArgs): TransformSpec {
  const orderBy = (Array.isArray(a.orderBy) ? a.orderBy : a.orderBy === undefined ? [] : [a.orderBy as string])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim());
  if (orderBy.some((s) => s === ''))
    throw new UserError(
      'BAD_OPTION',
      '--order-by takes column names separated by commas, e.g. --order-by customer_id,id',
    );
  if (new Set(orderBy).size !== orderBy.length)
    throw new UserError('BAD_OPTION', `--order-by names a column twice (${orderBy.join(', ')})`);
  const ff = a.fillfactor;
  if (ff !== undefined && (!Number.isInteger(ff) || ff < 10 || ff > 100)) {
    throw new UserError('BAD_OPTION', `--fillfactor must be a whole number from 10 to 100 (got ${String(ff)})`);
  }
  if (a.withReferencing && !a.keyToBigint)
    throw new UserError('BAD_OPTION', '--with-referencing only goes with --key-to-bigint');
  return {
    keyToBigint: a.keyToBigint ?? false,
    withReferencing: a.withReferencing ?? false,
    bigintColumns: [...(a.bigintColumns ?? [])],
    orderBy,
    fillfactor: ff ?? null,
    tablespace: nonEmptyName('tablespace', a.tablespace),
    indexTablespace: nonEmptyName('index-tablespace', a.indexTablespace),
    alter: [...(a.alter ?? [])],
    partition: resolvePartition(a),
  };
}
