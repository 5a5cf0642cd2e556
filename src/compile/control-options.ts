import { UserError } from '../model/errors.js';
import { optionValueError } from './option-errors.js';

/**
 * Plan options for throttling and operator control. They are part of the
 * plan (plan.json, the review summary, the SQL), like every other option;
 * the operator changes the live values later through the control table.
 */
export interface ControlOptions {
  /** Rows per second the backfill and catch-up may copy, at most; 0: no ceiling. Changeable while running. */
  readonly maxRowsPerSecond: number;
  /** Wait while a replica's replay lag (pg_stat_replication) exceeds this; 0: off. */
  readonly maxReplicaLagMs: number;
  /** SQL returning one number; the run waits while it exceeds throttleThreshold. null: off. */
  readonly throttleProbe: string | null;
  readonly throttleThreshold: number | null;
  /** statement_timeout of one probe call. */
  readonly throttleProbeTimeoutMs: number;
  /** The swap stage waits for `shadowpack control --release-swap` before it starts. */
  readonly holdSwap: boolean;
  /** How long one swap stage waits for the release before it stops (and can be run again). */
  readonly holdWaitSeconds: number;
}

export const CONTROL_DEFAULTS: ControlOptions = {
  maxRowsPerSecond: 0,
  maxReplicaLagMs: 0,
  throttleProbe: null,
  throttleThreshold: null,
  throttleProbeTimeoutMs: 2000,
  holdSwap: false,
  holdWaitSeconds: 600,
};

export const CONTROL_KEYS = Object.keys(CONTROL_DEFAULTS) as readonly (keyof ControlOptions)[];

export function isControlKey(key: string): key is keyof ControlOptions {
  return (CONTROL_KEYS as readonly string[]).includes(key);
}

const INTEGER_BOUNDS = {
  maxRowsPerSecond: [0, 1_000_000_000],
  maxReplicaLagMs: [0, 86_400_000],
  throttleProbeTimeoutMs: [10, 600_000],
  holdWaitSeconds: [0, 604_800],
} as const;

function wholeNumber(key: keyof typeof INTEGER_BOUNDS, value: unknown): number {
  const [lo, hi] = INTEGER_BOUNDS[key];
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < lo || n > hi) {
    throw new UserError('BAD_OPTION', optionValueError(key, value, `a whole number from ${lo} to ${hi}`));
  }
  return n;
}

/**
 * Fills defaults for the control options and checks them. A missing key takes
 * its default, so plans written before these options existed still load.
 */
export function resolveControlOptions(given: Partial<Record<keyof ControlOptions, unknown>>): ControlOptions {
  const out: { -readonly [K in keyof ControlOptions]: ControlOptions[K] } = { ...CONTROL_DEFAULTS };
  for (const key of Object.keys(INTEGER_BOUNDS) as (keyof typeof INTEGER_BOUNDS)[]) {
    if (given[key] !== undefined) out[key] = wholeNumber(key, given[key]);
  }
  if (given.holdSwap !== undefined) {
    if (typeof given.holdSwap !== 'boolean')
      throw new UserError('BAD_OPTION', optionValueError('holdSwap', given.holdSwap, 'true or false'));
    out.holdSwap = given.holdSwap;
  }
  // Only --hold-swap makes the swap wait for a release: a bound on that wait without it would be
  // recorded in the plan and the summary and never used (newcomer review finding 32).
  if (given.holdWaitSeconds !== undefined && !out.holdSwap) {
    throw new UserError(
      'BAD_OPTION',
      '--hold-wait-seconds bounds the wait for a release that only --hold-swap asks for: add --hold-swap, or drop --hold-wait-seconds',
    );
  }
  const probe = given.throttleProbe;
  if (probe !== undefined && probe !== null) {
    if (typeof probe !== 'string' || probe.trim() === '')
      throw new UserError(
        'BAD_OPTION',
        optionValueError(
          'throttleProbe',
          probe,
          'a SQL query returning one number, e.g. --throttle-probe "SELECT lag_ms FROM ops.lag"',
        ),
      );
    out.throttleProbe = probe.trim().replace(/;\s*$/, '');
  }
  const threshold = given.throttleThreshold;
  if (threshold !== undefined && threshold !== null) {
    const n = typeof threshold === 'string' ? Number(threshold) : threshold;
    if (typeof n !== 'number' || !Number.isFinite(n))
      throw new UserError('BAD_OPTION', optionValueError('throttleThreshold', threshold, 'a number'));
    out.throttleThreshold = n;
  }
  if ((out.throttleProbe === null) !== (out.throttleThreshold === null)) {
    throw new UserError(
      'BAD_OPTION',
      'give --throttle-probe and --throttle-threshold together: the run waits while the probe returns more than the threshold',
    );
  }
  return out;
}
