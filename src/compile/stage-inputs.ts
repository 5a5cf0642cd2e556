import { commentText } from '../model/quote.js';
import type { CommonContext } from './context.js';
import { stageHazards, stageLock } from './locks.js';
import type { PlanOptions } from './options.js';
import { requiresText, stageMachine, stageRecord } from './stage-machine.js';
import {
  PARALLEL_STAGES,
  planStages,
  stageInfo,
  type HazardCode,
  type StageInfo,
  type StageLock,
  type StageName,
} from './stages.js';
import { stageInput, templateInput, type StageInput, type StageTemplateInput } from './template-inputs.js';
import type { DerivedTarget } from './transform/derive.js';
import { transformHazards } from './transform/hazards.js';

/** One stage of the plan, ready to render: its template's input, and what the manifest says of it. */
export interface StageToRender<K extends StageName = StageName> {
  readonly name: K;
  readonly info: StageInfo;
  readonly input: StageTemplateInput<K>;
  readonly locks: readonly StageLock[];
  readonly hazards: readonly HazardCode[];
}

/** The plan's stages in order, each with the input of its template (pure). */
export function stagesToRender(common: CommonContext, target: DerivedTarget, options: PlanOptions): StageToRender[] {
  const machine = stageMachine(options);
  return planStages(options).map((name) => {
    const info = { ...stageInfo(name), requires: requiresText(machine, name) };
    const lock = stageLock(name, common);
    const hazards = [...stageHazards(name, common, lock), ...transformHazards(name, target)];
    const blocking = lock.shown.filter((l) => l.blocksApplication);
    const stage: StageInput = {
      ...info,
      transactionText: {
        none: 'no (read-only)',
        one: 'yes',
        batches: 'no: commits batch by batch, resumable',
        several: 'no: a few transactions, each safe to repeat',
      }[info.transaction],
      blockingLocksText: commentText(
        blocking.length === 0
          ? 'none'
          : blocking
              .map(
                (l) =>
                  `${l.mode} on ${l.relation}, ${options.lockTimeoutMs} ms per attempt, at most ${options.lockAttempts} rounds and ${options.lockBudgetMs} ms queued in all`,
              )
              .join('; '),
      ),
      hazardsText: hazards.length === 0 ? 'none' : hazards.join(', '),
      requiresText: info.requires,
      summaryText: commentText(info.summary),
      recordLiteral: stageRecord(machine, name),
      // Abort removes a run whichever plan started it (it only takes things away; useful when the
      // other plan's folder is lost); every other stage refuses a run another plan started.
      anyPlansRun: name === 'abort',
      // Stages whose work several sessions share (each claims what no other session holds).
      parallel: PARALLEL_STAGES.has(name),
    };
    const locksText = commentText(lock.shown.map((l) => `${l.mode} on ${l.relation}`).join('; ') || 'none');
    const input = stageInput(
      name,
      templateInput(common, stage, { ...lock, locksText }, `shadowpack/${common.names.runId}/${name}`),
    );
    return { name, info, input, locks: lock.shown, hazards } as StageToRender;
  });
}
