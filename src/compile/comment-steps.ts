import { ident, literal, qualified } from '../model/quote.js';
import type { TableModel } from '../model/types.js';
import { shareUpdateExclusive, type Step } from './step.js';

/**
 * Comments that a rename swap would lose: the rebuilt indexes and constraints
 * are new objects, and foreign keys are dropped and added again (at the swap
 * and again by revert), so their comments are restated.
 */

/** A re-created constraint's comment, appended to the statement that re-creates it. */
export function constraintComment(
  con: { readonly name: string; readonly comment: string | null },
  table: string,
): string {
  return con.comment === null
    ? ''
    : `\nCOMMENT ON CONSTRAINT ${ident(con.name)} ON ${table} IS ${literal(con.comment)};`;
}

/** Comments of the rebuilt indexes and of the constraints built on the copy (foreign keys carry theirs). */
export function indexAndConstraintComments(model: TableModel, src: string): Step[] {
  const steps: Step[] = [];
  for (const i of model.indexes) {
    const index = qualified(model.schema, i.name);
    if (i.comment !== null)
      steps.push({
        kind: 'comment',
        comment: `comment on index ${i.name}`,
        sql: `COMMENT ON INDEX ${index} IS ${literal(i.comment)};`,
        locks: [shareUpdateExclusive(index)],
      });
  }
  for (const st of model.extendedStatistics) {
    if (st.comment !== null)
      steps.push({
        kind: 'comment-object',
        comment: `comment on extended statistics ${st.name}`,
        sql: `COMMENT ON STATISTICS ${qualified(st.schema, st.name)} IS ${literal(st.comment)};`,
        locks: [],
      });
  }
  for (const c of model.constraints) {
    if (c.kind !== 'foreign-key' && c.comment !== null)
      steps.push({
        kind: 'comment-object',
        comment: `comment on constraint ${c.name}`,
        sql: `COMMENT ON CONSTRAINT ${ident(c.name)} ON ${src} IS ${literal(c.comment)};`,
        locks: [],
      });
  }
  return steps;
}
