import { UserError } from '../../model/errors.js';
import type { ColumnModel } from '../../model/types.js';
import { mentions } from './apply-alter.js';

/** The copy's columns: those setup creates it with (as the runner), then those the table's owner adds. */
export interface CopyColumns {
  readonly created: readonly ColumnModel[];
  readonly addedByOwner: readonly ColumnModel[];
  /**
   * Generated columns the runner must create itself: with --partition-by, CREATE TABLE … PARTITION BY
   * names the partition column, so every column up to it is in the first CREATE TABLE. Setup then
   * refuses to run unless the role running it is the table's owner (nothing to gain from the owner's
   * code then).
   */
  readonly createdGenerated: readonly string[];
}

/**
 * Issue 19: CREATE TABLE plans a generated column's expression to check that it is immutable, which
 * constant-folds it: an IMMUTABLE function of the owner's called with constant arguments runs right
 * then, with the privileges of whoever creates the table. The copy cannot simply be created by the
 * owner: the owner may have no CREATE on its table's schema (a superuser may plan such a table, see
 * test/integration/schema-owner-layout.test.ts). So the runner creates the copy with the columns
 * before the first generated one and hands it to the owner, and the owner adds the rest, in order
 * (ALTER TABLE … ADD COLUMN needs only ownership of the copy), through the functions that run its
 * code as itself (owner-functions.hbs). Column order stays the table's. PostgreSQL cannot add a
 * generated column before a column its expression reads, so such a table is refused.
 */
export function copyColumns(columns: readonly ColumnModel[], partitionColumn: string | null = null): CopyColumns {
  const first = columns.findIndex((c) => c.generated !== null);
  if (first < 0) return { created: columns, addedByOwner: [], createdGenerated: [] };
  const key = partitionColumn === null ? -1 : columns.findIndex((c) => c.name === partitionColumn);
  const cut = Math.max(first, key + 1);
  columns.forEach((c, i) => {
    if (c.generated === null || i < cut) return;
    const later = columns.slice(i + 1).find((l) => mentions(c.generated!, l.name));
    if (later !== undefined) {
      throw new UserError(
        'UNSUPPORTED_TABLE',
        `generated column ${c.name} reads column ${later.name}, which comes after it: shadowpack adds the copy's generated columns as the table's owner, in column order, so that the owner's code in them never runs as the role running the plan, and PostgreSQL cannot add a generated column before a column it reads`,
      );
    }
  });
  const created = columns.slice(0, cut);
  return {
    created,
    addedByOwner: columns.slice(cut),
    createdGenerated: created.filter((c) => c.generated !== null).map((c) => c.name),
  };
}
