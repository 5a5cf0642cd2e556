import { UserError } from '../../model/errors.js';
import type { ColumnModel, OwnedSequenceModel, TableModel } from '../../model/types.js';
import type { TransformSpec } from './spec.js';
import { accessExclusive, type Step } from '../step.js';
import { applyAlter, dependentUsersOf, type NamedStep } from './apply-alter.js';
import { partitionLayout, partitionSql, type PartitionLayout } from './partition.js';
import { qualified } from '../../model/quote.js';
import { runNames } from '../../model/names.js';
import { copyColumns } from './owner-columns.js';

/** One target column and the SQL expression, over the other side's columns, that fills it. */
export interface ColumnMapping {
  readonly column: string;
  /** Unqualified: used both as `SELECT … FROM source` and `… FROM source AS s`. */
  readonly expr: string;
}

/**
 * A column of the written table that the mapping does not fill: a column added by --alter (forward)
 * or dropped by it (revert, in the old table). The apply keeps the written table's own value for a
 * row it already held; a row new to it gets `default` (null: the column has none, so NULL).
 */
export interface UnmappedColumn {
  readonly column: string;
  readonly default: string | null;
}

/** A sequence whose type changes with the column it feeds. */
export interface SequenceRetype {
  readonly sequence: OwnedSequenceModel;
  readonly from: string;
  readonly to: string;
}

/**
 * The rebuilt table and how rows get there and back. `forward` fills every
 * non-generated target column from the source; `reverse` fills every
 * non-generated source column from the target, for the writes revert replays
 * onto the old table. `reverse` is null when no such mapping exists, and
 * `revertUnavailable` then says why.
 */
export interface DerivedTarget {
  readonly model: TableModel;
  /** The columns setup creates the copy with (as the runner), before the --alter statements shape it. */
  readonly copyColumns: readonly ColumnModel[];
  /** The columns the table's owner then adds to it, from the first generated one on (see owner-columns.ts). */
  readonly ownerColumns: readonly ColumnModel[];
  /** Generated columns the runner creates (see owner-columns.ts): setup runs only as the table's owner then. */
  readonly createdGenerated: readonly string[];
  /** --alter statements run on the empty copy (setup) and with the indexes (build). */
  readonly setupSteps: readonly Step[];
  /** The two parts of setupSteps: the partitions (created as the runner), then the --alter statements (run as the table's owner: a non-volatile DEFAULT is evaluated when added). */
  readonly partitionSteps: readonly Step[];
  readonly alterSteps: readonly Step[];
  readonly buildConstraints: readonly NamedStep[];
  /** When a row may fail the new shape, the backfill looks for the first such row to name it. */
  readonly checksRows: boolean;
  readonly forward: readonly ColumnMapping[];
  readonly reverse: readonly ColumnMapping[] | null;
  readonly revertUnavailable: readonly string[];
  /** Copy columns the forward mapping does not fill (generated ones aside). */
  readonly forwardUnmapped: readonly UnmappedColumn[];
  /** Old-table columns the reverse mapping does not fill (generated ones aside). */
  readonly reverseUnmapped: readonly UnmappedColumn[];
  readonly sequences: readonly SequenceRetype[];
  /** Target columns in the order of the source's row key. */
  readonly keyColumns: readonly string[];
  /** Source columns the backfill orders by (empty: heap order, in batches). */
  readonly orderBy: readonly string[];
  readonly tablespace: string | null;
  readonly indexTablespace: string | null;
  /** What differs from the source, in words, for the review summary. */
  readonly differences: readonly string[];
  /** Foreign keys into the table whose columns stay narrower than the widened key. */
  readonly narrowReferences: readonly string[];
  /** --partition-by: the partitions and the constraints as the partitioned table has them; else null. */
  readonly partitioning: PartitionLayout | null;
}

const WIDENABLE = new Set(['integer', 'smallint']);
const BIGINT_MAX = '9223372036854775807';
/** A sequence at its type's maximum follows the type when it widens, as ALTER SEQUENCE … AS does. */
const TYPE_MAX: Readonly<Record<string, string>> = { smallint: '32767', integer: '2147483647' };

