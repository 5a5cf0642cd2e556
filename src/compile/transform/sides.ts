import { commentText, ident } from '../../model/quote.js';
import type { ColumnModel, TableModel } from '../../model/types.js';
import type { ColumnMapping, DerivedTarget, UnmappedColumn } from './derive.js';

/**
 * For a written table with columns the mapping does not fill: the scratch table that holds, within
 * one apply, the values those columns had in the rows the apply deleted (keyed like the written table).
 */
export interface KeepSide {
  readonly table: string;
  /** Its column definitions: the written table's key, then the unmapped columns, typed as there. */
  readonly defs: readonly string[];
  /** The written table's key and unmapped columns, quoted (the scratch table's columns, in order). */
  readonly columns: string;
  /** The same, `t.`-qualified, for DELETE … RETURNING. */
  readonly columnsT: string;
  /** The unmapped columns, quoted, for the INSERT's column list. */
  readonly unmappedList: string;
  /** The unmapped columns, `g.`-qualified. */
  readonly unmappedListG: string;
  /** Joins the mapped rows (n, named like the written table's columns) to the scratch table (g). */
  readonly keyJoinNG: string;
  /** Joins the scratch table (g) to the read table (s). */
  readonly keyJoinGS: string;
}

/**
 * The SQL fragments one direction of copying needs: rows are read from a
 * table of one shape (source columns, its key) and written to a table of the
 * other (explicit column list, expressions from the mapping; never SELECT *).
 * Forward: table → copy (and later the live table). Reverse: live table
 * after the swap → old table, for revert.
 */
export interface CopySide {
  /** Columns written, quoted, in mapping order. */
  readonly insertList: string;
  /** The expressions that fill them, over the read table's columns. */
  readonly selectList: string;
  /** Log key columns, typed like the key of the table the trigger captures. */
  readonly keyDefs: readonly string[];
  /** Parameters holding a set of log keys as one array per key column (`k1 integer[]`), for the owner function. */
  readonly keyArrayParams: readonly string[];
  /** Their types alone (`integer[]`), for the function's signature. */
  readonly keyArrayTypes: readonly string[];
  /** The runner's variables holding them (`sp_k1, sp_k2`), and the aggregates that fill them from the log. */
  readonly keyArrayVars: string;
  readonly keyArrayAgg: string;
  /** The keys passed as parameters $3, $4, … read back as a relation of k1, k2, … with the key's collations. */
  readonly keysFromArrays: string;
  /** Key of the read table, `s.`-qualified, in key order. */
  readonly keyListS: string;
  readonly keyListOld: string;
  readonly keyListNew: string;
  /** Joins the written table (t) to the log (d) on its key. */
  readonly keyJoinTD: string;
  /** The written table's key columns, for ORDER BY and messages. */
  readonly keyList: string;
  /** 'ONLY ' before the read table, or '' when it is partitioned (ONLY would read none of its rows). */
  readonly only: string;
  /** Set when the written table has columns the mapping does not fill; the apply then keeps their values. */
  readonly keep: KeepSide | null;
  /** False when no mapping exists in this direction (revert unavailable); the apply function then refuses. */
  readonly available: boolean;
  readonly unavailableText: string;
}

function columnsNamed(model: TableModel, names: readonly string[]): ColumnModel[] {
  return names.map((k) => {
    const col = model.columns.find((c) => c.name === k);
    if (!col) throw new Error(`column ${k} missing from the model`);
    return col;
  });
}

function typeOf(c: ColumnModel): string {
  return `${c.type}${c.collation !== null ? ` COLLATE ${c.collation}` : ''}`;
}

