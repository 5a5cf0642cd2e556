import { UserError } from '../model/errors.js';
import { optionValueError } from './option-errors.js';
import { CONTROL_DEFAULTS, isControlKey, resolveControlOptions, type ControlOptions } from './control-options.js';

/**
 * Plan options. Everything that shapes the SQL comes in here, so the same
 * model and options always give the same bytes. Times are milliseconds.
 */
export interface PlanOptions extends ControlOptions {
  /** lock_timeout of one attempt at a lock that blocks the application. */
  readonly lockTimeoutMs: number;
  /** Attempts before a stage gives up on such a lock (nothing changed then). */
  readonly lockAttempts: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /**
   * Total time the application may have queued behind our lock attempts in one
   * locking step (the sum of the attempts' waits); no attempt starts that could exceed it.
   */
  readonly lockBudgetMs: number;
  /** 0: never cancel anybody. Else cancel (pg_cancel_backend) conflicting sessions after this long. */
  readonly cancelBlockersAfterMs: number;
  /** lock_timeout for locks that block nobody (reading the table, the copy). */
  readonly waitLockTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Heap pages copied per committed backfill batch (8 kB each). */
  readonly batchPages: number;
  readonly catchupRounds: number;
  /** The catch-up stage stops once at most this many log entries remain. */
  readonly catchupTarget: number;
  readonly swapCatchupRounds: number;
  /** Log entries left to apply under the swap lock, at most (best effort). */
  readonly swapBacklog: number;
  /** statement_timeout for each statement run while the swap lock is held. */
  readonly swapStatementTimeoutMs: number;
  /** How long the swap waits for sessions with old snapshots. */
  readonly snapshotWaitSeconds: number;
  readonly advisoryWaitSeconds: number;
  /** Key ranges of the 04b-verify stage; 0 leaves the stage out (--verify-before-swap sets 16). */
  readonly verifyRanges: number;
  /**
   * maintenance_work_mem (MB) of each session of the build stage; 0 keeps the server's setting. Each
   * index build sorts in up to this much memory (its parallel workers share it), so N build
   * sessions (`run --jobs N`, or N psql sessions) may use N times it.
   */
  readonly buildMaintenanceWorkMemMb: number;
}

export const DEFAULT_OPTIONS: PlanOptions = {
  lockTimeoutMs: 200,
  lockAttempts: 30,
  backoffBaseMs: 100,
  backoffMaxMs: 3000,
  lockBudgetMs: 2000,
  cancelBlockersAfterMs: 0,
  waitLockTimeoutMs: 30000,
  idleTimeoutMs: 60000,
  batchPages: 4000,
  catchupRounds: 50,
  catchupTarget: 1000,
  swapCatchupRounds: 20,
  swapBacklog: 200,
  swapStatementTimeoutMs: 5000,
  snapshotWaitSeconds: 300,
  advisoryWaitSeconds: 10,
  verifyRanges: 0,
  buildMaintenanceWorkMemMb: 0,
  ...CONTROL_DEFAULTS,
};

/** The options that are plain whole numbers with bounds (the control options check themselves). */
export type NumericOptionKey = Exclude<keyof PlanOptions, keyof ControlOptions>;

const BOUNDS: { readonly [K in NumericOptionKey]: readonly [number, number] } = {
  lockTimeoutMs: [10, 60000],
  lockAttempts: [1, 10000],
  backoffBaseMs: [0, 60000],
  backoffMaxMs: [0, 600000],
  lockBudgetMs: [10, 3600000],
  cancelBlockersAfterMs: [0, 3600000],
  waitLockTimeoutMs: [100, 3600000],
  idleTimeoutMs: [1000, 86400000],
  batchPages: [1, 10000000],
  catchupRounds: [1, 100000],
  catchupTarget: [0, 100000000],
  swapCatchupRounds: [1, 100000],
  swapBacklog: [0, 100000000],
  swapStatementTimeoutMs: [100, 3600000],
  snapshotWaitSeconds: [0, 86400],
  advisoryWaitSeconds: [0, 3600],
  verifyRanges: [0, 100000],
  buildMaintenanceWorkMemMb: [0, 2097151],
};

/** Fills defaults and checks bounds; a bad value is a user error naming the option. */
export function resolveOptions(given: Partial<Record<keyof PlanOptions, unknown>>): PlanOptions {
  const out: Record<string, unknown> = { ...DEFAULT_OPTIONS };
  const control: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined) continue;
    if (isControlKey(key)) {
      control[key] = value;
      continue;
    }
    if (!(key in BOUNDS)) throw new UserError('BAD_OPTION', `unknown plan option "${key}"`);
    const [lo, hi] = BOUNDS[key as NumericOptionKey];
    const n = typeof value === 'string' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < lo || n > hi) {
      throw new UserError('BAD_OPTION', optionValueError(key, value, `a whole number from ${lo} to ${hi}`));
    }
    out[key] = n;
  }
  const o = { ...(out as unknown as PlanOptions), ...resolveControlOptions(control) };
  // A budget smaller than one attempt would make every locking step give up before trying.
  if (o.lockBudgetMs < o.lockTimeoutMs) {
    throw new UserError(
      'BAD_OPTION',
      `option lockBudgetMs (${o.lockBudgetMs}) is smaller than one lock attempt, lockTimeoutMs (${o.lockTimeoutMs}): raise --lock-budget-ms to at least ${o.lockTimeoutMs} or lower --lock-timeout-ms`,
    );
  }
  return o;
}

/**
 * Options as read from a plan.json: a plan written before an option existed
 * lacks its key, and it means the default (the strict templates need every key).
 */
export function withOptionDefaults(options: Partial<PlanOptions>): PlanOptions {
  return { ...DEFAULT_OPTIONS, ...options };
}
