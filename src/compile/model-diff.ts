import type { TableModel } from '../model/types.js';

function byName<T extends { name: string }>(list: readonly T[]): Map<string, T> {
  return new Map(list.map((x) => [x.name, x]));
}

function compareNamed<T extends { name: string }>(
  kind: string,
  a: readonly T[],
  b: readonly T[],
  describe: (x: T) => string,
  out: string[],
): void {
  const ma = byName(a);
  const mb = byName(b);
  for (const [name, x] of ma) {
    const y = mb.get(name);
    if (!y) out.push(`${kind} ${name} only in A`);
    else if (describe(x) !== describe(y)) out.push(`${kind} ${name}: ${describe(x)} in A, ${describe(y)} in B`);
  }
  for (const name of mb.keys()) if (!ma.has(name)) out.push(`${kind} ${name} only in B`);
}

/**
 * The differences between two table models, in words, most telling first:
 * what a reviewer comparing staging and production needs to read before any SQL.
 */
export function describeModelDiff(a: TableModel, b: TableModel): string[] {
  const out: string[] = [];
  if (a.schema !== b.schema || a.name !== b.name)
    out.push(`table ${a.schema}.${a.name} in A, ${b.schema}.${b.name} in B`);
  compareNamed('index', a.indexes, b.indexes, (i) => `${i.unique ? 'UNIQUE ' : ''}${i.method} ${i.body}`, out);
  compareNamed(
    'constraint',
    a.constraints,
    b.constraints,
    (c) => `${c.definition}${c.validated ? '' : ' (not validated)'}`,
    out,
  );
  compareNamed(
    'column',
    a.columns,
    b.columns,
    (c) => {
      const parts = [c.type];
      if (c.collation) parts.push(`COLLATE ${c.collation}`);
      if (c.notNull) parts.push('NOT NULL');
      if (c.default) parts.push(`DEFAULT ${c.default}`);
      if (c.generated) parts.push(`GENERATED (${c.generated})`);
      return parts.join(' ');
    },
    out,
  );
  const orderA = a.columns.map((c) => c.name).join(',');
  const orderB = b.columns.map((c) => c.name).join(',');
  if (orderA !== orderB && a.columns.length === b.columns.length) out.push('columns are in a different order');
  if (a.key.columns.join(',') !== b.key.columns.join(','))
    out.push(`row key (${a.key.columns.join(', ')}) in A, (${b.key.columns.join(', ')}) in B`);
  const fkIn = (m: TableModel) =>
    m.referencedBy.map((f) => ({ ...f, name: `${f.tableSchema}.${f.tableName}.${f.name}` }));
  if (a.referencedBy.length !== b.referencedBy.length) {
    const d = b.referencedBy.length - a.referencedBy.length;
    out.push(
      `B has ${Math.abs(d)} ${d > 0 ? 'more' : 'fewer'} foreign key${Math.abs(d) === 1 ? '' : 's'} into the table`,
    );
  }
  compareNamed(
    'foreign key into the table',
    fkIn(a),
    fkIn(b),
    (f) => `${f.definition}${f.validated ? '' : ' (not validated)'}`,
    out,
  );
  const seq = (m: TableModel) => m.ownedSequences.map((s) => ({ name: `${s.schema}.${s.name}`, column: s.column }));
  compareNamed('sequence', seq(a), seq(b), (s) => `owned by ${s.column}`, out);
  const grants = (m: TableModel) =>
    m.grants.map((g) => ({ name: `${g.privilege} to ${g.grantee}`, grantable: g.grantable }));
  compareNamed('grant', grants(a), grants(b), (g) => (g.grantable ? 'with grant option' : 'plain'), out);
  if (a.owner !== b.owner) out.push(`owner ${a.owner} in A, ${b.owner} in B`);
  if (a.comment !== b.comment) out.push('the table comment differs');
  if (a.reloptions.join(',') !== b.reloptions.join(','))
    out.push(
      `storage parameters (${a.reloptions.join(', ') || 'none'}) in A, (${b.reloptions.join(', ') || 'none'}) in B`,
    );
  const views = (m: TableModel) => m.dependents.views.map((v) => ({ ...v, name: `${v.schema}.${v.name}` }));
  compareNamed(
    'dependent view',
    views(a),
    views(b),
    (v) => `${v.definition} (owner ${v.owner}; options ${v.options.join(', ') || 'none'})`,
    out,
  );
  const funcs = (m: TableModel) =>
    m.dependents.functions.map((f) => ({ ...f, name: `${f.schema}.${f.name}(${f.arguments})` }));
  compareNamed('dependent function', funcs(a), funcs(b), (f) => f.definition, out);
  compareNamed(
    'publication',
    a.dependents.publications,
    b.dependents.publications,
    (p) => `columns ${p.columns?.join(', ') ?? 'all'}, filter ${p.rowFilter ?? 'none'}`,
    out,
  );
  if (out.length === 0 && a.fingerprint !== b.fingerprint)
    out.push(
      'the catalog fingerprints differ (a detail the model does not show, e.g. a comment or privilege on a column)',
    );
  return out;
}