function column(model: TableModel, name: string, flag: string): ColumnModel {
  const c = model.columns.find((x) => x.name === name);
  if (!c)
    throw new UserError(
      'BAD_OPTION',
      `${flag}: ${model.schema}.${model.name} has no column ${JSON.stringify(name)} (columns: ${model.columns.map((x) => x.name).join(', ')})`,
    );
  return c;
}

/** Columns that become bigint: the int key columns (--key-to-bigint) and any named ones. */
function widenedColumns(model: TableModel, spec: TransformSpec): Set<string> {
  const out = new Set<string>();
  if (spec.keyToBigint) {
    for (const k of model.key.columns) if (WIDENABLE.has(column(model, k, '--key-to-bigint').type)) out.add(k);
    if (out.size === 0) {
      const types = model.key.columns.map((k) => `${k} ${column(model, k, '--key-to-bigint').type}`).join(', ');
      throw new UserError(
        'BAD_OPTION',
        `--key-to-bigint: the key of ${model.schema}.${model.name} (${types}) has no integer or smallint column; leave the flag out`,
      );
    }
  }
  for (const name of spec.bigintColumns) {
    const c = column(model, name, 'bigint column');
    if (!WIDENABLE.has(c.type))
      throw new UserError(
        'BAD_OPTION',
        `column ${name} of ${model.schema}.${model.name} is ${c.type}, not integer or smallint`,
      );
    out.add(name);
  }
  return out;
}

function withReloption(reloptions: readonly string[], name: string, value: string | null): string[] {
  const rest = reloptions.filter((o) => !o.startsWith(`${name}=`));
  return value === null ? [...rest] : [...rest, `${name}=${value}`].sort();
}

/**
 * --alter with --partition-by: the bounds were read from the partition column as it is, and a
 * partitioned table cannot hold a unique or exclusion constraint PostgreSQL could not check across
 * partitions, so those combinations are refused here rather than failing in the build stage.
 */
function refuseAlterWithPartition(spec: TransformSpec): void {
  const col = spec.partition!.column;
  for (const a of spec.alter) {
    switch (a.kind) {
      case 'add-index-constraint':
        throw new UserError(
          'BAD_OPTION',
          `--alter ${a.sql}: cannot go with --partition-by (a ${a.constraint} constraint on a partitioned table must include ${col} and only holds per partition); add it after the rebuild`,
        );
      case 'alter-type':
      case 'drop-column':
      case 'rename-column':
      case 'drop-not-null':
        if (a.column === col)
          throw new UserError(
            'BAD_OPTION',
            `--alter ${a.sql}: changes the partition column ${col}; change it in a rebuild of its own, before partitioning`,
          );
        break;
      case 'add-column':
      case 'set-not-null':
      case 'set-default':
      case 'add-check':
        break;
    }
  }
}

/**
 * Pure: the source model and the requested transformation in, the target
 * model and both column mappings out. Anything that cannot be mapped is a
 * user error naming the reason.
 */
