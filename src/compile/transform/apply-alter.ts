import { UserError } from '../../model/errors.js';
import { ident, qualified } from '../../model/quote.js';
import { runNames } from '../../model/names.js';
import type { ColumnModel, TableModel } from '../../model/types.js';
import { accessExclusive, type Step } from '../step.js';
import { actionStage, describeAction, type AlterAction } from './alter-actions.js';
import type { ColumnMapping, UnmappedColumn } from './derive.js';

/** A column of the table being shaped: its target form and where its values come from. */
interface Working {
  readonly col: ColumnModel;
  /** The source column it continues, or null for a new one. */
  readonly from: string | null;
  /** Forward expression over source columns, or null (default or generated fills it). */
  readonly expr: string | null;
  readonly typeChanged: boolean;
}

export interface AlterResult {
  readonly columns: readonly ColumnModel[];
  readonly forward: readonly ColumnMapping[];
  readonly reverse: readonly ColumnMapping[] | null;
  readonly revertUnavailable: readonly string[];
  /** Columns of the copy no source column fills (added ones): their defaults fill them. */
  readonly forwardUnmapped: readonly UnmappedColumn[];
  /** Columns of the old table the rebuilt one does not have (dropped ones), for revert. */
  readonly reverseUnmapped: readonly UnmappedColumn[];
  readonly differences: readonly string[];
  readonly setupSteps: readonly Step[];
  /** Constraints with an index of their own, added in the build stage; always named, so a resumed build can skip them. */
  readonly buildConstraints: readonly NamedStep[];
}

export interface NamedStep extends Step {
  readonly name: string;
}

function refuse(a: AlterAction, why: string): never {
  throw new UserError('BAD_OPTION', `--alter (${describeAction(a)}): ${why}`);
}

/** Whether `name` occurs as an identifier in a catalog text (quoted, or bare when it needs no quotes). */
/** Whether an expression (deparsed by PostgreSQL) may name the column: conservative, it may say yes for a function of that name. */
export function mentions(text: string, name: string): boolean {
  if (text.includes(ident(name))) return true;
  if (!/^[a-z_][a-z0-9_$]*$/.test(name)) return false;
  return new RegExp(`(^|[^a-z0-9_$"])${name.replaceAll('$', '\\$')}($|[^a-z0-9_$"])`).test(text);
}

/**
 * Views and BEGIN ATOMIC functions the swap re-creates over the rebuilt table, and publication column
 * lists, that name the column: CREATE OR REPLACE VIEW cannot change a view column's type, and none of
 * them survives a column that is gone or renamed.
 */
export function dependentUsersOf(model: TableModel, column: string): string[] {
  const d = model.dependents;
  return [
    ...d.views.filter((v) => mentions(v.definition, column)).map((v) => `view ${v.schema}.${v.name}`),
    ...d.functions.filter((f) => mentions(f.definition, column)).map((f) => `${f.kind} ${f.schema}.${f.name}`),
    ...d.publications
      .filter((p) => p.columns?.includes(column) || (p.rowFilter !== null && mentions(p.rowFilter, column)))
      .map((p) => `publication ${p.name}`),
  ];
}

/** Everything on the table that names columns and that the swap carries by name. */
function usersOf(model: TableModel, column: string): string[] {
  const out: string[] = [];
  for (const i of model.indexes) if (mentions(i.body, column)) out.push(`index ${i.name}`);
  for (const s of model.extendedStatistics)
    if (mentions(s.columns, column)) out.push(`extended statistics ${s.schema}.${s.name}`);
  for (const c of model.constraints) if (mentions(c.definition, column)) out.push(`constraint ${c.name}`);
  for (const f of model.referencedBy)
    if (mentions(f.definition, column)) out.push(`foreign key ${f.name} on ${f.tableSchema}.${f.tableName}`);
  for (const t of model.triggers) if (mentions(t.definition, column)) out.push(`trigger ${t.name}`);
  for (const p of model.policies)
    if (mentions(`${p.using ?? ''} ${p.withCheck ?? ''}`, column)) out.push(`policy ${p.name}`);
  for (const c of model.columns)
    if (c.generated !== null && mentions(c.generated, column)) out.push(`generated column ${c.name}`);
  out.push(...dependentUsersOf(model, column));
  if (model.columnGrants.some((g) => g.column === column)) out.push('column privileges');
  if (model.columnComments.some((c) => c.column === column)) out.push('a column comment');
  if (model.ownedSequences.some((s) => s.column === column) || model.identities.some((s) => s.column === column))
    out.push('its sequence');
  return out;
}

/**
 * Applies the actions, in order, to the columns the copy is created with,
 * giving the target columns, the mappings both ways and the statements that
 * shape the copy. Whatever cannot be mapped is refused with the reason.
 */
