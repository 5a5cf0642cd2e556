import type { RunNames } from '../model/names.js';
import type { TableModel } from '../model/types.js';
import type { DerivedTarget } from './transform/derive.js';

/** Everything the step builders need: the model, the names and the quoted relations. */
export interface StepInput {
  readonly model: TableModel;
  readonly target: DerivedTarget;
  readonly names: RunNames;
  readonly src: string;
  readonly copy: string;
  readonly old: string;
  readonly func: {
    readonly reverseCapture: string;
    readonly truncate: string;
    readonly asOwner: string;
    readonly session: string;
    readonly ownerCheck: string;
  };
}
