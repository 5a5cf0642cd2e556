import type { TableModel } from '../../model/types.js';
import type { ColumnMapping, DerivedTarget, UnmappedColumn } from './derive.js';
import type { TransformSpec } from './spec.js';
import type { PartitionModel } from './partition.js';

/** The transformation as recorded in plan.json, so a reviewer (or `diff`) sees exactly what was derived. */
export interface TransformManifest {
  readonly spec: TransformSpec;
  readonly targetModel: TableModel;
  readonly forward: readonly ColumnMapping[];
  readonly reverse: readonly ColumnMapping[] | null;
  readonly revertUnavailable: readonly string[];
  readonly differences: readonly string[];
  readonly narrowReferences: readonly string[];
  /**
   * Columns a mapping does not fill: added ones (forward, in the copy) and dropped ones (reverse, in
   * the old table). Absent when there are none.
   */
  readonly unmapped?: { readonly forward: readonly UnmappedColumn[]; readonly reverse: readonly UnmappedColumn[] };
  /** --partition-by only: the partitions the setup creates (names and bounds). */
  readonly partitions?: readonly PartitionModel[];
}

export function transformManifest(spec: TransformSpec, t: DerivedTarget): TransformManifest {
  return {
    spec,
    targetModel: t.model,
    forward: t.forward,
    reverse: t.reverse,
    revertUnavailable: t.revertUnavailable,
    differences: t.differences,
    narrowReferences: t.narrowReferences,
    // Absent when every column is mapped both ways, so other plans' manifests stay as they were.
    ...(t.forwardUnmapped.length + t.reverseUnmapped.length > 0
      ? { unmapped: { forward: t.forwardUnmapped, reverse: t.reverseUnmapped } }
      : {}),
    // Absent without --partition-by, so other plans' manifests stay as they were.
    ...(t.partitioning !== null ? { partitions: t.partitioning.partitions } : {}),
  };
}