export function applyAlter(
  model: TableModel,
  start: readonly ColumnModel[],
  actions: readonly AlterAction[],
): AlterResult {
  const copy = qualified(model.schema, runNames(model.schema, model.name).copyTable);
  let cols: Working[] = start.map((c) => ({
    col: c,
    from: c.name,
    expr: c.generated === null ? ident(c.name) : null,
    typeChanged: false,
  }));
  const setupSteps: Step[] = [];
  const buildConstraints: NamedStep[] = [];
  const differences: string[] = [];
  let renamed = false;
  const find = (a: AlterAction, name: string): Working =>
    cols.find((w) => w.col.name === name) ?? refuse(a, `the table has no column ${JSON.stringify(name)} at this point`);
  const notKey = (a: AlterAction, w: Working): void => {
    if (w.from !== null && model.key.columns.includes(w.from))
      refuse(
        a,
        `${w.col.name} is part of the row key (${model.key.indexName}), which the change log joins on; use --key-to-bigint to widen it`,
      );
  };
  const replace = (w: Working, next: Working): void => {
    cols = cols.map((x) => (x === w ? next : x));
  };
  for (const a of actions) {
    // The summary says what a type changes from, too (newcomer review finding 22).
    let oldType: string | undefined;
    switch (a.kind) {
      case 'alter-type': {
        const w = find(a, a.column);
        oldType = w.col.type;
        notKey(a, w);
        if (w.col.generated !== null || w.col.identity !== '')
          refuse(a, `${a.column} is a generated or identity column`);
        if (a.using !== null && renamed)
          refuse(a, "put RENAME COLUMN after the type changes: USING is evaluated over the table's own column names");
        if (w.typeChanged) refuse(a, `${a.column} changes type twice`);
        const gen = usersOf(model, w.from ?? a.column).filter((u) =>
          /^(generated column|view|function|procedure|publication) /.test(u),
        );
        if (gen.length > 0) refuse(a, `${gen.join(', ')} uses it`);
        replace(w, { ...w, col: { ...w.col, type: a.type }, expr: a.using ?? w.expr, typeChanged: true });
        break;
      }
      case 'add-column':
        if (cols.some((w) => w.col.name === a.column)) refuse(a, `the table already has a column ${a.column}`);
        if (a.notNull && a.default === null && a.generated === null)
          refuse(a, 'a new NOT NULL column needs a DEFAULT (or a generated expression)');
        cols.push({
          col: {
            name: a.column,
            type: a.type,
            collation: null,
            notNull: a.notNull,
            notNullName: null,
            default: a.default,
            identity: '',
            generated: a.generated,
            storage: null,
            statistics: null,
            compression: null,
          },
          from: null,
          expr: null,
          typeChanged: false,
        });
        break;
      case 'drop-column':
      case 'rename-column': {
        const w = find(a, a.column);
        notKey(a, w);
        const users = w.from === null ? [] : usersOf(model, w.from);
        if (users.length > 0)
          refuse(a, `${users.join(', ')} use${users.length === 1 ? 's' : ''} it, and the swap carries those by name`);
        if (a.kind === 'drop-column') cols = cols.filter((x) => x !== w);
        else {
          if (cols.some((x) => x.col.name === a.to)) refuse(a, `the table already has a column ${a.to}`);
          replace(w, { ...w, col: { ...w.col, name: a.to } });
          renamed = true;
        }
        break;
      }
      case 'set-not-null':
      case 'drop-not-null': {
        const w = find(a, a.column);
        if (a.kind === 'drop-not-null') notKey(a, w);
        replace(w, { ...w, col: { ...w.col, notNull: a.kind === 'set-not-null', notNullName: null } });
        break;
      }
      case 'set-default': {
        const w = find(a, a.column);
        replace(w, { ...w, col: { ...w.col, default: a.default } });
        break;
      }
      case 'add-check':
      case 'add-index-constraint':
        if (a.kind === 'add-index-constraint' && a.name === null)
          refuse(a, 'name the constraint (ADD CONSTRAINT name …): the plan must know its name to resume and to review');
        if (
          a.name !== null &&
          (model.indexes.some((i) => i.name === a.name) || model.constraints.some((c) => c.name === a.name))
        )
          refuse(a, `the table already has an index or constraint named ${a.name}`);
        break;
    }
    differences.push(describeAction(a, oldType));
    // Every action is an ALTER TABLE of the copy; each of these subcommands takes ACCESS EXCLUSIVE.
    const step: Step = {
      kind: a.kind === 'add-check' || a.kind === 'add-index-constraint' ? 'add-constraint' : 'alter-copy',
      comment: `--alter: ${describeAction(a)}`,
      sql: a.sql,
      locks: [accessExclusive(copy)],
    };
    if (actionStage(a) === 'setup') setupSteps.push(step);
    else if (a.kind === 'add-index-constraint' && a.name !== null) buildConstraints.push({ ...step, name: a.name });
  }
  const forward = cols
    .filter((w) => w.expr !== null && w.col.generated === null)
    .map((w) => ({ column: w.col.name, expr: w.expr! }));
  const forwardUnmapped = cols
    .filter((w) => w.expr === null && w.col.generated === null)
    .map((w) => ({ column: w.col.name, default: w.col.default }));
  const reverse: ColumnMapping[] = [];
  const reverseUnmapped: UnmappedColumn[] = [];
  const unavailable: string[] = [];
  for (const c of model.columns) {
    if (c.generated !== null) continue;
    const w = cols.find((x) => x.from === c.name);
    if (w)
      reverse.push({
        column: c.name,
        expr: w.typeChanged ? `CAST(${ident(w.col.name)} AS ${c.type})` : ident(w.col.name),
      });
    else {
      // Revert keeps the old table's own value for a row that was there before; only a row inserted
      // after the swap needs one, and without a default a NOT NULL column has none to give it.
      reverseUnmapped.push({ column: c.name, default: c.default });
      if (c.notNull && c.default === null)
        unavailable.push(
          `column ${c.name} is dropped, NOT NULL and has no default: a row inserted after the swap would have no value for it in the old table`,
        );
    }
  }
  return {
    columns: cols.map((w) => w.col),
    forward,
    reverse: unavailable.length > 0 ? null : reverse,
    revertUnavailable: unavailable,
    forwardUnmapped,
    reverseUnmapped,
    differences,
    setupSteps,
    buildConstraints,
  };
}