export function deriveTarget(model: TableModel, spec: TransformSpec): DerivedTarget {
  const widened = widenedColumns(model, spec);
  const differences: string[] = [];
  for (const name of widened) {
    const users = dependentUsersOf(model, name);
    if (users.length > 0)
      throw new UserError(
        'BAD_OPTION',
        `column ${name} cannot become bigint: ${users.join(', ')} use${users.length === 1 ? 's' : ''} it, and the swap re-creates those with CREATE OR REPLACE, which cannot change a column's type`,
      );
  }
  const columns = model.columns.map((c) => {
    if (!widened.has(c.name)) return c;
    differences.push(`column ${c.name}: ${c.type} → bigint${model.key.columns.includes(c.name) ? ' (row key)' : ''}`);
    return { ...c, type: 'bigint' };
  });
  const sequences: SequenceRetype[] = model.ownedSequences
    .filter((s) => widened.has(s.column))
    .map((s) => ({ sequence: s, from: column(model, s.column, 'sequence').type, to: 'bigint' }));
  const identities = model.identities.map((q) => {
    if (!widened.has(q.column)) return q;
    const max = q.max === TYPE_MAX[q.type] ? BIGINT_MAX : q.max;
    differences.push(
      `identity sequence ${q.schema}.${q.name}: AS ${q.type} → AS bigint${max !== q.max ? ` (maximum ${BIGINT_MAX})` : ''}; the value continues`,
    );
    return { ...q, type: 'bigint', max };
  });
  for (const s of sequences)
    differences.push(
      `sequence ${s.sequence.schema}.${s.sequence.name}: AS ${s.from} → AS bigint (its maximum widens with it; the value continues)`,
    );
  for (const name of spec.orderBy) column(model, name, '--order-by');
  if (spec.orderBy.length > 0)
    differences.push(`rows are written in the order of (${spec.orderBy.join(', ')}), in one transaction`);
  let reloptions = [...model.reloptions];
  if (spec.fillfactor !== null) {
    reloptions = withReloption(reloptions, 'fillfactor', String(spec.fillfactor));
    differences.push(`fillfactor ${spec.fillfactor}`);
  }
  if (spec.tablespace !== null) differences.push(`table in tablespace ${spec.tablespace}`);
  if (spec.indexTablespace !== null) differences.push(`indexes in tablespace ${spec.indexTablespace}`);
  const keyWidened = model.key.columns.some((k) => widened.has(k));
  const narrowReferences =
    keyWidened && !spec.withReferencing
      ? model.referencedBy.map((f) => `${f.tableSchema}.${f.tableName}.${f.name}`).sort()
      : [];
  // bigint → integer is an assignment cast: revert works until a value beyond the old type was written.
  const alter = applyAlter(model, columns, spec.alter);
  differences.push(...alter.differences);
  if (spec.partition !== null) refuseAlterWithPartition(spec);
  const partitioning =
    spec.partition === null ? null : partitionLayout({ ...model, columns: alter.columns }, spec.partition);
  if (partitioning !== null) {
    if (spec.fillfactor !== null)
      throw new UserError(
        'BAD_OPTION',
        '--fillfactor cannot go with --partition-by: a partitioned table has no storage parameters of its own',
      );
    differences.push(...partitioning.differences);
  }
  const copy = qualified(model.schema, runNames(model.schema, model.name).copyTable);
  // The partitions are created on the empty copy before any --alter statement shapes it (they follow the parent).
  const partitionSteps: Step[] = (partitioning?.partitions ?? []).map((p) => ({
    kind: 'create-partition',
    // CREATE TABLE … PARTITION OF locks the parent (the partition is new).
    locks: [accessExclusive(copy)],
    comment:
      p.from === null
        ? `partition ${p.name}: every row no other partition takes`
        : `partition ${p.name}: ${partitioning!.column} from ${p.from} up to ${p.to}`,
    sql: partitionSql(model.schema, copy, p),
  }));
  const target: TableModel = {
    ...model,
    columns: alter.columns,
    reloptions,
    identities,
    tablespace: spec.tablespace ?? model.tablespace,
    constraints: partitioning?.constraints ?? model.constraints,
  };
  const split = copyColumns(columns, partitioning?.column ?? null);
  return {
    model: target,
    copyColumns: split.created,
    ownerColumns: split.addedByOwner,
    createdGenerated: split.createdGenerated,
    setupSteps: [...partitionSteps, ...alter.setupSteps],
    partitionSteps,
    alterSteps: alter.setupSteps,
    buildConstraints: alter.buildConstraints,
    checksRows: alter.setupSteps.length > 0,
    forward: alter.forward,
    reverse: alter.reverse,
    revertUnavailable: alter.revertUnavailable,
    forwardUnmapped: alter.forwardUnmapped,
    reverseUnmapped: alter.reverseUnmapped,
    sequences,
    keyColumns: model.key.columns,
    orderBy: spec.orderBy,
    tablespace: spec.tablespace,
    indexTablespace: spec.indexTablespace,
    differences,
    narrowReferences,
    partitioning,
  };
}
