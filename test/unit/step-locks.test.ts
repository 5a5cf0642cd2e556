import { describe, expect, it } from 'vitest';
import { commonContext } from '../../src/compile/context.js';
import { deriveTarget } from '../../src/compile/transform/derive.js';
import { NO_TRANSFORM } from '../../src/compile/transform/spec.js';
import type { StageSteps } from '../../src/compile/stage-steps.js';
import type { LockMode, Step, StepKind } from '../../src/compile/step.js';
import { qualified } from '../../src/model/quote.js';
import { cases, load } from '../helpers/compile-fixtures.js';

const AEL: LockMode = 'ACCESS EXCLUSIVE';
const SRE: LockMode = 'SHARE ROW EXCLUSIVE';
const SUE: LockMode = 'SHARE UPDATE EXCLUSIVE';

/**
 * For each kind of step: the statement it must be (a check of its label, written here and never
 * in src/), and the lock modes, stronger than a row write, that PostgreSQL takes on existing
 * relations for it (ALTER TABLE, CREATE INDEX, CREATE TRIGGER … reference pages, and pg_locks of
 * each statement in a transaction on PostgreSQL 17). Kept apart from src/compile/step.ts on
 * purpose: a builder that forgets a lock, or labels a statement with the wrong kind, fails here.
 */
