import { qualified } from '../model/quote.js';
import { diffPlans, type DiffResult, type PlanSide } from '../planning/diff-plans.js';
import type { BatchManifest } from './manifest.js';

/** One batch to compare: its manifest and each table's plan, by qualified table name. */
export interface BatchSide {
  readonly label: string;
  readonly manifest: BatchManifest;
  readonly plans: ReadonlyMap<string, PlanSide>;
}

export interface BatchTableDiff {
  readonly table: string;
  /** Set when the table has a plan in one batch only. */
  readonly only: 'A' | 'B' | null;
  /** Why the other batch has no plan for it, when it skipped it. */
  readonly skippedReason: string | null;
  readonly diff: DiffResult | null;
}

export interface BatchDiff {
  readonly identical: boolean;
  /** Tables whose SQL differs (or that one batch lacks) first, in A's order, then the rest. */
  readonly tables: readonly BatchTableDiff[];
}

/** Compares two batches table by table: the same tables, and for each the same SQL (diffPlans). */
export function diffBatches(a: BatchSide, b: BatchSide): BatchDiff {
  const names = [...new Set([...a.manifest.tables, ...b.manifest.tables].map((t) => qualified(t.schema, t.name)))];
  const reason = (m: BatchManifest, table: string) =>
    m.skipped.find((s) => qualified(s.schema, s.name) === table)?.reason.split('\n')[0] ?? null;
  const all: BatchTableDiff[] = names.map((table) => {
    const pa = a.plans.get(table);
    const pb = b.plans.get(table);
    if (pa === undefined) return { table, only: 'B', skippedReason: reason(a.manifest, table), diff: null };
    if (pb === undefined) return { table, only: 'A', skippedReason: reason(b.manifest, table), diff: null };
    return { table, only: null, skippedReason: null, diff: diffPlans(pa, pb) };
  });
  const differs = (t: BatchTableDiff) => t.only !== null || t.diff?.identical === false;
  return { identical: !all.some(differs), tables: [...all.filter(differs), ...all.filter((t) => !differs(t))] };
}
