import { describe, expect, it } from 'vitest';
import { parseTableName } from '../../src/introspect/introspect.js';
import { UserError } from '../../src/model/errors.js';
import { closestTables, tableArgument } from '../../src/introspect/table-suggestions.js';

/** the UserError parseTableName throws, or a failure when it does not throw */
function errorOf(input: string): UserError {
  try {
    parseTableName(input);
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error as UserError;
  }
  throw new Error(`expected parseTableName to throw for ${JSON.stringify(input)}`);
}

describe('parseTableName: accepted', () => {
  it('reads an unquoted schema.table', () => {
    expect(parseTableName('public.orders')).toEqual({ schema: 'public', table: 'orders' });
  });

  it('keeps unquoted names exactly as written (no case folding)', () => {
    expect(parseTableName('Public.Orders')).toEqual({ schema: 'Public', table: 'Orders' });
  });

  it('reads quoted names with spaces and doubled quotes', () => {
    expect(parseTableName('"My Schema"."Order ""x"""')).toEqual({ schema: 'My Schema', table: 'Order "x"' });
  });

  it('keeps a dot inside a quoted name', () => {
    expect(parseTableName('s."a.b"')).toEqual({ schema: 's', table: 'a.b' });
    expect(parseTableName('"a.b".c')).toEqual({ schema: 'a.b', table: 'c' });
  });

  it('reads hostile and unicode names', () => {
    expect(parseTableName('"Sales ""EU""; drop"."order"')).toEqual({ schema: 'Sales "EU"; drop', table: 'order' });
    expect(parseTableName('名前."prix_€"')).toEqual({ schema: '名前', table: 'prix_€' });
  });
});

describe('parseTableName: refused with BAD_TABLE_NAME', () => {
  const bad: [string, string][] = [
    ['no dot', 'orders'],
    ['quoted name, no dot', '"orders"'],
    ['three parts', 'db.public.orders'],
    ['three quoted parts', '"db"."public"."orders"'],
    ['empty schema', '.orders'],
    ['empty table', 'public.'],
    ['empty both', '.'],
    ['empty quoted table', 'public.""'],
    ['empty quoted schema', '"".orders'],
    ['empty input', ''],
    ['unterminated quote in table', 'public."orders'],
    ['unterminated quote in schema', '"public.orders'],
    ['text after a quoted name', '"public"x.orders'],
  ];

  it.each(bad)('%s: %s', (_label, input) => {
    const error = errorOf(input);
    expect(error.code).toBe('BAD_TABLE_NAME');
    expect(error.message.length).toBeGreaterThan(0);
  });

  it('says what was wrong with an unterminated quote', () => {
    expect(errorOf('public."orders').message).toMatch(/unterminated/);
  });
});

describe('--table help for a name that misses (newcomer review finding 34)', () => {
  it('drops blanks around names, as the SQL parser does', () => {
    expect(parseTableName(' sales.orders')).toEqual({ schema: 'sales', table: 'orders' });
    expect(parseTableName('sales . orders ')).toEqual({ schema: 'sales', table: 'orders' });
    expect(parseTableName(' "My Schema" . "T" ')).toEqual({ schema: 'My Schema', table: 'T' });
    expect(parseTableName('" x"." y"')).toEqual({ schema: ' x', table: ' y' });
  });

  it('says that "sales.orders" in quotes is one name, and how to write schema and table', () => {
    expect(errorOf('"sales.orders"').message).toBe(
      '--table "sales.orders": in double quotes "sales.orders" is one name with a dot in it; for table orders of schema sales write sales.orders (or "sales"."orders")',
    );
  });

  it('marks a bare name so the caller can look up the schemas holding it', () => {
    expect(errorOf('orders').details).toEqual({ bareName: 'orders' });
    expect(errorOf('a.b.c').details).toEqual({});
  });

  const catalog = [
    { schema: 'archive', name: 'orders' },
    { schema: 'sales', name: 'Mixed' },
    { schema: 'sales', name: 'customers' },
    { schema: 'sales', name: 'orders' },
  ];

  it('offers the case-folded match first, then the same name elsewhere, then close spellings', () => {
    expect(closestTables(catalog, 'sales', 'Orders')).toEqual(['sales.orders', 'archive.orders']);
    expect(closestTables(catalog, 'Sales', 'orders')).toEqual(['sales.orders', 'archive.orders']);
    expect(closestTables(catalog, 'sales', 'order')).toEqual(['sales.orders']);
    expect(closestTables(catalog, 'sales', 'mixed')).toEqual(['"sales"."Mixed"']);
    expect(closestTables(catalog, null, 'orders')).toEqual(['archive.orders', 'sales.orders']);
    expect(closestTables(catalog, 'sales', 'invoices')).toEqual([]);
  });

  it('writes each suggestion the way --table takes it', () => {
    expect(tableArgument('sales', 'orders')).toBe('sales.orders');
    expect(tableArgument('sales', 'Order Items')).toBe('"sales"."Order Items"');
    expect(tableArgument('a.b', 'c')).toBe('"a.b"."c"');
  });
});
