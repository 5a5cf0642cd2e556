import { literal } from '../../model/quote.js';
import {
  MOVE_ROUND_STATES,
  MOVE_SOURCE_STATES,
  MOVE_STAGES,
  MOVE_TARGET_STATES,
  moveTemplateKey,
  type MoveStageRule,
} from './stages.js';

/**
 * The move templates' stage checks and stage UPDATEs, rendered from the stage machine's data
 * (stages.ts) so that no template names a state (issue 12): `…Literal` is one state as an SQL
 * literal, `…ListLiteral` a list of them for `IN (…)` (a …Literal kind, printed in code). A `…Literal` read from a list that is not one
 * state fails the compile instead of rendering a wrong check.
 */
export interface MoveStageStates {
  /** The state it records on its own side ('' when it records none). */
  readonly recordsLiteral: string;
  /** The states of its own side it may start from. */
  readonly fromListLiteral: string;
  readonly fromLiteral: string;
  /** `from` without the states in which it has already run: where it starts fresh. */
  readonly startLiteral: string;
  /** The states in which it has already run. */
  readonly doneListLiteral: string;
  /** The states of its own side it refuses (the complement of `from`). */
  readonly refusedListLiteral: string;
  readonly refusedLiteral: string;
  /** The other side's state it needs. */
  readonly needsLiteral: string;
  readonly needsListLiteral: string;
  /** What it writes into the other side's state, by name (see MoveStageRule.tells). */
  readonly tells: {
    readonly [name: string]: {
      readonly recordsLiteral: string;
      readonly fromListLiteral: string;
      readonly fromLiteral: string;
      /** The other side's stage test after `WHERE stage `: `= 'x'` for one state, `IN ('x', 'y')` for several. */
      readonly fromMatchSql: string;
    };
  };
}

const inList = (states: readonly string[]): string => states.map((s) => literal(s)).join(', ');

/** A getter, so that a template reading one state from a longer list fails at compile time. */
function one(target: object, key: string, states: readonly string[], what: string): void {
  Object.defineProperty(target, key, {
    enumerable: true,
    get: (): string => {
      const [only] = states;
      if (states.length !== 1 || only === undefined)
        throw new Error(`internal error: ${what} is ${states.length} states, not one`);
      return literal(only);
    },
  });
}

export function moveStageStates(rule: MoveStageRule): MoveStageStates {
  const name = rule.file;
  const from = rule.from === 'any' ? [] : rule.from.filter((s): s is string => s !== null);
  const done = rule.doneIn ?? [];
  const sideStates: readonly string[] = rule.side === 'source' ? MOVE_SOURCE_STATES : MOVE_TARGET_STATES;
  const refused = rule.from === 'any' ? [] : sideStates.filter((s) => !from.includes(s));
  const start = from.filter((s) => s !== rule.records && !done.includes(s));
  const tells: Record<string, MoveStageStates['tells'][string]> = {};
  for (const [key, t] of Object.entries(rule.tells ?? {})) {
    const fromMatchSql = t.from.length === 1 ? `= ${literal(t.from[0]!)}` : `IN (${inList(t.from)})`;
    const told = { recordsLiteral: literal(t.records), fromListLiteral: inList(t.from), fromMatchSql };
    one(told, 'fromLiteral', t.from, `${name} tells.${key}.from`);
    tells[key] = told as MoveStageStates['tells'][string];
  }
  const out = {
    recordsLiteral: rule.records === null ? '' : literal(rule.records),
    fromListLiteral: inList(from),
    doneListLiteral: inList(done),
    refusedListLiteral: inList(refused),
    needsListLiteral: inList(rule.needs?.states ?? []),
    tells,
  };
  one(out, 'fromLiteral', from, `${name} from`);
  one(out, 'startLiteral', start, `${name} from (not yet run)`);
  one(out, 'refusedLiteral', refused, `${name} refused states`);
  one(out, 'needsLiteral', rule.needs?.states ?? [], `${name} needs`);
  return out as MoveStageStates;
}

/**
 * Every stage's states, keyed by its template in camel case (e.g. `catchupTarget`, `revertFinalSource`), for
 * partials rendered by another stage.
 */
export function moveStagesStates(): { readonly [key: string]: MoveStageStates } {
  const all: Record<string, MoveStageStates> = {};
  for (const rule of MOVE_STAGES)
    all[moveTemplateKey(rule).replace(/[-.]([a-z])/g, (_, c: string) => c.toUpperCase())] = moveStageStates(rule);
  return all;
}

/** The target states in which an apply round may run. */
export const roundStatesListLiteral = inList(MOVE_ROUND_STATES);
