import { commentText, ident } from '../../model/quote.js';
import type { ColumnModel, TableModel } from '../../model/types.js';
import type { ColumnMapping, DerivedTarget } from './derive.js';

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
  /** False when no mapping exists in this direction (revert unavailable); the apply function then refuses. */
  readonly available: boolean;
  readonly unavailableText: string;
}

function keyColumns(model: TableModel, names: readonly string[]): ColumnModel[] {
  return names.map((k) => {
    const col = model.columns.find((c) => c.name === k);
    if (!col) throw new Error(`key column ${k} missing from the model`);
    return col;
  });
}

function side(mapping: readonly ColumnMapping[], readModel: TableModel, readKey: readonly string[], writeKey: readonly string[], readPartitioned: boolean): CopySide {
  return {
    only: readPartitioned ? '' : 'ONLY ',
    insertList: mapping.map((m) => ident(m.column)).join(', '),
    selectList: mapping.map((m) => m.expr).join(', '),
    keyDefs: keyColumns(readModel, readKey).map((c, i) => `k${i + 1} ${c.type}${c.collation !== null ? ` COLLATE ${c.collation}` : ''} NOT NULL`),
    keyArrayParams: keyColumns(readModel, readKey).map((c, i) => `k${i + 1} ${c.type}[]`),
    keyArrayTypes: keyColumns(readModel, readKey).map((c) => `${c.type}[]`),
    keyListS: readKey.map((k) => `s.${ident(k)}`).join(', '),
    keyListOld: readKey.map((k) => `OLD.${ident(k)}`).join(', '),
    keyListNew: readKey.map((k) => `NEW.${ident(k)}`).join(', '),
    keyJoinTD: writeKey.map((k, i) => `t.${ident(k)} = d.k${i + 1}`).join(' AND '),
    keyList: writeKey.map(ident).join(', '),
    available: true,
    unavailableText: '',
  };
}

export function forwardSide(source: TableModel, target: DerivedTarget): CopySide {
  return side(target.forward, source, source.key.columns, target.keyColumns, false);
}

/** Without a reverse mapping the old table is only kept for inspection: nothing is written to it. */
export function reverseSide(source: TableModel, target: DerivedTarget): CopySide {
  // After the swap the live table is the rebuilt one: partitioned with --partition-by.
  const s = side(target.reverse ?? [], target.model, target.keyColumns, source.key.columns, target.partitioning !== null);
  return target.reverse !== null ? s : { ...s, available: false, unavailableText: commentText(target.revertUnavailable.join('; ')) };
}
