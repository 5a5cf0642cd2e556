/**
 * shadowpack as a library: plan a table (catalog reads, then the pure compiler), write or read
 * a plan folder, compare two plans, run one. The CLI (src/cli) is a thin layer over these.
 */
export {
  planTable,
  writeTablePlan,
  referencingDir,
  type TablePlan,
  type ReferencingTablePlan,
  type PlanEnvironment,
} from './planning/plan-table.js';
export { gatherTable, type PlanRequest, type GatheredTable } from './planning/gather.js';
export { writePlanDir, readPlanDir, checkSums, SUMS_FILE } from './planning/plan-dir.js';
export { loadTemplates, templatesDir } from './planning/templates.js';
export { diffPlans, type PlanSide, type DiffResult } from './planning/diff-plans.js';
export { planBatch, BATCH_ORDER, type BatchPlan, type BatchRequest } from './batch/plan-batch.js';
export { writeBatchDir, readBatchDir, isBatchDir, checkBatchIntegrity, type LoadedBatch } from './batch/batch-dir.js';
export {
  runBatch,
  tableStanding,
  type BatchRunRequest,
  type BatchRunSummary,
  type BatchEvent,
  type TableStanding,
} from './batch/run-batch.js';
export { diffBatches, type BatchDiff, type BatchSide } from './batch/diff-batches.js';
export type { BatchManifest, BatchTable, BatchSkipped, BatchSelection } from './batch/manifest.js';
export { compile, sha256, type Plan, type PlanManifest, type PlanStage, type CompileInput } from './compile/compile.js';
export { headerText, splitReadme, type PlanProvenance } from './compile/provenance.js';
export { resolveOptions, withOptionDefaults, DEFAULT_OPTIONS, type PlanOptions } from './compile/options.js';
export { resolveTransform, NO_TRANSFORM, type TransformSpec, type TransformArgs } from './compile/transform/spec.js';
export { introspect, parseTableName } from './introspect/introspect.js';
export { run, nextForwardStage, type RunRequest, type RunSummary } from './run/runner.js';
export type { LoadedPlan } from './run/plan-check.js';
export type { RunState } from './run/state.js';
export { UserError, type UserErrorCode } from './model/errors.js';
export type { TableModel, EnvironmentFacts } from './model/types.js';
export { TOOL_VERSION } from './version.js';
