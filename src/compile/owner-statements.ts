import { dollarTag, literal } from '../model/quote.js';
import type { CopySide } from './transform/sides.js';

/**
 * Statements that run as the table's owner (templates/partials/owner-functions.hbs): they evaluate
 * the owner's code (defaults, generated columns, casts, --alter expressions, CHECK constraints,
 * index expressions and triggers of the written table). They reach only what the owner can reach —
 * the source, the copy or old table, a temporary scratch table — never the tool's schema: the log
 * keys come in as arrays ($3, $4, …), read by the runner.
 */
export interface OwnerStatements {
  /** Copies heap pages $1 to $2 (excluded). */
  readonly backfill: string;
  /**
   * The same, leaving out every row whose key the change log holds as of the statement's snapshot
   * (the catch-up writes those rows later). Reads the log, so only for a role that can: used when
   * these statements run as the runner, not when they are handed to the owner.
   */
  readonly backfillSkipLogged: string;
  /**
   * A format() string (%1$s, %2$s: the pages of a batch that failed) for a DO block that pushes the
   * batch's rows through the backfill INSERT one at a time in key order and raises BAD_ROW_SQLSTATE
   * at the first that does not fit: its key as the message, the error as the detail. As the owner,
   * because reading the table plans it (its index expressions are loaded and constant-folded then).
   */
  readonly backfillFirstBad: string;
  /** The SQLSTATE backfillFirstBad raises for the row it names. */
  readonly badRowSqlstate: string;
  /** `ARRAY[…]::text[]`: the apply's writes to the copy, for the logged keys. */
  readonly apply: string;
  /** The same for revert's writes to the old table. */
  readonly reverseApply: string;
  /**
   * Run first when the written table keeps unmapped columns: deletes the keys the source took away
   * from their rows (logged as gone), so a row now under such a key is not given the old row's values.
   */
  readonly applyGone: string;
  readonly reverseApplyGone: string;
}

export interface OwnerStatementInput {
  readonly src: string;
  readonly copy: string;
  readonly old: string;
  readonly forward: CopySide;
  readonly reverse: CopySide;
  readonly backfillOrder: string;
  /** The source's key columns, quoted. */
  readonly keyList: string;
  /** OVERRIDING SYSTEM VALUE for the old table, or ''. */
  readonly overriding: string;
  /** The change log (the tool's schema): read by backfillSkipLogged only. */
  readonly changeLog: string;
  /** The source's key columns, each qualified with the source table, in the log's key order. */
  readonly keyListQualified: readonly string[];
}

function array(statements: readonly string[]): string {
  return statements.length === 0 ? 'ARRAY[]::text[]' : `ARRAY[\n    ${statements.map(literal).join(',\n    ')}]`;
}

/**
 * For every logged key: delete it from the target and re-read it from the source. Columns the
 * mapping does not fill keep the target's values through a temporary scratch table, everything
 * deleted before anything is inserted (see apply-function.hbs). Before the build the copy has no
 * unique index and may hold a key twice (a row updated between two backfill batches is copied from
 * both pages): one of its values is kept.
 */
function applyStatements(side: CopySide, source: string, target: string, overriding: string): string[] {
  if (!side.available) return [];
  const keys = side.keysFromArrays;
  const fromSource = `${side.only}${source} AS s\n WHERE (${side.keyListS}) IN (SELECT ${side.keyArrayVars.replaceAll('sp_', '')} FROM ${keys} AS d)`;
  const keep = side.keep;
  if (keep === null) {
    return [
      `DELETE FROM ${target} AS t\n USING ${keys} AS d\n WHERE ${side.keyJoinTD}`,
      `INSERT INTO ${target} (${side.insertList})\n${overriding}SELECT ${side.selectList} FROM ${fromSource}`,
    ];
  }
  return [
    `CREATE TEMPORARY TABLE IF NOT EXISTS ${keep.table} (${keep.defs.join(', ')}, PRIMARY KEY (${side.keyList}))`,
    `WITH gone AS (\n  DELETE FROM ${target} AS t\n   USING ${keys} AS d\n   WHERE ${side.keyJoinTD}\n  RETURNING ${keep.columnsT})\nINSERT INTO ${keep.table} (${keep.columns}) SELECT ${keep.columns} FROM gone ON CONFLICT DO NOTHING`,
    `INSERT INTO ${target} (${side.insertList}, ${keep.unmappedList})\n${overriding}SELECT n.*, ${keep.unmappedListG}\n  FROM (SELECT ${side.selectList} FROM ${fromSource}) AS n (${side.insertList})\n  JOIN ${keep.table} AS g ON ${keep.keyJoinNG}`,
    `INSERT INTO ${target} (${side.insertList})\n${overriding}SELECT ${side.selectList} FROM ${fromSource}\n   AND NOT EXISTS (SELECT FROM ${keep.table} AS g WHERE ${keep.keyJoinGS})`,
    `DELETE FROM ${keep.table}`,
  ];
}

