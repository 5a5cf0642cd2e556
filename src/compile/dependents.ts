import { ident, literal, qualified } from '../model/quote.js';
import type { PublicationMembershipModel, TableModel } from '../model/types.js';
import { accessExclusive, shareUpdateExclusive, type Step } from './step.js';
import type { StepInput } from './step-input.js';

/**
 * Re-pointing what depends on the table from outside it. After the renames of
 * the swap (or of revert) these objects still reference the table that
 * stepped aside, by OID; re-running their definitions makes them resolve the
 * name again, to the table that now has it, inside the same transaction, so
 * no session ever reads the wrong table through them.
 */

function viewOptions(options: readonly string[]): string {
  if (options.length === 0) return '';
  const list = options.map((o) => {
    const eq = o.indexOf('=');
    return `${o.slice(0, eq)} = ${literal(o.slice(eq + 1))}`;
  });
  return ` WITH (${list.join(', ')})`;
}

function publicationAdd(p: PublicationMembershipModel, table: string): string {
  const columns = p.columns === null ? '' : ` (${p.columns.map(ident).join(', ')})`;
  const filter = p.rowFilter === null ? '' : ` WHERE (${p.rowFilter})`;
  return `ALTER PUBLICATION ${ident(p.name)} ADD TABLE ONLY ${table}${columns}${filter};`;
}

/**
 * Statements for the swap (`away` = the old table) or revert (`away` = the
 * rebuilt copy), run after the renames: `input.src` names the table that
 * now holds the name.
 */
export function dependentSteps(input: StepInput, away: string): Step[] {
  const { model, src } = input;
  const steps: Step[] = [];
  for (const v of model.dependents.views) {
    const view = qualified(v.schema, v.name);
    steps.push({
      kind: 'replace-view',
      locks: [accessExclusive(view)],
      comment: `view ${v.schema}.${v.name} reads ${model.schema}.${model.name} again (CREATE OR REPLACE keeps its owner, grants, comments; options restated)`,
      sql: `CREATE OR REPLACE VIEW ${view}${viewOptions(v.options)} AS\n${v.definition};`,
    });
  }
  for (const f of model.dependents.functions) {
    steps.push({
      kind: 'replace-function',
      locks: [],
      comment: `${f.kind} ${f.schema}.${f.name}(${f.arguments}) has a BEGIN ATOMIC body bound to the table: re-created to read it again`,
      sql: `${f.definition};`,
    });
  }
  for (const p of model.dependents.publications) {
    steps.push({
      kind: 'move-publication',
      locks: [shareUpdateExclusive(away), shareUpdateExclusive(src)],
      comment: `publication ${p.name} publishes the table under its name from this commit on`,
      sql: `ALTER PUBLICATION ${ident(p.name)} DROP TABLE ONLY ${away};\n${publicationAdd(p, src)}`,
    });
  }
  return steps;
}

/** Names that end up inside a dollar-quoted DO body (the lock step names the views and their owners). */
export function dependentNames(model: TableModel): string[] {
  return [
    ...model.dependents.views.flatMap((v) => [v.schema, v.name, v.owner]),
    ...model.dependents.functions.flatMap((f) => [f.schema, f.name, f.arguments]),
  ];
}

/** The reviewer's list of what the swap re-creates or moves. */
export function dependentsReview(model: TableModel): string[] {
  const d = model.dependents;
  if (d.views.length + d.functions.length + d.publications.length === 0) return [];
  const out = ['## Objects re-pointed at the swap and at revert', ''];
  out.push(
    'They reference the table by OID, so the swap transaction re-creates or moves them right after the renames; they read the rebuilt table from the moment it commits. Views that only read these views keep working unchanged.',
    '',
  );
  for (const v of d.views)
    out.push(
      `- view \`${v.schema}.${v.name}\` (owner ${v.owner}${v.options.length ? `; ${v.options.join(', ')}` : ''}): CREATE OR REPLACE VIEW, locked before the table`,
    );
  for (const f of d.functions)
    out.push(
      `- ${f.kind} \`${f.schema}.${f.name}(${f.arguments})\` (owner ${f.owner}, BEGIN ATOMIC body): CREATE OR REPLACE`,
    );
  for (const p of d.publications) {
    const extra = [p.columns ? `columns ${p.columns.join(', ')}` : '', p.rowFilter ? `WHERE ${p.rowFilter}` : '']
      .filter((x) => x !== '')
      .join('; ');
    out.push(
      `- publication \`${p.name}\`${extra ? ` (${extra})` : ''}: the old table is dropped from it and the rebuilt one added; the copying itself is never published`,
    );
  }
  out.push('');
  return out;
}
