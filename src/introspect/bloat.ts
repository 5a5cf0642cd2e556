import type { ClientBase } from 'pg';
import { UserError } from '../model/errors.js';
import { qualified } from '../model/quote.js';
import { TOOL_SCHEMA } from '../model/names.js';
import { BLOAT_TABLES_SQL, PGSTATTUPLE_SQL } from './bloat-queries.js';
import { introspect } from './introspect.js';
import { tableKindRefusal } from './refusals.js';
import type { TableRow } from './rows.js';

/** Where a table's bloat figure comes from. */
export type BloatMethod = 'pgstattuple_approx' | 'statistics' | 'dead-tuples' | 'none';

export interface TableBloat {
  readonly schema: string;
  readonly name: string;
  /** Table, TOAST and indexes (pg_total_relation_size). */
  readonly totalBytes: number;
  /** The heap's main fork, which is what the estimate is about. */
  readonly heapBytes: number;
  readonly indexBytes: number;
  /** Bytes of the heap a rebuild would give back (0 when it is packed or nothing is known). */
  readonly reclaimableBytes: number;
  /** reclaimableBytes / heapBytes, 0 to 1. */
  readonly ratio: number;
  readonly method: BloatMethod;
  /** Free disk a rebuild needs at its peak: a packed copy of table, TOAST and indexes (plus the change log and WAL). */
  readonly diskNeededBytes: number;
  /** null when shadowpack can rebuild it, else the one-line reason. */
  readonly refusal: string | null;
}

export interface BloatRequest {
  /** Only these schemas; empty: every schema but the system ones. */
  readonly schemas: readonly string[];
  /** Tables below this ratio are left out. */
  readonly minRatio: number;
  /** Tables smaller than this (total bytes) are left out. */
  readonly minSizeBytes: number;
}

/** A listed table: what the table query also reads of it (the kind refusals need the same fields), then its sizes. */
interface BloatRow extends Pick<
  TableRow,
  'schema' | 'name' | 'relkind' | 'persistence' | 'is_partition' | 'has_children' | 'is_child' | 'is_typed'
> {
  has_key: boolean;
  main_bytes: string;
  total_bytes: string;
  index_bytes: string;
  relpages: number;
  reltuples: number;
  fillfactor: number;
  data_width: number | null;
  live_tuples: string | null;
  dead_tuples: string | null;
  packed_bytes: number | null;
}

interface Approx {
  table_len: string;
  approx_free_space: string;
  dead_tuple_len: string;
}

/** The cheap refusals, from the listing row alone; the exact one comes from a full read of the table. */
function quickRefusal(r: BloatRow): string | null {
  const kind = tableKindRefusal(r);
  if (kind !== null) return kind;
  if (!r.has_key) return 'it has no primary key and no unique, non-partial, non-deferrable index over NOT NULL columns';
  return null;
}

/**
 * What a DBA reads off pgstattuple: free space plus dead tuples, less the room
 * the fillfactor keeps free in a freshly written table.
 */
function reclaimableFromApprox(a: Approx, fillfactor: number): number {
  const len = Number(a.table_len);
  return Math.max(
    0,
    Number(a.approx_free_space) + Number(a.dead_tuple_len) - Math.round((len * (100 - fillfactor)) / 100),
  );
}

function estimate(r: BloatRow, approx: Approx | null): { reclaimable: number; method: BloatMethod } {
  const heap = Number(r.main_bytes);
  if (heap === 0) return { reclaimable: 0, method: 'none' };
  if (approx !== null)
    return { reclaimable: reclaimableFromApprox(approx, r.fillfactor), method: 'pgstattuple_approx' };
  if (r.packed_bytes !== null && r.relpages > 0)
    return { reclaimable: Math.max(0, heap - r.packed_bytes), method: 'statistics' };
  const live = Number(r.live_tuples ?? 0);
  const dead = Number(r.dead_tuples ?? 0);
  if (live + dead > 0) return { reclaimable: Math.round((heap * dead) / (live + dead)), method: 'dead-tuples' };
  return { reclaimable: 0, method: 'none' };
}

async function approxFunction(client: ClientBase): Promise<string | null> {
  const schema = (await client.query<{ schema: string }>(PGSTATTUPLE_SQL)).rows[0]?.schema;
  return schema === undefined ? null : qualified(schema, 'pgstattuple_approx');
}

/** Why `introspect` would refuse the table, or null: the exact line `plan` would print. */
async function fullRefusal(client: ClientBase, schema: string, name: string): Promise<string | null> {
  try {
    await introspect(client, schema, name);
    return null;
  } catch (e) {
    if (e instanceof UserError) return e.message.replace(/^cannot rebuild [^:]*?: /, '');
    throw e;
  }
}

/**
 * Lists the tables of a database with their estimated bloat, largest
 * reclaimable first. Read-only. One catalog query covers every table; only
 * the tables that pass the thresholds are measured with pgstattuple_approx
 * (when the extension is installed) and read in full for the exact refusal.
 */
export async function readBloat(
  client: ClientBase,
  req: BloatRequest,
): Promise<{ readonly tables: readonly TableBloat[]; readonly pgstattuple: boolean }> {
  await client.query('SET search_path = pg_catalog');
  const rows = (
    await client.query<BloatRow>(BLOAT_TABLES_SQL, [req.schemas.length > 0 ? req.schemas : null, TOOL_SCHEMA])
  ).rows;
  const approxFn = await approxFunction(client);
  const out: TableBloat[] = [];
  for (const r of rows) {
    const total = Number(r.total_bytes);
    if (total < req.minSizeBytes) continue;
    let approx: Approx | null = null;
    if (approxFn !== null && r.relkind === 'r' && Number(r.main_bytes) > 0) {
      approx =
        (
          await client.query<Approx>(
            `SELECT table_len, approx_free_space, dead_tuple_len FROM ${approxFn}($1::regclass)`,
            [qualified(r.schema, r.name)],
          )
        ).rows[0] ?? null;
    }
    const { reclaimable, method } = estimate(r, approx);
    const heap = Number(r.main_bytes);
    const ratio = heap > 0 ? reclaimable / heap : 0;
    if (ratio < req.minRatio) continue;
    const quick = quickRefusal(r);
    const index = Number(r.index_bytes);
    out.push({
      schema: r.schema,
      name: r.name,
      totalBytes: total,
      heapBytes: heap,
      indexBytes: index,
      reclaimableBytes: reclaimable,
      ratio,
      method,
      // Indexes are rebuilt over the live rows only: assume they shrink in the same proportion as the heap.
      diskNeededBytes: Math.max(0, Math.round(total - reclaimable - index * ratio)),
      refusal: quick ?? (await fullRefusal(client, r.schema, r.name)),
    });
  }
  await client.query('RESET search_path');
  out.sort(
    (a, b) =>
      b.reclaimableBytes - a.reclaimableBytes ||
      b.totalBytes - a.totalBytes ||
      (`${a.schema}.${a.name}` < `${b.schema}.${b.name}` ? -1 : 1),
  );
  return { tables: out, pgstattuple: approxFn !== null };
}
