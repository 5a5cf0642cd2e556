import { describe, expect, it } from 'vitest';
import { commonContext } from '../../src/compile/context.js';
import { deriveTarget } from '../../src/compile/transform/derive.js';
import { NO_TRANSFORM } from '../../src/compile/transform/spec.js';
import type { StageSteps } from '../../src/compile/stage-steps.js';
import { LOCK_MODES, type Step, type StepKind } from '../../src/compile/step.js';
import { stageHazards, stageLock } from '../../src/compile/locks.js';
import { qualified } from '../../src/model/quote.js';
import { cases, load } from '../helpers/compile-fixtures.js';
import { AEL, IMPLIED, SRE } from '../helpers/step-kind-locks.js';

/** The statements a step names its relations in: the SQL, and the SQL as PostgreSQL deparsed it (bare names). */
function names(sql: string, relation: string): boolean {
  return sql.includes(relation) || sql.includes(relation.replaceAll('"', ''));
}

/**
 * What is wrong with a step's declared locks: modes other than its kind implies, a mode missing,
 * a relation twice, or a relation its SQL does not name (`implied`: relations a statement locks
 * without naming them, such as the table a dropped foreign key referenced).
 */
function problems(step: Step, implied: readonly string[] = []): string[] {
  const out: string[] = [];
  const want = IMPLIED[step.kind];
  const where = `${step.kind} step "${step.comment}"`;
  if (!want.shape.test(step.sql))
    out.push(`${where}: its SQL is not a ${step.kind} statement: ${step.sql.slice(0, 120)}`);
  const declared = [...new Set(step.locks.map((l) => l.mode))].sort();
  if (JSON.stringify(declared) !== JSON.stringify([...want.modes].sort()))
    out.push(`${where}: declares ${JSON.stringify(declared)}, the statement takes ${JSON.stringify(want.modes)}`);
  const relations = step.locks.map((l) => l.relation);
  if (new Set(relations).size !== relations.length)
    out.push(`${where}: a relation twice in ${JSON.stringify(relations)}`);
  for (const r of relations)
    if (!names(step.sql, r) && !implied.includes(r)) out.push(`${where}: locks ${r}, which its SQL does not name`);
  return out;
}

const contexts = cases.map((name) => {
  const c = load(name);
  return {
    name,
    c,
    context: commonContext(c.model, deriveTarget(c.model, c.transform ?? NO_TRANSFORM), c.options, '0.1.0'),
  };
});

describe('steps declare the locks they take', () => {
  it('finds steps of most kinds in the golden fixtures', () => {
    const kinds = new Set(
      contexts.flatMap(({ context }) =>
        Object.values(context.stepData)
          .flat()
          .map((s: Step) => s.kind),
      ),
    );
    expect(kinds.size).toBeGreaterThan(20);
  });

  describe.each(contexts)('$name', ({ c, context }) => {
    const { model } = c;
    const n = context.names;
    // Dropping a foreign key locks the table it referenced: the parent, or the table on either side of the swap.
    const referenced = [
      qualified(model.schema, n.oldTable),
      qualified(model.schema, n.copyTable),
      ...model.constraints.flatMap((k) =>
        k.references === null ? [] : [qualified(k.references.schema, k.references.name)],
      ),
    ];
    // CLUSTER ON names the index without its schema.
    const indexes = model.indexes.map((i) => qualified(model.schema, i.name));
    const unnamed: { readonly [K in StepKind]?: readonly string[] } = {
      'move-foreign-key': referenced,
      'cluster-on': indexes,
    };
    const lists = context.stepData as StageSteps;

    it.each(Object.keys(lists) as (keyof StageSteps)[])('%s: each step declares what its kind takes', (list) => {
      const found = lists[list].flatMap((s) => problems(s, unnamed[s.kind]));
      expect(found).toEqual([]);
    });

    it.each(['swap', 'revert'] as const)(
      '%s: its lock step takes up front every lock its steps take on a relation the application uses',
      (stage) => {
        const lock = stageLock(stage, context);
        const target = deriveTarget(model, c.transform ?? NO_TRANSFORM);
        // The two tables trade names in the transaction: each lock step locks both before the renames.
        const tables = [context.src, context.copy, context.old];
        expect(lock.shown.filter((l) => tables.includes(l.relation)).map((l) => l.mode)).toEqual([AEL, AEL]);
        // Reached only through the table: its indexes, and its partitions (locked with it).
        const own = new Set([
          ...model.indexes.flatMap((i, k) =>
            [i.name, n.copyIndex(k), n.oldIndex(k)].map((x) => qualified(model.schema, x)),
          ),
          ...(target.partitioning?.partitions ?? []).map((p) => qualified(model.schema, p.name)),
        ]);
        const order: readonly string[] = LOCK_MODES;
        const uncovered = lists[stage === 'swap' ? 'swapSteps' : 'revertSteps'].flatMap((st) =>
          st.locks
            .filter((l) => !tables.includes(l.relation) && !own.has(l.relation))
            .filter(
              (l) =>
                !lock.shown.some((u) => u.relation === l.relation && order.indexOf(u.mode) >= order.indexOf(l.mode)),
            )
            .map((l) => `${st.comment}: ${l.mode} on ${l.relation}`),
        );
        expect(uncovered).toEqual([]);
        // And what the review says the stage risks follows from that lock step.
        expect(stageHazards(stage, context, lock)[0]).toBe('ACCESS_EXCLUSIVE_LOCK');
      },
    );

    it("prints each step's locks beside it", () => {
      for (const [list, steps] of [
        ['swapSteps', lists.swapSteps],
        ['revertSteps', lists.revertSteps],
        ['validateSteps', lists.validateSteps],
      ] as const) {
        const printed = context[list];
        expect(printed.map((s) => s.locks === '')).toEqual(steps.map((s) => s.locks.length === 0));
        steps.forEach((s, i) => {
          for (const l of s.locks) expect(printed[i]!.locks).toContain(l.mode);
        });
      }
    });
  });

  it('fails a step that takes a lock and does not declare it, or says a lock its kind does not take', () => {
    const rename: Step = { kind: 'rename-table', comment: 'x', sql: 'ALTER TABLE "s"."t" RENAME TO "u";', locks: [] };
    expect(problems(rename)).toHaveLength(1);
    expect(problems({ ...rename, locks: [{ relation: '"s"."t"', mode: AEL }] })).toEqual([]);
    expect(problems({ ...rename, locks: [{ relation: '"s"."t"', mode: SRE }] })).toHaveLength(1);
    expect(problems({ ...rename, locks: [{ relation: '"s"."other"', mode: AEL }] })).toHaveLength(1);
    // A statement labelled with a kind that takes nothing.
    expect(problems({ ...rename, kind: 'privileges' })).toHaveLength(1);
  });
});
