/**
 * Plain data a move needs beyond the table model (issue 15): read by src/introspect/move-facts.ts, consumed by the
 * pure compiler (src/compile/move). Declared here so the compiler depends on the model, not on the catalog reader.
 */
import type { SequenceParameters } from './types.js';

export interface MoveEnumType {
  readonly schema: string;
  readonly name: string;
  readonly labels: readonly string[];
}
export interface MoveCompositeType {
  readonly schema: string;
  readonly name: string;
  readonly attributes: readonly { readonly name: string; readonly type: string }[];
}

/** A sequence the group uses: owned by a column (a), an identity (i) or named in a column default (n). */
export interface MoveSequence extends SequenceParameters {
  readonly schema: string;
  readonly name: string;
  readonly kind: 'owned' | 'identity' | 'default';
  /** The table (schema, name) and column whose values come from it. */
  readonly tableSchema: string;
  readonly tableName: string;
  readonly column: string;
  /** Other tables (outside this table) whose defaults also use it. */
  readonly usedElsewhere: readonly string[];
}
