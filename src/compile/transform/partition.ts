import { createHash } from 'node:crypto';
import { UserError } from '../../model/errors.js';
import { byteLength, ident, literal, qualified } from '../../model/quote.js';
import type { ConstraintModel, TableModel } from '../../model/types.js';
import type { PartitionInterval, PartitionSpec } from './partition-spec.js';

/** One partition of the rebuilt table; `from`/`to` are SQL literals (null: the DEFAULT partition). */
export interface PartitionModel {
  readonly name: string;
  readonly from: string | null;
  readonly to: string | null;
}

export interface PartitionLayout {
  readonly column: string;
  readonly partitions: readonly PartitionModel[];
  /** The constraints of the rebuilt table, the primary key extended with the partition column. */
  readonly constraints: readonly ConstraintModel[];
  readonly differences: readonly string[];
}

/** More than this many partitions is almost certainly a wrong --interval. */
const MAX_PARTITIONS = 2000;
const DATE_TYPES = new Set(['date', 'timestamp without time zone', 'timestamp with time zone']);
const INT_TYPES = new Set(['smallint', 'integer', 'bigint']);

const refuse = (why: string): never => {
  throw new UserError('UNSUPPORTED_TABLE', `--partition-by: ${why}`);
};

/** A relation name ≤ 63 bytes: the table's name cut short and a hash of it when too long. */
export function partitionName(table: string, suffix: string): string {
  const full = `${table}_${suffix}`;
  if (byteLength(full) <= 63) return full;
  const hash = createHash('sha256').update(table).digest('hex').slice(0, 8);
  let head = table;
  while (byteLength(`${head}_${hash}_${suffix}`) > 63) head = [...head].slice(0, -1).join('');
  return `${head}_${hash}_${suffix}`;
}

function addDays(ymd: string, months: number, days: number): string {
  const [y, m, d] = ymd.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1 + months, d + days)).toISOString().slice(0, 10);
}

/** Bounds from the interval that holds `min` to the one after `max`, then `ahead` more. */
function bounds(iv: PartitionInterval, min: string, max: string, ahead: number): string[] {
  const out: string[] = [];
  const guard = (n: number) => {
    if (n > MAX_PARTITIONS + 1)
      refuse(
        `the data from ${min} to ${max} would need more than ${MAX_PARTITIONS} partitions; choose a larger --interval`,
      );
  };
  switch (iv.unit) {
    case 'month':
    case 'day': {
      const bad = [min, max].find((v) => !/^\d{4}-\d{2}-\d{2}$/.test(v) || v < '0001-01-01');
      if (bad !== undefined)
        refuse(
          `the column holds ${JSON.stringify(bad)} (infinity or a BC date), which no partition bound can follow; move such rows first`,
        );
      // Months start on the 1st of the month of the smallest value; days at the smallest value's day.
      const start = iv.unit === 'month' ? `${min.slice(0, 7)}-01` : min;
      const at = (i: number) => (iv.unit === 'month' ? addDays(start, i * iv.step, 0) : addDays(start, 0, i * iv.step));
      let i = 0;
      while (at(i) <= max) guard(out.push(at(i++)));
      for (let k = 0; k <= ahead; k++) guard(out.push(at(i++)));
      return out;
    }
    case 'number': {
      const step = BigInt(iv.step);
      const lo = BigInt(min);
      const floor = lo >= 0n ? (lo / step) * step : -((-lo + step - 1n) / step) * step;
      const hi = BigInt(max);
      let b = floor;
      while (b <= hi) {
        guard(out.push(b.toString()));
        b += step;
      }
      for (let k = 0; k <= ahead; k++) {
        guard(out.push(b.toString()));
        b += step;
      }
      return out;
    }
  }
}

function suffixOf(iv: PartitionInterval, bound: string): string {
  switch (iv.unit) {
    case 'month':
      return `p${bound.slice(0, 4)}${bound.slice(5, 7)}`;
    case 'day':
      return `p${bound.replaceAll('-', '')}`;
    case 'number':
      return `p${bound.replace('-', 'm')}`;
  }
}

/** The bound as the column's type reads it; timestamptz bounds are midnight UTC, whatever the session's time zone. */
function boundLiteral(type: string, bound: string): string {
  if (type === 'timestamp with time zone') return literal(`${bound} 00:00:00+00`);
  return DATE_TYPES.has(type) ? literal(bound) : bound;
}

/**
 * Pure: checks that the table can become range-partitioned on the column and
 * lays out its partitions. Everything PostgreSQL would refuse on a partitioned
 * table, or that would change what the table means, is refused here with the fix.
 */
