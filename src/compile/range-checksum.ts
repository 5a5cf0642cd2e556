import { ident, qualified } from '../model/quote.js';
import { comparedRows, onlyFor, type ComparedShape } from './transform/compared-rows.js';
import { runNames } from '../model/names.js';
import type { TableModel } from '../model/types.js';
import type { VerifySide } from './verify-sql.js';

/**
 * The checksum's name and version. A stored or printed checksum is only
 * comparable with one of the same algorithm: change the text form, the hash or
 * the combination and this name must change too.
 *
 * sp-range-md5-v1: a row's text is `ROW(every column, in table order)::text`
 * under CANONICAL_SETTINGS; its hash is the first 64 bits of md5(text) as a
 * signed bigint; a range's checksum is its row count and the sum of its rows'
 * hashes (a numeric: no overflow, and independent of row order).
 */
export const RANGE_CHECKSUM_ALGORITHM = 'sp-range-md5-v1';

/** Session settings that fix the text form of dates, times, floats and bytes. */
export const CANONICAL_SETTINGS: readonly string[] = [
  "SET LOCAL DateStyle = 'ISO, YMD';",
  "SET LOCAL IntervalStyle = 'postgres';",
  "SET LOCAL TimeZone = 'UTC';",
  'SET LOCAL extra_float_digits = 1;',
  "SET LOCAL bytea_output = 'hex';",
];

/**
 * One row per key range: `range`, `first_key`, `last_key` (text), `rows_live`,
 * `rows_other`, `sum_live`, `sum_other`. The ranges split the union of both
 * sides' keys into `ranges` groups of equal size in key order, so a row
 * missing on one side still falls in a range. Keys waiting in the change log
 * are left out of both sides (they differ until applied). Read-only; run it
 * in one REPEATABLE READ snapshot with CANONICAL_SETTINGS. `margin` indents
 * each line (for embedding in a stage script).
 */
export function rangeChecksumSql(
  model: TableModel,
  side: VerifySide,
  ranges: number,
  margin = '',
  shape?: ComparedShape,
  pending?: string,
): string {
  const n = runNames(model.schema, model.name);
  const live = qualified(model.schema, model.name);
  const other = qualified(model.schema, side === 'before-swap' ? n.copyTable : n.oldTable);
  // The keys to leave out: the change log, or (run as the table's owner, who cannot read it) a relation of k1, k2, … given by the caller.
  const log = pending ?? qualified(n.toolSchema, side === 'before-swap' ? n.logTable : n.reverseLogTable);
  const key = model.key.columns.map(ident);
  const keys = key.join(', ');
  const bodies = comparedRows(model, side, shape);
  const notPending = (alias: string) =>
    `NOT EXISTS (SELECT FROM ${log} p WHERE ${key.map((k, i) => `p.k${i + 1} = ${alias}.${k}`).join(' AND ')})`;
  const hashed = (table: string, alias: string, cols: string) => [
    `SELECT ${key.map((k) => `${alias}.${k}`).join(', ')}, ('x' || left(md5(ROW(${cols})::text), 16))::bit(64)::bigint AS h`,
    `  FROM ${onlyFor(shape, side, table === live ? 'live' : 'other')}${table} ${alias}`,
    ` WHERE ${notPending(alias)}`,
  ];
  const keyText = key.length === 1 ? `${key[0]}::text` : `ROW(${keys})::text`;
  const indent = (lines: string[]) => lines.map((l) => `  ${l}`);
  return (
    [
      'WITH live AS (',
      ...indent(hashed(live, 's', bodies.live)),
      '), other AS (',
      ...indent(hashed(other, 'c', bodies.other)),
      '), joined AS (',
      `  SELECT ${keys}, live.h AS h_live, other.h AS h_other, ntile(${ranges}) OVER (ORDER BY ${keys}) AS range`,
      `    FROM live FULL JOIN other USING (${keys})`,
      '), bounded AS (',
      `  SELECT range, h_live, h_other, first_value(${keyText}) OVER w AS first_key, last_value(${keyText}) OVER w AS last_key`,
      '    FROM joined',
      `  WINDOW w AS (PARTITION BY range ORDER BY ${keys} ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)`,
      ')',
      'SELECT range, first_key, last_key,',
      '       count(h_live) AS rows_live, count(h_other) AS rows_other,',
      '       coalesce(sum(h_live::numeric), 0)::text AS sum_live,',
      '       coalesce(sum(h_other::numeric), 0)::text AS sum_other',
      '  FROM bounded',
      ' GROUP BY range, first_key, last_key',
      ' ORDER BY range',
    ]
      // Prefix the generated lines only: a quoted name may itself hold a line break.
      .map((l) => margin + l)
      .join('\n')
  );
}
