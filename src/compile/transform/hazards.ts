import type { HazardCode, StageName } from '../stages.js';
import type { DerivedTarget } from './derive.js';

/** Hazards a transformation adds to a stage, on top of those every rebuild has. */
export function transformHazards(stage: StageName, target: DerivedTarget): HazardCode[] {
  switch (stage) {
    case 'backfill':
      return target.orderBy.length > 0 ? ['BACKFILL_ONE_TRANSACTION'] : [];
    case 'swap':
      return target.narrowReferences.length > 0 ? ['REFERENCING_KEY_NOT_WIDENED'] : [];
    case 'revert':
      return target.reverse === null ? ['REVERT_UNAVAILABLE'] : [];
    case 'preflight':
    case 'setup':
    case 'build':
    case 'catchup':
    case 'verify':
    case 'cleanup':
    case 'abort':
      return [];
  }
}