const IMPLIED: { readonly [K in StepKind]: { readonly shape: RegExp; readonly modes: readonly LockMode[] } } = {
  'session-setting': { shape: /^SET /, modes: [] },
  check: { shape: /^DO /, modes: [] },
  'add-constraint': { shape: /ALTER TABLE .*ADD CONSTRAINT|ADD CONSTRAINT/s, modes: [AEL] },
  'alter-copy': { shape: /ALTER TABLE /, modes: [AEL] },
  'create-index': { shape: /^CREATE (UNIQUE )?INDEX /, modes: ['SHARE'] },
  'create-partition': { shape: /^CREATE TABLE .* PARTITION OF /, modes: [AEL] },
  'create-statistics': { shape: /^CREATE STATISTICS /, modes: [SUE] },
  'alter-statistics': { shape: /^ALTER STATISTICS /, modes: [] },
  'column-storage': { shape: /^ALTER TABLE .* ALTER COLUMN .* SET (STORAGE|COMPRESSION) /, modes: [AEL] },
  'column-statistics': { shape: /^ALTER TABLE .* ALTER COLUMN .* SET (STATISTICS \d|\()/, modes: [SUE] },
  'storage-parameters': { shape: /^ALTER (TABLE|INDEX) .* SET \(/, modes: [AEL] },
  'autovacuum-reset': { shape: /^ALTER TABLE .* RESET \(autovacuum_enabled, toast\.autovacuum_enabled\);$/, modes: [SUE] },
  'row-security': { shape: /^(ALTER TABLE .* (ENABLE|FORCE) ROW LEVEL SECURITY;|CREATE POLICY )/, modes: [AEL] },
  'create-trigger': { shape: /^CREATE (OR REPLACE )?(CONSTRAINT )?TRIGGER /, modes: [SRE] },
  'trigger-state': { shape: /^ALTER TABLE .* (ENABLE|DISABLE)( ALWAYS| REPLICA)? TRIGGER /, modes: [SRE] },
  'drop-triggers': { shape: /^DROP TRIGGER /, modes: [AEL] },
  'rename-table': { shape: /^ALTER TABLE .* RENAME TO /, modes: [AEL] },
  'rename-index': { shape: /^ALTER INDEX .* RENAME TO /, modes: [SUE] },
  'rename-sequence': { shape: /^ALTER SEQUENCE .* RENAME TO /, modes: [AEL] },
  'cluster-on': { shape: /^ALTER TABLE .* CLUSTER ON /, modes: [SUE] },
  'replica-identity': { shape: /^ALTER TABLE .* REPLICA IDENTITY /, modes: [AEL] },
  'add-identity': { shape: /^ALTER TABLE .* ADD GENERATED .* AS IDENTITY /, modes: [AEL] },
  'drop-identity': { shape: /^ALTER TABLE .* DROP IDENTITY;$/, modes: [AEL] },
  'alter-sequence': { shape: /^ALTER SEQUENCE .* (OWNED BY|AS) /, modes: [SRE] },
  'sequence-value': { shape: /^SELECT pg_catalog\.setval\(/, modes: [] },
  comment: { shape: /^COMMENT ON (TABLE|COLUMN|INDEX|SEQUENCE) /, modes: [SUE] },
  'comment-object': { shape: /^COMMENT ON (CONSTRAINT|STATISTICS) /, modes: [] },
  'move-foreign-key': { shape: /^ALTER TABLE .* DROP CONSTRAINT .*;\nALTER TABLE .* ADD CONSTRAINT .* FOREIGN KEY .* NOT VALID;/, modes: [AEL, SRE] },
  'validate-foreign-key': { shape: /ALTER TABLE .* VALIDATE CONSTRAINT /, modes: [SUE] },
  privileges: { shape: /^(DO |GRANT )/, modes: [] },
  'replace-view': { shape: /^CREATE OR REPLACE VIEW /, modes: [AEL] },
  'replace-function': { shape: /^CREATE (OR REPLACE )?(FUNCTION|PROCEDURE) /i, modes: [] },
  'move-publication': { shape: /^ALTER PUBLICATION .* DROP TABLE ONLY .*;\nALTER PUBLICATION .* ADD TABLE ONLY /, modes: [SUE] },
};

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
  if (!want.shape.test(step.sql)) out.push(`${where}: its SQL is not a ${step.kind} statement: ${step.sql.slice(0, 120)}`);
  const declared = [...new Set(step.locks.map((l) => l.mode))].sort();
  if (JSON.stringify(declared) !== JSON.stringify([...want.modes].sort())) out.push(`${where}: declares ${JSON.stringify(declared)}, the statement takes ${JSON.stringify(want.modes)}`);
  const relations = step.locks.map((l) => l.relation);
  if (new Set(relations).size !== relations.length) out.push(`${where}: a relation twice in ${JSON.stringify(relations)}`);
  for (const r of relations) if (!names(step.sql, r) && !implied.includes(r)) out.push(`${where}: locks ${r}, which its SQL does not name`);
  return out;
}

const contexts = cases.map((name) => {
  const c = load(name);
  return { name, c, context: commonContext(c.model, deriveTarget(c.model, c.transform ?? NO_TRANSFORM), c.options, '0.1.0') };
});

describe('steps declare the locks they take', () => {
  it('finds steps of most kinds in the golden fixtures', () => {
    const kinds = new Set(contexts.flatMap(({ context }) => Object.values(context.stepData).flat().map((s: Step) => s.kind)));
    expect(kinds.size).toBeGreaterThan(20);
  });

  describe.each(contexts)('$name', ({ c, context }) => {
    const { model } = c;
    const n = context.names;
    // Dropping a foreign key locks the table it referenced: the parent, or the table on either side of the swap.
    const referenced = [
      qualified(model.schema, n.oldTable),
      qualified(model.schema, n.copyTable),
      ...model.constraints.flatMap((k) => (k.references === null ? [] : [qualified(k.references.schema, k.references.name)])),
    ];
    // CLUSTER ON names the index without its schema.
    const indexes = model.indexes.map((i) => qualified(model.schema, i.name));
    const unnamed: { readonly [K in StepKind]?: readonly string[] } = { 'move-foreign-key': referenced, 'cluster-on': indexes };
    const lists = context.stepData as StageSteps;

    it.each(Object.keys(lists) as (keyof StageSteps)[])('%s: each step declares what its kind takes', (list) => {
      const found = lists[list].flatMap((s) => problems(s, unnamed[s.kind]));
      expect(found).toEqual([]);
    });

    it('prints each step\'s locks beside it', () => {
      for (const [list, steps] of [['swapSteps', lists.swapSteps], ['revertSteps', lists.revertSteps], ['validateSteps', lists.validateSteps]] as const) {
        const printed = context[list];
        expect(printed.map((s) => s.locks === '')).toEqual(steps.map((s) => s.locks.length === 0));
        steps.forEach((s, i) => { for (const l of s.locks) expect(printed[i]!.locks).toContain(l.mode); });
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
