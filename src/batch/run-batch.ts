import type { ClientBase, ClientConfig } from 'pg';
import { UserError } from '../model/errors.js';
import { qualified } from '../model/quote.js';
import { connectClient } from '../run/connect.js';
import type { StageName } from '../compile/stages.js';
import { stageMachine } from '../compile/stage-machine.js';
import type { RunEvent } from '../run/events.js';
import type { LoadedPlan } from '../run/plan-check.js';
import { run } from '../run/runner.js';
import { readFinished, readState, type RunState } from '../run/state.js';
import { checkBatchIntegrity, readBatchTable, type LoadedBatch } from './batch-dir.js';
import type { BatchTable } from './manifest.js';

/** Where a table of a batch stands, from the state and history both executors write. */
export type TableStanding =
  | { readonly kind: 'not-started' }
  | { readonly kind: 'in-progress'; readonly state: RunState }
  /** Swapped, revert window open: cleanup (or revert) is next. */
  | { readonly kind: 'swapped'; readonly state: RunState }
  | { readonly kind: 'done'; readonly endedAt: string }
  | { readonly kind: 'reverted'; readonly endedAt: string }
  /** The last run was aborted: the table is as it was, and the plan may run again. */
  | { readonly kind: 'aborted'; readonly endedAt: string };

const AFTER_SWAP = new Set(['swap', 'cleanup-started']);
/**
 * The states the abort stage may start from (before the swap, or an abort or revert stopped
 * halfway), as the stage machine says: the same in every plan, with or without a verify stage.
 */
const ABORT_FROM: readonly (string | null)[] = (() => {
  const from = stageMachine({ verifyRanges: 0 }).find((r) => r.stage === 'abort')!.from;
  if (from === 'any') throw new Error('internal error: the abort stage starts from any state');
  return from;
})();

export async function tableStanding(client: ClientBase, plan: LoadedPlan): Promise<TableStanding> {
  const state = await readState(client, plan.manifest);
  if (state !== null) return AFTER_SWAP.has(state.stage) ? { kind: 'swapped', state } : { kind: 'in-progress', state };
  const finished = await readFinished(client, plan.manifest);
  if (finished === null) return { kind: 'not-started' };
  switch (finished.outcome) {
    case 'cleaned':
      return { kind: 'done', endedAt: finished.endedAt };
    case 'reverted':
      return { kind: 'reverted', endedAt: finished.endedAt };
    default:
      return { kind: 'aborted', endedAt: finished.endedAt };
  }
}

/** Bytes the table (with TOAST and indexes) takes now; null when it is gone. */
export async function sizeNow(client: ClientBase, t: BatchTable): Promise<number | null> {
  const r = await client.query<{ b: string | null }>(
    'SELECT pg_catalog.pg_total_relation_size(pg_catalog.to_regclass($1))::text AS b',
    [qualified(t.schema, t.name)],
  );
  return r.rows[0]?.b == null ? null : Number(r.rows[0].b);
}

export type BatchEvent =
  | {
      readonly type: 'batch-table-start';
      readonly index: number;
      readonly of: number;
      readonly table: string;
      readonly totalBytes: number;
      readonly reclaimableBytes: number;
    }
  | {
      readonly type: 'batch-table-skip';
      readonly index: number;
      readonly of: number;
      readonly table: string;
      readonly reason: string;
    }
  | {
      readonly type: 'batch-table-end';
      readonly index: number;
      readonly of: number;
      readonly table: string;
      readonly outcome: 'done' | 'swapped';
      readonly ms: number;
      readonly reclaimedBytes: number | null;
    }
  | {
      readonly type: 'batch-progress';
      readonly done: number;
      readonly of: number;
      readonly reclaimedBytes: number;
      readonly etaSeconds: number;
    }
  | {
      readonly type: 'batch-table-retry';
      readonly index: number;
      readonly of: number;
      readonly table: string;
      readonly attempt: number;
      readonly error: string;
    }
  | {
      readonly type: 'batch-table-failed';
      readonly index: number;
      readonly of: number;
      readonly table: string;
      readonly error: string;
      readonly aborted: boolean;
    }
  | {
      readonly type: 'run';
      readonly table: string;
      readonly runId: string;
      readonly planHash: string;
      readonly event: RunEvent;
    };

export interface BatchRunRequest {
  readonly batch: LoadedBatch;
  readonly connection: ClientConfig;
  /** 'swap': stop after the first table that reaches its swap (its revert window open); 'cleanup': every table whole. */
  readonly until: 'swap' | 'cleanup';
  /** Tables at once (with until 'cleanup' only); never two that share a foreign key. */
  readonly parallelTables?: number;
  /** Sessions for each table's backfill (RunRequest.jobs). */
  readonly jobs?: number;
  /** The approved batch hash. */
  readonly expectHash?: string;
  readonly onEvent: (e: BatchEvent) => void;
}

