import { commentText } from '../model/quote.js';
import { lockList, locksText, type Step } from './step.js';

/**
 * The build stage as work items that several sessions share (03-build.sql in N psql sessions, or
 * `run --jobs N`). An item is one index or constraint with the steps that need it (its storage
 * parameters, a statistics object's owner and target); a session setting (SET default_tablespace)
 * is no item: every session runs it, in order. Each item is claimed with a transaction-level
 * advisory lock of its own, so a session that dies gives it back with its transaction. The script
 * goes over the items twice: first each session builds the items no other session holds (it
 * skips the rest), then it waits for each item in turn and builds it if it is still missing (its
 * session died), so a session ends only once every item is built. Every step is safe to repeat.
 */
export interface BuildItem {
  /** Its steps' comments, made safe for a comment line. */
  readonly comment: string;
  /** The relation locks its steps take, as the script says them (comment-safe; '' when none). */
  readonly locks: string;
  /** A session setting: the statement, run by every session in both passes. */
  readonly setting: string | null;
  /** An item: its advisory lock's first key, and its statements as PL/pgSQL (a DO step as a nested block). */
  readonly key: number | null;
  readonly statements: string;
}

export function buildItems(steps: readonly Step[], firstKey: number): BuildItem[] {
  const items: { steps: Step[]; setting: string | null; key: number | null }[] = [];
  let next = firstKey;
  for (const s of steps) {
    const last = items.at(-1);
    if (s.joinsPrevious === true && last !== undefined && last.key !== null) last.steps.push(s);
    else if (s.kind === 'session-setting') items.push({ steps: [s], setting: s.sql, key: null });
    else items.push({ steps: [s], setting: null, key: next++ });
  }
  return items.map((i) => ({
    comment: commentText(i.steps.map((s) => s.comment).join('; ')),
    locks: commentText(locksText(lockList(...i.steps.flatMap((s) => s.locks)))),
    setting: i.setting,
    key: i.key,
    statements: i.setting === null ? i.steps.map(statement).join('\n') : '',
  }));
}

/** A step inside the item's block: a DO step's block nested as is, any other statement as it is. */
function statement(s: Step): string {
  return s.body === undefined ? s.sql : `${s.body};`;
}