export function partitionLayout(model: TableModel, spec: PartitionSpec): PartitionLayout {
  const col = model.columns.find((c) => c.name === spec.column);
  if (!col) return refuse(`${model.schema}.${model.name} has no column ${JSON.stringify(spec.column)}`);
  const isDate = DATE_TYPES.has(col.type);
  if (spec.interval.unit === 'number' ? !INT_TYPES.has(col.type) : !isDate) {
    refuse(
      `column ${col.name} is ${col.type}; a number --interval needs smallint, integer or bigint, '1 month'/'1 day' need date or timestamp`,
    );
  }
  if (!col.notNull)
    refuse(
      `column ${col.name} allows NULL, and PostgreSQL needs it in the primary key of a partitioned table; SET NOT NULL on the table first (NULLs would otherwise have to change)`,
    );
  if (col.generated !== null) refuse(`column ${col.name} is generated; partition by a stored column`);
  if (model.key.source !== 'primary-key')
    refuse(
      `the row key of ${model.schema}.${model.name} is the unique index ${model.key.indexName}, not a primary key; add a primary key first`,
    );
  if (model.referencedBy.length > 0) {
    refuse(
      `foreign key ${model.referencedBy.map((f) => `${f.tableSchema}.${f.tableName}.${f.name}`).join(', ')} points at this table, and a partitioned table's keys must include ${col.name}; drop or change it first`,
    );
  }
  for (const c of model.constraints) {
    if (c.kind === 'exclusion')
      refuse(
        `exclusion constraint ${c.name} cannot be kept on a partitioned table (it would only hold within a partition)`,
      );
    // The swap adds foreign keys NOT VALID (no scan under the swap lock); PostgreSQL cannot do that on a partitioned table.
    if (c.kind === 'foreign-key')
      refuse(
        `foreign key ${c.name} would have to be added NOT VALID to a partitioned table at the swap, which PostgreSQL does not support; drop it before the rebuild and add it back after`,
      );
    if (c.kind === 'unique')
      refuse(
        `unique constraint ${c.name} does not include ${col.name}; on a partitioned table it could only hold within a partition. Drop it or add the column first`,
      );
  }
  for (const i of model.indexes) {
    if (i.unique && i.constraint === null)
      refuse(`unique index ${i.name} would only hold within a partition; drop it or include ${col.name} first`);
    if (i.clustered)
      refuse(
        `index ${i.name} is marked for CLUSTER, which partitioned tables do not support; ALTER TABLE … SET WITHOUT CLUSTER first`,
      );
  }
  if (model.reloptions.length > 0 || model.toastReloptions.length > 0)
    refuse(
      `the table has storage parameters (${[...model.reloptions, ...model.toastReloptions].join(', ')}), which a partitioned table cannot have; RESET them first`,
    );
  if (model.replicaIdentity.kind !== 'default')
    refuse(
      `replica identity ${model.replicaIdentity.kind} is not carried to a partitioned table; set REPLICA IDENTITY DEFAULT first`,
    );
  if (model.dependents.publications.length > 0)
    refuse(
      `the table is in publication ${model.dependents.publications.map((p) => p.name).join(', ')}; partitioned tables publish differently, drop it from the publication first`,
    );
  const keyed = model.key.columns.includes(col.name);
  const constraints = model.constraints.map((c) => {
    if (c.kind !== 'primary-key' || keyed) return c;
    const end = columnListEnd(c.definition);
    if (end < 0) refuse(`cannot read the primary key ${c.name} (${c.definition}); please report this`);
    return { ...c, definition: `${c.definition.slice(0, end)}, ${ident(col.name)}${c.definition.slice(end)}` };
  });
  const differences = [`range-partitioned by ${col.name}, ${describe(spec)}`];
  if (!keyed)
    differences.push(
      `primary key ${model.key.indexName}: (${model.key.columns.join(', ')}) → (${[...model.key.columns, col.name].join(', ')}), as PostgreSQL requires on a partitioned table; the row key stays (${model.key.columns.join(', ')})`,
    );
  const list = spec.dataRange === null ? [] : bounds(spec.interval, spec.dataRange.min, spec.dataRange.max, spec.ahead);
  const partitions: PartitionModel[] = [];
  for (let i = 0; i + 1 < list.length; i++) {
    partitions.push({
      name: partitionName(model.name, suffixOf(spec.interval, list[i]!)),
      from: boundLiteral(col.type, list[i]!),
      to: boundLiteral(col.type, list[i + 1]!),
    });
  }
  partitions.push({ name: partitionName(model.name, 'default'), from: null, to: null });
  differences.push(
    partitions.length === 1
      ? 'the table was empty at plan time: only the DEFAULT partition is created'
      : `${partitions.length - 1} partitions from ${list[0]} to ${list[list.length - 1]} (data ${spec.dataRange!.min} … ${spec.dataRange!.max} at plan time, ${spec.ahead} ahead) and a DEFAULT partition for every other value`,
  );
  return { column: col.name, partitions, constraints, differences };
}

/** Where the column list of `PRIMARY KEY (…)` closes (quoted names may hold parentheses), or -1. */
function columnListEnd(definition: string): number {
  const open = 'PRIMARY KEY (';
  if (!definition.startsWith(open)) return -1;
  let quoted = false;
  for (let i = open.length; i < definition.length; i++) {
    const ch = definition[i];
    if (ch === '"') quoted = !quoted;
    else if (ch === ')' && !quoted) return i;
  }
  return -1;
}

function describe(spec: PartitionSpec): string {
  const iv = spec.interval;
  return iv.unit === 'number' ? `every ${iv.step}` : `every ${iv.step} ${iv.unit}${iv.step === 1 ? '' : 's'}`;
}

/** CREATE TABLE … PARTITION OF the copy, autovacuum off like the copy (turned back on at the swap). */
export function partitionSql(schema: string, copy: string, p: PartitionModel): string {
  const bound = p.from === null ? 'DEFAULT' : `FOR VALUES FROM (${p.from}) TO (${p.to})`;
  return `CREATE TABLE ${qualified(schema, p.name)} PARTITION OF ${copy} ${bound} WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false);`;
}
