/**
 * src/model/quote.ts checked against an independent implementation: pg-format's %I and %L (ports of libpq's
 * PQescapeIdentifier/PQescapeLiteral). The two spell things differently on purpose (we always double-quote,
 * pg-format leaves plain lower-case names bare; we write standard-conforming '…' strings, pg-format writes
 * E'…' when there is a backslash), so they are compared by what PostgreSQL's own grammar (libpg_query, through
 * pgsql-parser) reads: both must read back as the very name or text that went in.
 *
 * pg-format is used here only: the code has one quoting module, and pg-format's %s and global config() must
 * never meet model data (STYLE.md).
 */
import format from 'pg-format';
import { parse, parseSync } from 'pgsql-parser';
import { beforeAll, describe, expect, it } from 'vitest';
import { byteLength, ident, literal, qualified } from '../../src/model/quote.js';

const name63 = 'a_very_long_column_name_with_unicode_é_€_zzzzzzzzzzzzzzzzzzz';

const NAMES = [
  'orders',
  'user',
  'order',
  'group',
  'select',
  'OrderId',
  'MiXeD',
  '1st',
  '_x$y',
  'say "hi"',
  '"',
  'a;b',
  'Sales "EU"; drop',
  "it's",
  'a\\b',
  'x -- y',
  'x /* y',
  'line\nbreak',
  'tab\there',
  'prix_€',
  '名前',
  '$sp$',
  'a.b',
  ' ',
  name63,
];
const TEXTS = [...NAMES, '', "''", "\\'", '\\', '"Sales"; DROP TABLE x; --', "E'x'", '$$', 'multi\nline\r\ntext'];

type Node = Record<string, unknown>;
const at = (v: unknown, ...path: Array<string | number>): unknown =>
  path.reduce<unknown>((o, k) => (typeof o === 'object' && o !== null ? (o as Node)[k] : undefined), v);

/** The text PostgreSQL reads from a string literal. */
function readLiteral(sql: string): unknown {
  return at(
    parseSync(`SELECT ${sql}`),
    'stmts',
    0,
    'stmt',
    'SelectStmt',
    'targetList',
    0,
    'ResTarget',
    'val',
    'A_Const',
    'sval',
    'sval',
  );
}

/** The name PostgreSQL reads from an identifier (a column alias). */
function readIdent(sql: string): unknown {
  return at(parseSync(`SELECT 1 AS ${sql}`), 'stmts', 0, 'stmt', 'SelectStmt', 'targetList', 0, 'ResTarget', 'name');
}

/** Schema and name PostgreSQL reads from a qualified table name. */
function readQualified(sql: string): unknown {
  const rv = at(parseSync(`SELECT * FROM ${sql}`), 'stmts', 0, 'stmt', 'SelectStmt', 'fromClause', 0, 'RangeVar');
  return [at(rv, 'schemaname'), at(rv, 'relname')];
}

beforeAll(async () => {
  await parse('SELECT 1'); // loads the parser
});

describe('quote.ts against pg-format, as PostgreSQL reads them', () => {
  it('the corpus has the 63-byte name whole (no truncation in the comparison)', () => {
    expect(byteLength(name63)).toBe(63);
  });

  it.each(NAMES)('ident(%j) reads back as the name, like format(%%I)', (name) => {
    expect(readIdent(ident(name))).toBe(name);
    expect(readIdent(format('%I', name))).toBe(name);
  });

  it.each(NAMES)('qualified(%j, …) reads back as schema and name, like format(%%I.%%I)', (name) => {
    expect(readQualified(qualified(name, 'order'))).toEqual([name, 'order']);
    expect(readQualified(qualified('s', name))).toEqual(['s', name]);
    expect(readQualified(format('%I.%I', name, 'order'))).toEqual([name, 'order']);
  });

  it.each(TEXTS)('literal(%j) reads back as the text, like format(%%L)', (text) => {
    expect(readLiteral(literal(text))).toBe(text);
    expect(readLiteral(format('%L', text))).toBe(text);
  });

  it('differs from pg-format only in spelling: always quoted, never an E string', () => {
    expect([ident('orders'), format('%I', 'orders')]).toEqual(['"orders"', 'orders']);
    expect([literal('a\\b'), format('%L', 'a\\b')]).toEqual(["'a\\b'", "E'a\\\\b'"]);
    for (const name of NAMES) expect(ident(name)).toMatch(/^".*"$/s);
    for (const text of TEXTS) expect(literal(text)).toMatch(/^'.*'$/s);
  });
});
