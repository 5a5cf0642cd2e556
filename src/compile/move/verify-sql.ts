import { ident, qualified } from '../../model/quote.js';

/**
 * The checksum of a move's verify (design §4.8) and its version. A bucket's checksum is only comparable with one
 * of the same algorithm: change the text form, the hash, the bucket or the combination and this name changes too.
 *
 * sp-bucket-md5-v1: a row's text is `ROW(every column, in table order)::text` (money as numeric) under
 * MOVE_HASH_SETTINGS; its hash is the first 64 bits of md5(text) as a signed bigint. A row's bucket is the first
 * 32 bits of md5(`ROW(key)::text`) as a signed integer, masked to the bucket count: buckets by a hash of the key,
 * not by key ranges, so no side's collation decides which rows meet (text keys sort differently across clusters).
 * A bucket's checksum is its row count and the sum of its rows' hashes (independent of row order).
 */
export const MOVE_VERIFY_ALGORITHM = 'sp-bucket-md5-v1';

/**
 * The session settings every row hash of a move is computed under: those postgres_fdw sets in its remote
 * session (search_path pg_catalog, TimeZone UTC, DateStyle ISO, IntervalStyle postgres, extra_float_digits 3),
 * plus bytea_output, which the foreign server's `options` pin there. Both servers are PostgreSQL 12 or later, so
 * floats print shortest-exact. A value rendered differently by the two versions shows as a difference: a false
 * alarm, never a false pass.
 */
export const MOVE_HASH_SETTINGS: readonly string[] = [
  "SET LOCAL DateStyle = 'ISO'",
  "SET LOCAL IntervalStyle = 'postgres'",
  "SET LOCAL TimeZone = 'UTC'",
  'SET LOCAL extra_float_digits = 3',
  "SET LOCAL bytea_output = 'hex'",
];

/** The server option that pins bytea_output in postgres_fdw's remote session (the rest it sets itself). */
export const MOVE_FDW_SESSION_OPTIONS = '-c bytea_output=hex';

/** What verify needs of a moved table: recorded in plan.json, so verify reads no catalog to know it. */
export interface MoveHashShape {
  readonly schema: string;
  readonly name: string;
  /** The row key's columns, in key order. */
  readonly key: readonly string[];
  /** Every column in table order (generated ones too), with its type as the catalog prints it. */
  readonly columns: readonly { readonly name: string; readonly type: string }[];
}

/** `(id)`-style key text, the same as the rebuild's verify prints. */
export function moveKeyText(shape: MoveHashShape, alias: string): string {
  return `ROW(${shape.key.map((k) => `${alias}.${ident(k)}`).join(', ')})::text`;
}

/**
 * `SELECT kh, h, k FROM ONLY table`: per row its key hash (int), row hash (bigint) and key text. The source's
 * view (01-setup.source.sql) holds exactly this query; verify runs it on the target's table (and, once the source
 * is fenced, on the source directly), so both sides hash the same way.
 */
export function moveHashSelect(shape: MoveHashShape, alias = 's'): string {
  const cols = shape.columns.map((c) => `${alias}.${ident(c.name)}${c.type === 'money' ? '::numeric' : ''}`);
  const key = moveKeyText(shape, alias);
  return [
    `SELECT ('x' || left(md5(${key}), 8))::bit(32)::integer AS kh,`,
    `       ('x' || left(md5(ROW(${cols.join(', ')})::text), 16))::bit(64)::bigint AS h,`,
    `       ${key} AS k`,
    `  FROM ONLY ${qualified(shape.schema, shape.name)} AS ${alias}`,
  ].join('\n');
}

/** Per bucket (`kh & mask`): its row count and checksum, over a relation of (kh, h, k). */
export function moveBucketsSql(relation: string, buckets: number): string {
  return `SELECT kh & ${buckets - 1} AS b, count(*) AS n, sum(h) AS s FROM ${relation} GROUP BY 1`;
}

/** The key text and row hash of every row in the buckets given as $1 (an integer array). */
export function moveBucketKeysSql(relation: string, buckets: number): string {
  return `SELECT k, h FROM ${relation} WHERE (kh & ${buckets - 1}) = ANY ($1::integer[])`;
}
