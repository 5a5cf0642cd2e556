import { sha256 } from '../compile/plan-hash.js';
import type { HazardCode } from '../compile/stages.js';
import type { BloatMethod } from '../introspect/bloat.js';
import { canonicalJson } from '../model/normalise.js';

export const BATCH_FORMAT_VERSION = 1;

/** How the batch's tables were chosen, as given on the command line. */
export interface BatchSelection {
  /** --schema S (repeatable); empty with --table. */
  readonly schemas: readonly string[];
  /** --table A --table B …, as given; empty otherwise. */
  readonly tables: readonly string[];
  /** --bloated with its thresholds; null without it. */
  readonly bloated: { readonly minRatio: number; readonly minSizeBytes: number } | null;
}

/** One table of the batch: its plan folder and what the summary says about it. */
export interface BatchTable {
  readonly schema: string;
  readonly name: string;
  /** The table's plan folder, relative to the batch folder: `<schema>.<table>`. */
  readonly dir: string;
  /** The folder's plan hash: the batch hash covers every file of every folder through it. */
  readonly planHash: string;
  readonly planId: string;
  readonly rows: number;
  /** Table, TOAST and indexes now. */
  readonly totalBytes: number;
  readonly reclaimableBytes: number;
  /** Where the reclaimable figure comes from (`shadowpack bloat`). */
  readonly bloatMethod: BloatMethod;
  /** Free disk the rebuild needs at its peak: a packed copy of table, TOAST and indexes (plus the change log). */
  readonly diskNeededBytes: number;
  /** WAL the copy writes, about its packed size (application writes during the run add to it). */
  readonly walBytes: number;
  readonly hazards: readonly HazardCode[];
  /** The locks its forward stages take that block the application, as "stage: MODE on relation". */
  readonly locks: readonly string[];
  /** How long the application may queue behind one locking step at most (its --lock-budget-ms). */
  readonly lockBudgetMs: number;
  readonly estimatedSeconds: number;
  /** Tables of this batch it shares a foreign key with: never rebuilt at the same time. */
  readonly neighbours: readonly string[];
}

export interface BatchSkipped {
  readonly schema: string;
  readonly name: string;
  /** Why it has no plan: the line `plan` or `bloat` gives for it. */
  readonly reason: string;
}

export interface BatchTotals {
  readonly tables: number;
  readonly rows: number;
  readonly totalBytes: number;
  readonly reclaimableBytes: number;
  /** One table at a time: the largest table's need. */
  readonly peakDiskBytes: number;
  readonly walBytes: number;
  readonly estimatedSeconds: number;
}

/** DIR/plan.json of a batch. */
export interface BatchManifest {
  readonly formatVersion: number;
  readonly kind: 'batch';
  readonly tool: { readonly name: 'shadowpack'; readonly version: string };
  readonly selection: BatchSelection;
  /** The order the tables run in (this array's order), in words. */
  readonly order: string;
  readonly tables: readonly BatchTable[];
  readonly skipped: readonly BatchSkipped[];
  readonly totals: BatchTotals;
  readonly environment: {
    readonly database: string;
    readonly databaseOid: number;
    readonly systemIdentifier: string | null;
    readonly serverVersion: string;
  };
  readonly readmeSha256: string;
  /** sha256 over everything above, canonical JSON: every folder through its plan hash, and the README. */
  readonly batchHash: string;
}

export function batchHashOf(m: Omit<BatchManifest, 'batchHash'>): string {
  return 'b1:' + sha256(canonicalJson(m));
}

/**
 * A table's folder name, `<schema>.<table>`; `/` and `%` (the only characters a path cannot hold
 * or that the encoding needs) are percent-encoded, so every catalog name gets one folder.
 */
export function tableDirName(schema: string, table: string): string {
  const enc = (s: string) => s.replaceAll('%', '%25').replaceAll('/', '%2F');
  return `${enc(schema)}.${enc(table)}`;
}

/** The peak free disk with `n` tables at once: the `n` largest needs together (neighbours aside). */
export function peakDiskBytes(tables: readonly BatchTable[], n: number): number {
  return [...tables]
    .map((t) => t.diskNeededBytes)
    .sort((a, b) => b - a)
    .slice(0, Math.max(1, n))
    .reduce((s, b) => s + b, 0);
}
