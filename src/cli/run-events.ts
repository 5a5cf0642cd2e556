import { UserError } from '../model/errors.js';
import { redactSecrets } from './connection.js';
import { SCHEMA_VERSION } from './machine-output.js';

/** What every --events line says of the plan it is about: a rebuild plan and a move plan alike. */
interface EventPlan {
  readonly manifest: { readonly runId: string; readonly planHash: string };
}

/**
 * With --events every line carries the same envelope (docs/scripting.md): the schema version, the
 * time, and the run and plan it is about, so lines from several runs can be told apart in one log.
 */
export function eventEnvelope(plan: EventPlan | null): (event: object) => object {
  return (event) => ({
    schemaVersion: SCHEMA_VERSION,
    ts: new Date().toISOString(),
    runId: plan?.manifest.runId ?? null,
    planHash: plan?.manifest.planHash ?? null,
    ...event,
  });
}

/** The --events line of a run that failed (besides the line on stderr): its code, its stage, its message without secrets. */
export function errorEvent(e: unknown, stage: string | null): object {
  return {
    type: 'error',
    stage,
    code: e instanceof UserError ? e.code : 'INTERNAL_ERROR',
    message: redactSecrets(e instanceof Error ? e.message : String(e)),
  };
}

/** The line that sums up the stages a run ran, and their time. */
export function stagesLine(stages: readonly { readonly stage: string; readonly ms: number }[]): string {
  const total = stages.reduce((a, s) => a + s.ms, 0);
  return `stages: ${stages.map((s) => `${s.stage} ${s.ms} ms`).join(', ') || 'none (nothing left to do)'}; total ${total} ms`;
}