function keepSide(
  table: string,
  writeModel: TableModel,
  readKey: readonly string[],
  writeKey: readonly string[],
  unmapped: readonly UnmappedColumn[],
): KeepSide | null {
  if (unmapped.length === 0) return null;
  const names = [...writeKey, ...unmapped.map((u) => u.column)];
  return {
    table,
    defs: [
      ...columnsNamed(writeModel, writeKey).map((c) => `${ident(c.name)} ${typeOf(c)} NOT NULL`),
      ...columnsNamed(
        writeModel,
        unmapped.map((u) => u.column),
      ).map((c) => `${ident(c.name)} ${typeOf(c)}`),
    ],
    columns: names.map(ident).join(', '),
    columnsT: names.map((n) => `t.${ident(n)}`).join(', '),
    unmappedList: unmapped.map((u) => ident(u.column)).join(', '),
    unmappedListG: unmapped.map((u) => `g.${ident(u.column)}`).join(', '),
    keyJoinNG: writeKey.map((k) => `n.${ident(k)} = g.${ident(k)}`).join(' AND '),
    keyJoinGS: writeKey.map((k, i) => `g.${ident(k)} = s.${ident(readKey[i]!)}`).join(' AND '),
  };
}

interface SideInput {
  readonly mapping: readonly ColumnMapping[];
  readonly readModel: TableModel;
  readonly readKey: readonly string[];
  readonly writeModel: TableModel;
  readonly writeKey: readonly string[];
  readonly readPartitioned: boolean;
  readonly unmapped: readonly UnmappedColumn[];
  readonly keepTable: string;
}

function side(i: SideInput): CopySide {
  const { mapping, readModel, readKey, writeKey } = i;
  return {
    only: i.readPartitioned ? '' : 'ONLY ',
    insertList: mapping.map((m) => ident(m.column)).join(', '),
    selectList: mapping.map((m) => m.expr).join(', '),
    keyDefs: columnsNamed(readModel, readKey).map((c, n) => `k${n + 1} ${typeOf(c)} NOT NULL`),
    keyArrayParams: columnsNamed(readModel, readKey).map((c, n) => `k${n + 1} ${c.type}[]`),
    keyArrayTypes: columnsNamed(readModel, readKey).map((c) => `${c.type}[]`),
    keyArrayVars: readKey.map((_, n) => `sp_k${n + 1}`).join(', '),
    keyArrayAgg: readKey.map((_, n) => `array_agg(k${n + 1})`).join(', '),
    keysFromArrays: `(SELECT ${columnsNamed(readModel, readKey)
      .map((c, n) => `u.k${n + 1}${c.collation !== null ? ` COLLATE ${c.collation}` : ''} AS k${n + 1}`)
      .join(
        ', ',
      )} FROM unnest(${readKey.map((_, n) => `$${n + 3}`).join(', ')}) AS u (${readKey.map((_, n) => `k${n + 1}`).join(', ')}))`,
    keyListS: readKey.map((k) => `s.${ident(k)}`).join(', '),
    keyListOld: readKey.map((k) => `OLD.${ident(k)}`).join(', '),
    keyListNew: readKey.map((k) => `NEW.${ident(k)}`).join(', '),
    keyJoinTD: writeKey.map((k, n) => `t.${ident(k)} = d.k${n + 1}`).join(' AND '),
    keyList: writeKey.map(ident).join(', '),
    keep: keepSide(i.keepTable, i.writeModel, readKey, writeKey, i.unmapped),
    available: true,
    unavailableText: '',
  };
}

export function forwardSide(source: TableModel, target: DerivedTarget, keepTable: string): CopySide {
  return side({
    mapping: target.forward,
    readModel: source,
    readKey: source.key.columns,
    writeModel: target.model,
    writeKey: target.keyColumns,
    readPartitioned: false,
    unmapped: target.forwardUnmapped,
    keepTable,
  });
}

/** Without a reverse mapping the old table is only kept for inspection: nothing is written to it. */
export function reverseSide(source: TableModel, target: DerivedTarget, keepTable: string): CopySide {
  // After the swap the live table is the rebuilt one: partitioned with --partition-by.
  const s = side({
    mapping: target.reverse ?? [],
    readModel: target.model,
    readKey: target.keyColumns,
    writeModel: source,
    writeKey: source.key.columns,
    readPartitioned: target.partitioning !== null,
    unmapped: target.reverse === null ? [] : target.reverseUnmapped,
    keepTable,
  });
  return target.reverse !== null
    ? s
    : { ...s, available: false, unavailableText: commentText(target.revertUnavailable.join('; ')) };
}
