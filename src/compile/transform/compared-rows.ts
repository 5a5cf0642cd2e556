import { ident } from '../../model/quote.js';
import type { ColumnModel, TableModel } from '../../model/types.js';
import type { VerifySide } from '../verify-sql.js';
import type { ColumnMapping } from './derive.js';

/** What a comparison needs of a transformation: whether it changes anything, and how columns map. */
export interface ComparedShape {
  readonly differences: readonly string[];
  readonly forward: readonly ColumnMapping[];
  readonly targetColumns: readonly ColumnModel[];
  /** The rebuilt table is partitioned (--partition-by): read it without ONLY, which would see none of its rows. */
  readonly partitioned?: boolean;
}

/** `ONLY ` before a table read, except the rebuilt table when it is partitioned (the copy before the swap, the live table after). */
export function onlyFor(shape: ComparedShape | undefined, side: VerifySide, table: 'live' | 'other'): string {
  const rebuilt = side === 'before-swap' ? 'other' : 'live';
  return shape?.partitioned === true && table === rebuilt ? '' : 'ONLY ';
}

/**
 * The row expressions whose text forms verify compares, for the live table
 * and its counterpart. A plain rebuild compares every column, generated ones
 * too. With a transformation the source-shaped side is read through the
 * forward mapping, cast to the target column's type (as the copy's INSERT
 * coerces it), so both sides compare the target's columns; columns a default
 * or generated expression fills are left out.
 */
export function comparedRows(
  model: TableModel,
  side: VerifySide,
  shape?: ComparedShape,
): { live: string; other: string } {
  if (shape === undefined || shape.differences.length === 0) {
    const all = model.columns.map((c) => ident(c.name)).join(', ');
    return { live: all, other: all };
  }
  const typeOf = (name: string): string => shape.targetColumns.find((c) => c.name === name)?.type ?? 'text';
  const source = shape.forward.map((m) => `CAST(${m.expr} AS ${typeOf(m.column)})`).join(', ');
  const target = shape.forward.map((m) => ident(m.column)).join(', ');
  return side === 'before-swap' ? { live: source, other: target } : { live: target, other: source };
}

/** The comparison shape recorded in a plan's manifest. */
export function shapeOf(t: {
  readonly differences: readonly string[];
  readonly forward: readonly ColumnMapping[];
  readonly targetModel: TableModel;
  readonly spec?: { readonly partition?: unknown };
}): ComparedShape {
  // Plans made before --partition-by existed have no `partition` in their spec.
  return {
    differences: t.differences,
    forward: t.forward,
    targetColumns: t.targetModel.columns,
    partitioned: (t.spec?.partition ?? null) !== null,
  };
}
