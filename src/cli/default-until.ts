import type { StageName } from '../compile/stages.js';

/**
 * Where a plain `run` stops, for one table and for a batch: after the swap, with the revert window
 * open (issue 18). Cleanup ends that window, so going through it takes an explicit `--until cleanup`.
 * A module of its own so run.ts and run-batch.ts can both import it without importing each other.
 */
export const DEFAULT_UNTIL: StageName = 'swap';
