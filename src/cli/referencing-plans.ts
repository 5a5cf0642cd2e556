import type { ClientBase } from 'pg';
import { compile } from '../compile/compile.js';
import type { PlanOptions } from '../compile/options.js';
import { NO_TRANSFORM } from '../compile/transform/spec.js';
import { foreignKeyColumns } from '../introspect/foreign-key-columns.js';
import { introspect } from '../introspect/introspect.js';
import type { TableModel } from '../model/types.js';
import { TOOL_VERSION } from '../version.js';
import { writePlanDir } from './plan-dir.js';
import { loadTemplates } from './templates.js';

export interface ReferencingPlan {
  readonly table: string;
  readonly dir: string;
  readonly columns: readonly string[];
}

/**
 * --with-referencing: one plan per table whose foreign keys point at the
 * widened key, converting those key columns to bigint, written to
 * `<out>-<schema>.<table>`. Columns already bigint need nothing.
 */
export async function writeReferencingPlans(client: ClientBase, parent: TableModel, options: PlanOptions, out: string, force: boolean): Promise<ReferencingPlan[]> {
  const byTable = new Map<string, { schema: string; table: string; columns: Set<string> }>();
  for (const fk of parent.referencedBy) {
    const key = JSON.stringify([fk.tableSchema, fk.tableName]);
    const entry = byTable.get(key) ?? { schema: fk.tableSchema, table: fk.tableName, columns: new Set<string>() };
    for (const c of await foreignKeyColumns(client, fk.tableSchema, fk.tableName, fk.name)) {
      if (c.type === 'integer' || c.type === 'smallint') entry.columns.add(c.name);
    }
    byTable.set(key, entry);
  }
  const written: ReferencingPlan[] = [];
  for (const { schema, table, columns } of [...byTable.values()].sort((a, b) => (a.schema + '.' + a.table < b.schema + '.' + b.table ? -1 : 1))) {
    if (columns.size === 0) continue;
    const t = await introspect(client, schema, table);
    const spec = { ...NO_TRANSFORM, bigintColumns: [...columns].sort() };
    const plan = compile({ model: t.model, facts: t.facts, options, templates: loadTemplates(), toolVersion: TOOL_VERSION, transform: spec });
    const dir = `${out}-${schema}.${table}`;
    writePlanDir(dir, plan, force);
    written.push({ table: `${schema}.${table}`, dir, columns: spec.bigintColumns });
  }
  return written;
}