export interface BatchRunSummary {
  /** Every table cleaned up (or reverted by an operator): nothing left to run. */
  readonly finished: boolean;
  /** The table whose revert window is open and holds the batch (until 'swap'), or null. */
  readonly waitingAt: { readonly table: string; readonly dir: string } | null;
  readonly tables: readonly { readonly table: string; readonly standing: TableStanding['kind'] }[];
  /** Size at plan time less size now, over the tables done. */
  readonly reclaimedBytes: number;
}

/**
 * Runs a batch: each table's plan, as `run --plan DIR/<table>` would, in the batch's order.
 * Resumes where it stopped (each table's state is in the database), never redoes a finished
 * table, and at the first failure aborts that table (when it has not swapped yet) and starts no
 * other. Every folder is checked against the batch before anything runs.
 */
export async function runBatch(req: BatchRunRequest): Promise<BatchRunSummary> {
  checkBatchIntegrity(req.batch, req.expectHash);
  const tables = req.batch.manifest.tables;
  const plans = tables.map((t) => readBatchTable(req.batch, t));
  const n = Math.max(1, req.parallelTables ?? 1);
  if (n > 1 && req.until !== 'cleanup') {
    throw new UserError(
      'BAD_ARGUMENT',
      '--parallel-tables runs tables unattended: give it with --until cleanup (a run that stops after a swap takes one table at a time)',
    );
  }
  const of = tables.length;
  const client = await connectClient(req.connection);
  try {
    const standing = new Map<number, TableStanding['kind']>();
    let reclaimed = 0;
    const estimated = { done: 0, actualMs: 0 };
    const measure = async (i: number) => {
      const now = await sizeNow(client, tables[i]!);
      const gain = now === null ? null : tables[i]!.totalBytes - now;
      if (gain !== null) reclaimed += gain;
      return gain;
    };
    const progress = () => {
      const left = tables
        .filter((_, i) => !['done', 'reverted'].includes(standing.get(i) ?? ''))
        .reduce((s, t) => s + Math.max(1, t.estimatedSeconds), 0);
      const scale = estimated.done > 0 ? estimated.actualMs / 1000 / estimated.done : 1;
      const done = [...standing.values()].filter((s) => s === 'done' || s === 'reverted').length;
      req.onEvent({
        type: 'batch-progress',
        done,
        of,
        reclaimedBytes: reclaimed,
        etaSeconds: Math.round(left * scale),
      });
    };
    // What earlier runs finished: never redone.
    for (let i = 0; i < of; i++) {
      const s = await tableStanding(client, plans[i]!);
      standing.set(i, s.kind);
      if (s.kind === 'done' || s.kind === 'reverted') {
        await measure(i);
        req.onEvent({
          type: 'batch-table-skip',
          index: i + 1,
          of,
          table: label(tables[i]!),
          reason:
            s.kind === 'done'
              ? `rebuilt earlier (cleaned up at ${s.endedAt})`
              : `reverted at ${s.endedAt}; left as it is`,
        });
      }
    }
    let waitingAt: { table: string; dir: string } | null = null;
    // The first setup in a database creates the tool's shared state and history tables and the
    // last cleanup (or abort) drops the state table: two of those at once can collide, so with
    // --parallel-tables they take turns (the copying stages in between run side by side).
    const shared = mutex();
    const segments: readonly (readonly [StageName, boolean])[] =
      req.until === 'swap'
        ? [
            ['setup', true],
            ['swap', false],
          ]
        : [
            ['setup', true],
            ['swap', false],
            ['cleanup', true],
          ];
    const runOne = async (i: number): Promise<void> => {
      const t = tables[i]!;
      const plan = plans[i]!;
      const s = await tableStanding(client, plan);
      if (s.kind === 'swapped' && req.until === 'swap') {
        waitingAt = { table: label(t), dir: t.dir };
        return;
      }
      req.onEvent({
        type: 'batch-table-start',
        index: i + 1,
        of,
        table: label(t),
        totalBytes: t.totalBytes,
        reclaimableBytes: t.reclaimableBytes,
      });
      const started = Date.now();
      for (let attempt = 1; ; attempt++) {
        try {
          for (const [until, exclusive] of segments) {
            const go = () =>
              run({
                plan,
                connection: req.connection,
                until,
                expectHash: t.planHash,
                ...(req.jobs !== undefined ? { jobs: req.jobs } : {}),
                onEvent: (event) =>
                  req.onEvent({
                    type: 'run',
                    table: label(t),
                    runId: plan.manifest.runId,
                    planHash: t.planHash,
                    event,
                  }),
              });
            await (exclusive ? shared(go) : go());
          }
          break;
        } catch (e) {
          const error = e instanceof Error ? e.message : String(e);
          // A stage that stopped with nothing changed before the swap (a lock it could not take within its
          // budget, a session holding a snapshot at the swap) may well pass a moment later: try the run again
          // before throwing away the table's copy.
          if (
            attempt < STAGE_ATTEMPTS &&
            e instanceof UserError &&
            e.code === 'STAGE_FAILED' &&
            (await beforeSwap(client, plan))
          ) {
            req.onEvent({ type: 'batch-table-retry', index: i + 1, of, table: label(t), attempt, error });
            await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS * attempt));
            continue;
          }
          const aborted = await shared(() => abortAfterFailure(client, req, plan, t));
          standing.set(i, aborted ? 'aborted' : 'in-progress');
          req.onEvent({ type: 'batch-table-failed', index: i + 1, of, table: label(t), error, aborted });
          throw e;
        }
      }
      const after = await tableStanding(client, plan);
      standing.set(i, after.kind);
      const ms = Date.now() - started;
      if (after.kind === 'done') {
        estimated.done += Math.max(1, t.estimatedSeconds);
        estimated.actualMs += ms;
        req.onEvent({
          type: 'batch-table-end',
          index: i + 1,
          of,
          table: label(t),
          outcome: 'done',
          ms,
          reclaimedBytes: await measure(i),
        });
      } else if (after.kind === 'swapped') {
        req.onEvent({
          type: 'batch-table-end',
          index: i + 1,
          of,
          table: label(t),
          outcome: 'swapped',
          ms,
          reclaimedBytes: null,
        });
        waitingAt = { table: label(t), dir: t.dir };
      }
      progress();
    };
    await schedule(
      tables,
      n,
      (i) => !['done', 'reverted'].includes(standing.get(i) ?? ''),
      runOne,
      () => waitingAt !== null,
    );
    const kinds = tables.map((t, i) => ({ table: label(t), standing: standing.get(i) ?? 'not-started' }));
    return {
      finished: kinds.every((k) => k.standing === 'done' || k.standing === 'reverted'),
      waitingAt,
      tables: kinds,
      reclaimedBytes: reclaimed,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** How often a table's run is tried before the batch aborts it and stops. */
export const STAGE_ATTEMPTS = 3;
const RETRY_PAUSE_MS = 1000;

/** True when the table's run has not swapped: no run yet, or one in the stages before the swap. */
async function beforeSwap(client: ClientBase, plan: LoadedPlan): Promise<boolean> {
  const state = await readState(client, plan.manifest);
  return state === null || ['setup-started', 'setup', 'backfill', 'build', 'catchup', 'verified'].includes(state.stage);
}

function label(t: BatchTable): string {
  return qualified(t.schema, t.name);
}

/** The failed table's run aborted, when it has not swapped: the table as it was, nothing of the run left. */
async function abortAfterFailure(
  client: ClientBase,
  req: BatchRunRequest,
  plan: LoadedPlan,
  t: BatchTable,
): Promise<boolean> {
  try {
    const state = await readState(client, plan.manifest);
    if (state === null) return true;
    if (!ABORT_FROM.includes(state.stage)) return false;
    await run({
      plan,
      connection: req.connection,
      stage: 'abort',
      expectHash: t.planHash,
      onEvent: (event) =>
        req.onEvent({ type: 'run', table: label(t), runId: plan.manifest.runId, planHash: t.planHash, event }),
    });
    return (await readState(client, plan.manifest)) === null;
  } catch {
    // The table's own error is what matters; status and the printed hint say what to do next.
    return false;
  }
}

/**
 * Runs `work` for each index that `pending` accepts, in order, at most `n` at once, never two
 * tables that share a foreign key at once. Stops starting work at the first failure (waiting
 * for what runs, then rethrowing it) or once `halt` says so.
 */
async function schedule(
  tables: readonly BatchTable[],
  n: number,
  pending: (i: number) => boolean,
  work: (i: number) => Promise<void>,
  halt: () => boolean,
): Promise<void> {
  const queue = tables.map((_, i) => i).filter(pending);
  const running = new Map<number, Promise<void>>();
  let failure: unknown = null;
  const busy = (i: number) =>
    [...running.keys()].some(
      (r) => tables[r]!.neighbours.includes(label(tables[i]!)) || tables[i]!.neighbours.includes(label(tables[r]!)),
    );
  while ((queue.length > 0 && failure === null && !halt()) || running.size > 0) {
    while (running.size < n && failure === null && !halt()) {
      const at = queue.findIndex((i) => !busy(i));
      if (at < 0) break;
      const i = queue.splice(at, 1)[0]!;
      running.set(
        i,
        work(i).then(
          () => void running.delete(i),
          (e: unknown) => {
            running.delete(i);
            failure ??= e;
          },
        ),
      );
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  if (failure !== null) throw failure;
}

/** One at a time, in call order: for the stages that create or drop the tool's shared tables. */
function mutex(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>) => {
    const result = tail.then(fn);
    tail = result.catch(() => undefined);
    return result;
  };
}
