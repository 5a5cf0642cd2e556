/**
 * Plain data a move needs beyond the table model (issue 15): read by src/introspect/move-facts.ts, consumed by the
 * pure compiler (src/compile/move). Declared here so the compiler depends on the model, not on the catalog reader.
 */
import type { SequenceParameters } from './types.js';

export interface MoveEnumType {
  readonly kind: 'enum';
  readonly schema: string;
  readonly name: string;
  readonly labels: readonly string[];
}
export interface MoveCompositeType {
  readonly kind: 'composite';
  readonly schema: string;
  readonly name: string;
  /** type: format_type, qualified; collation: qualified, or null when it is the type's default. */
  readonly attributes: readonly { readonly name: string; readonly type: string; readonly collation?: string | null }[];
}
export interface MoveDomainType {
  readonly kind: 'domain';
  readonly schema: string;
  readonly name: string;
  /** format_type of the base type with its modifier, qualified. */
  readonly base: string;
  readonly collation: string | null;
  /** pg_get_expr of the default, or null. */
  readonly default: string | null;
  readonly notNull: boolean;
  /**
   * CHECK constraints, in name order; definition from pg_get_constraintdef (NOT VALID included). A NOT VALID one
   * may be broken by rows on the source, so the target adds it at the cut-over, after the last row arrived.
   */
  readonly constraints: readonly { readonly name: string; readonly definition: string; readonly validated: boolean }[];
}
export interface MoveRangeType {
  readonly kind: 'range';
  readonly schema: string;
  readonly name: string;
  readonly subtype: string;
  /** Operator class of the subtype when not its default b-tree one (qualified), else null. */
  readonly subtypeOpclass: string | null;
  /** Collation when it differs from the subtype's default (qualified), else null. */
  readonly collation: string | null;
  /** The subtype_diff function's qualified name, or null. */
  readonly subtypeDiff: string | null;
  /** The multirange type PostgreSQL 14+ creates with the range, named as on the source. */
  readonly multirangeSchema: string;
  readonly multirangeName: string;
}
/** A user-defined type a moved column needs, created on the target when missing; a list of them is in dependency order. */
export type MoveUserType = MoveEnumType | MoveCompositeType | MoveDomainType | MoveRangeType;

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
