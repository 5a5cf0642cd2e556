import { ident, literal, qualified } from '../model/quote.js';
import type { IdentityModel, TableModel } from '../model/types.js';
import { accessExclusive, shareRowExclusive, shareUpdateExclusive, type Step } from './step.js';
import type { StepInput } from './step-input.js';

/**
 * Identity columns. The copy is filled without them (the tool writes the old
 * values); at the swap the old sequence steps aside under a generated name and
 * the rebuilt table gets an identity with the same sequence name and
 * parameters, continuing from the old sequence's state. Revert does it backwards.
 */

function generated(model: TableModel, q: IdentityModel): string {
  const col = model.columns.find((c) => c.name === q.column);
  if (!col || col.identity === '') throw new Error(`identity column ${q.column} missing from the model`);
  return col.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT';
}

function columnType(model: TableModel, column: string): string {
  return model.columns.find((c) => c.name === column)?.type ?? '';
}

/** Continue `target` from where `from` stands: last value and whether it was used. */
function continueFrom(target: string, from: string): string {
  return `SELECT pg_catalog.setval(${literal(target)}::regclass, last_value, is_called) AS continues_at FROM ${from};`;
}

export function identitySwapSteps(input: StepInput): Step[] {
  const { model, names, src } = input;
  const steps: Step[] = [];
  model.identities.forEach((q, i) => {
    const seq = qualified(q.schema, q.name);
    const aside = qualified(q.schema, names.oldSequence(i));
    steps.push({
      kind: 'rename-sequence',
      comment: `identity sequence ${q.name} of the old table steps aside`,
      sql: `ALTER SEQUENCE ${seq} RENAME TO ${ident(names.oldSequence(i))};`,
      locks: [accessExclusive(seq)],
    });
    const options = [
      `START WITH ${q.start}`,
      `INCREMENT BY ${q.increment}`,
      `MINVALUE ${q.min}`,
      `MAXVALUE ${q.max}`,
      `CACHE ${q.cache}`,
      q.cycle ? 'CYCLE' : 'NO CYCLE',
    ].join(' ');
    // ADD GENERATED gives the sequence the column's type and refuses an AS option; a sequence of
    // another type gets its parameters from ALTER SEQUENCE, where bounds and type are checked together.
    const sameType = q.type === columnType(model, q.column);
    steps.push({
      kind: 'add-identity',
      comment: `column ${q.column} is an identity column again (GENERATED ${generated(model, q)}), same sequence name and parameters`,
      sql: `ALTER TABLE ${src} ALTER COLUMN ${ident(q.column)} ADD GENERATED ${generated(model, q)} AS IDENTITY (SEQUENCE NAME ${seq}${sameType ? ` ${options}` : ''});`,
      // The sequence it names is a new one (the old one stepped aside).
      locks: [accessExclusive(src)],
    });
    if (!sameType) {
      steps.push({
        kind: 'alter-sequence',
        comment: `identity sequence ${q.name} keeps its own type (${q.type})`,
        sql: `ALTER SEQUENCE ${seq} AS ${q.type} ${options};`,
        locks: [shareRowExclusive(seq)],
      });
    }
    if (q.comment !== null)
      steps.push({
        kind: 'comment',
        comment: `comment on sequence ${q.name}`,
        sql: `COMMENT ON SEQUENCE ${seq} IS ${literal(q.comment)};`,
        locks: [shareUpdateExclusive(seq)],
      });
    steps.push({
      kind: 'sequence-value',
      comment: `identity ${q.name} continues where the old one stopped`,
      sql: continueFrom(seq, aside),
      locks: [],
    });
  });
  return steps;
}

/** Under the revert lock, after the tables swapped names back (`copy` is the rebuilt table again). */
export function identityRevertSteps(input: StepInput): Step[] {
  const { model, names, copy } = input;
  const steps: Step[] = [];
  model.identities.forEach((q, i) => {
    const seq = qualified(q.schema, q.name);
    const aside = qualified(q.schema, names.oldSequence(i));
    steps.push({
      kind: 'sequence-value',
      comment: `identity ${q.name} of the original table continues where the rebuilt one stopped`,
      sql: continueFrom(aside, seq),
      locks: [],
    });
    steps.push({
      kind: 'drop-identity',
      comment: `the rebuilt table's identity on ${q.column} goes (its sequence with it)`,
      sql: `ALTER TABLE ${copy} ALTER COLUMN ${ident(q.column)} DROP IDENTITY;`,
      locks: [accessExclusive(copy), accessExclusive(seq)],
    });
    steps.push({
      kind: 'rename-sequence',
      comment: `identity sequence ${q.name} gets its name back`,
      sql: `ALTER SEQUENCE ${aside} RENAME TO ${ident(q.name)};`,
      locks: [accessExclusive(aside)],
    });
  });
  return steps;
}

/** INSERTs that write an identity ALWAYS column with the source's values must say so. */
export function insertOverriding(model: TableModel): string {
  return model.columns.some((c) => c.identity === 'a') ? 'OVERRIDING SYSTEM VALUE ' : '';
}
