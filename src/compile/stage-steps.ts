import { literal, qualified } from '../model/quote.js';
import { accessExclusive, type Step } from './step.js';
import type { StepInput } from './step-input.js';
import { copyRevokeSteps } from './privilege-steps.js';
import { dependentSteps } from './dependents.js';
import { unplannedDependentsCheck } from './dependent-checks.js';
import { buildSteps, copyColumnSteps, revertSteps, swapSteps, validateSteps } from './steps.js';

/** Every list of steps the stage scripts print, as data (context.ts makes them printable). */
export interface StageSteps {
  readonly copyColumnSteps: readonly Step[];
  /** The copy's columns from the first generated one on, added by the table's owner (see owner-columns.ts), then their settings. */
  readonly ownerColumnSteps: readonly Step[];
  readonly alterSetupSteps: readonly Step[];
  readonly partitionSetupSteps: readonly Step[];
  /** The --alter statements, each run as the table's owner. */
  readonly alterOwnerSteps: readonly Step[];
  readonly buildSteps: readonly Step[];
  readonly swapSteps: readonly Step[];
  readonly revertSteps: readonly Step[];
  readonly validateSteps: readonly Step[];
}

/**
 * `ownerColumnsSql`: the ALTER TABLE that adds the owner's columns; it runs through the as-owner
 * function, as do the --alter statements, so each step's SQL is a call and its locks are the
 * statement's.
 */
export function stageSteps(input: StepInput, ownerColumnsSql: string): StageSteps {
  const { target, copy, src, model, func } = input;
  const ownerAdded = new Set(target.ownerColumns.map((c) => c.name));
  const partitions = (target.partitioning?.partitions ?? []).map((p) => qualified(model.schema, p.name));
  return {
    copyColumnSteps: [...copyRevokeSteps(copy), ...copyColumnSteps(input, (c) => !ownerAdded.has(c))],
    ownerColumnSteps:
      target.ownerColumns.length === 0
        ? []
        : [
            {
              kind: 'alter-copy',
              comment: `columns ${target.ownerColumns.map((c) => c.name).join(', ')}, added as the table's owner: creating a generated column plans its expression, which runs the owner's IMMUTABLE functions on constant arguments`,
              sql: `SELECT ${func.asOwner}(${literal(ownerColumnsSql)});`,
              locks: [accessExclusive(copy)],
            },
            ...copyColumnSteps(input, (c) => ownerAdded.has(c)),
          ],
    alterSetupSteps: target.setupSteps,
    partitionSetupSteps: target.partitionSteps,
    alterOwnerSteps: target.alterSteps.map((st) => ({
      ...st,
      comment: `${st.comment} (as the table's owner: a DEFAULT that is not volatile is evaluated now)`,
      sql: `SELECT ${func.asOwner}(${literal(st.sql.replace(/;\s*$/, ''))});`,
    })),
    buildSteps: buildSteps(input),
    swapSteps: [...swapSteps(input), ...dependentSteps(input, input.old)],
    revertSteps: [
      {
        kind: 'check',
        comment: 'nothing created over the rebuilt table since the swap may be left reading it',
        sql: unplannedDependentsCheck('revert', src, model, true, partitions),
        locks: [],
      },
      ...revertSteps(input),
      ...dependentSteps(input, copy),
    ],
    validateSteps: validateSteps(input),
  };
}
