import { createHash } from 'node:crypto';
import type { TableModel } from './types.js';

function byKey<T>(key: (x: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
}

/**
 * Sorts every list except column order, ACL order and reloption order (all three meaningful:
 * pg_dump prints reloptions in catalog order, and the swap sets them in model order), so two
 * catalogs with the same schema give equal models whatever order they return.
 */
export function normalise(m: TableModel): TableModel {
  return {
    ...m,
    columnOptions: [...m.columnOptions].sort(byKey((c) => c.column)),
    indexes: [...m.indexes].sort(byKey((i) => i.name)),
    constraints: [...m.constraints].sort(byKey((c) => c.name)),
    referencedBy: [...m.referencedBy].sort(byKey((r) => `${r.tableSchema}\u0000${r.tableName}\u0000${r.name}`)),
    ownedSequences: [...m.ownedSequences].sort(byKey((s) => `${s.schema}\u0000${s.name}`)),
    extendedStatistics: [...m.extendedStatistics].sort(byKey((s) => `${s.schema}\u0000${s.name}`)),
    columnComments: [...m.columnComments].sort(byKey((c) => c.column)),
    triggers: [...m.triggers].sort(byKey((t) => t.name)),
    policies: [...m.policies].sort(byKey((p) => p.name)),
    dependents: {
      // Depth first: a view is re-created after the views it reads.
      // Options keep their catalog order, so the re-created view's reloptions read exactly as before.
      views: [...m.dependents.views].sort(
        byKey((v) => `${String(v.depth).padStart(4, '0')}\u0000${v.schema}\u0000${v.name}`),
      ),
      functions: [...m.dependents.functions].sort(byKey((f) => `${f.schema}\u0000${f.name}\u0000${f.arguments}`)),
      publications: [...m.dependents.publications].sort(byKey((p) => p.name)),
    },
  };
}

/** Canonical JSON: keys sorted at every level, so the hash does not depend on construction order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** Versioned so a change of algorithm never looks like a change of schema. */
export function modelHash(m: TableModel): string {
  return (
    'm1:' +
    createHash('sha256')
      .update(canonicalJson(normalise(m)))
      .digest('hex')
  );
}