function goneStatements(side: CopySide, target: string): string[] {
  if (!side.available || side.keep === null) return [];
  return [`DELETE FROM ${target} AS t\n USING ${side.keysFromArrays} AS d\n WHERE ${side.keyJoinTD}`];
}

/** Raised by backfillFirstBad for the row it found; the backfill turns it into its message. */
const BAD_ROW_SQLSTATE = 'SPB01';

/** Text of a format() string, or the format() argument (1-based) that goes in there. */
export type FormatPiece = string | { readonly arg: number };

export interface RowByRowSearch {
  readonly src: string;
  /** The source's key columns, quoted. */
  readonly keyList: string;
  /** INSERT … SELECT … FROM ONLY src, without a WHERE. */
  readonly insert: string;
  /** More DECLARE lines. */
  readonly declare: readonly string[];
  /** Run for each row that does not fit (bad.k its key as text, failure the error); may take format() arguments from 3 on. */
  readonly onBad: readonly FormatPiece[];
  /** Lines after the loop. */
  readonly after: readonly string[];
}

/**
 * A format() string (%1$s, %2$s: the pages of a batch that failed) for a DO block that pushes the
 * batch's rows through `insert` one at a time in key order, running `onBad` for each that does not
 * fit. Meant to run as the table's owner: reading the table plans it, which loads and constant-folds
 * its index expressions.
 */
export function rowByRowSearch(s: RowByRowSearch): string {
  const pieces: FormatPiece[] = [
    [
      '',
      'DECLARE',
      '  bad record;',
      '  failure text;',
      ...s.declare,
      'BEGIN',
      `  FOR bad IN SELECT ctid AS t, ROW(${s.keyList})::text AS k FROM ONLY ${s.src}`,
      "   WHERE ctid >= '(",
    ].join('\n'),
    { arg: 1 },
    ",0)'::tid AND ctid < '(",
    { arg: 2 },
    [
      `,0)'::tid ORDER BY ${s.keyList} LOOP`,
      '    BEGIN',
      `      ${s.insert} WHERE ctid = bad.t;`,
      '    EXCEPTION WHEN OTHERS THEN',
      '      GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT;',
      '',
    ].join('\n'),
    ...s.onBad,
    ['    END;', '  END LOOP;', ...s.after, 'END', ''].join('\n'),
  ];
  const tag = dollarTag(pieces.map((p) => (typeof p === 'string' ? p : '')).join(''), 'bad');
  // format() text: the arguments go in, every other % is doubled.
  const text = (p: FormatPiece) => (typeof p === 'string' ? p.replaceAll('%', '%%') : `%${p.arg}$s`);
  return literal([`DO ${tag}`, ...pieces, tag].map(text).join(''));
}

function firstBadRow(i: OwnerStatementInput, insert: string): string {
  return rowByRowSearch({
    src: i.src,
    keyList: i.keyList,
    insert,
    declare: [],
    onBad: [`      RAISE EXCEPTION USING ERRCODE = '${BAD_ROW_SQLSTATE}', MESSAGE = bad.k, DETAIL = failure;\n`],
    after: [],
  });
}

export function ownerStatements(i: OwnerStatementInput): OwnerStatements {
  const insert = `INSERT INTO ${i.copy} (${i.forward.insertList})\nSELECT ${i.forward.selectList} FROM ONLY ${i.src}`;
  const pages = `ctid >= format('(%s,0)', $1)::tid AND ctid < format('(%s,0)', $2)::tid`;
  // One statement, so the log and the table are read in one snapshot: a row is copied only while no
  // committed write has logged its key (see the backfill procedure in setup.sql.hbs).
  const unlogged = `NOT EXISTS (SELECT FROM ${i.changeLog} AS l WHERE ${i.keyListQualified
    .map((k, n) => `l.k${n + 1} = ${k}`)
    .join(' AND ')})`;
  return {
    backfill: literal(`${insert}\n WHERE ${pages}${i.backfillOrder}`),
    backfillSkipLogged: literal(`${insert}\n WHERE ${pages}\n   AND ${unlogged}${i.backfillOrder}`),
    backfillFirstBad: firstBadRow(i, insert),
    badRowSqlstate: BAD_ROW_SQLSTATE,
    apply: array(applyStatements(i.forward, i.src, i.copy, '')),
    reverseApply: array(applyStatements(i.reverse, i.src, i.old, i.overriding)),
    applyGone: array(goneStatements(i.forward, i.copy)),
    reverseApplyGone: array(goneStatements(i.reverse, i.old)),
  };
}
