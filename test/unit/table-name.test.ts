import { describe, expect, it } from 'vitest';
import { parseTableName } from '../../src/introspect/introspect.js';
import { UserError } from '../../src/model/errors.js';

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
