/** --bloated without --min-ratio: a fifth of the heap reclaimable, what most DBAs call bloated. */
export const DEFAULT_BLOATED_MIN_RATIO = 0.2;
