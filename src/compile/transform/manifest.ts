import type { TableModel } from '../../model/types.js';
import type { ColumnMapping, DerivedTarget } from './derive.js';
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
    // Absent without --partition-by, so other plans' manifests stay as they were.
    ...(t.partitioning !== null ? { partitions: t.partitioning.partitions } : {}),
  };
}
