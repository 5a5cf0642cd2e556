import type { Options } from 'yargs';
import { CONTROL_DEFAULTS, type ControlOptions } from '../compile/control-options.js';

const group = 'Throttling and operator control:';

/** `plan` flags for the control options; each maps to the option of the same name in camelCase. */
export const CONTROL_FLAGS: { readonly [K in keyof ControlOptions]: Options } = {
  maxRowsPerSecond: {
    type: 'number',
    group,
    describe: `rows/s ceiling for backfill and catch-up, 0 for none; changeable while running (default ${CONTROL_DEFAULTS.maxRowsPerSecond})`,
  },
  maxReplicaLagMs: {
    type: 'number',
    group,
    describe:
      "wait between batches while a replica's replay lag (pg_stat_replication) is above this; 0 for off (default 0)",
  },
  throttleProbe: {
    type: 'string',
    group,
    describe:
      'SQL returning one number; wait between batches while it is above --throttle-threshold (checked at plan time, run read-only)',
  },
  throttleThreshold: { type: 'number', group, describe: 'threshold for --throttle-probe' },
  throttleProbeTimeoutMs: {
    type: 'number',
    group,
    describe: `statement_timeout of the probe at plan time, lock_timeout while running (default ${CONTROL_DEFAULTS.throttleProbeTimeoutMs})`,
  },
  holdSwap: { type: 'boolean', group, describe: 'the swap stage waits until "shadowpack control --release-swap"' },
  holdWaitSeconds: {
    type: 'number',
    group,
    describe: `how long one swap stage waits for the release before it stops, resumable (default ${CONTROL_DEFAULTS.holdWaitSeconds})`,
  },
};
