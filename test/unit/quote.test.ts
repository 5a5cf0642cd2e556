import { describe, expect, it } from 'vitest';
import { byteLength, dollarTag, ident, literal, qualified } from '../../src/model/quote.js';

const name63 = 'a_very_long_column_name_with_unicode_é_€_zzzzzzzzzzzzzzzzzzz';

describe('ident', () => {
  it('always double-quotes, even plain lower-case names', () => {
    expect(ident('orders')).toBe('"orders"');
  });

  it('quotes reserved words so they are names, not keywords', () => {
    expect(ident('order')).toBe('"order"');
    expect(ident('select')).toBe('"select"');
    expect(ident('user')).toBe('"user"');
  });

  it('keeps mixed case', () => {
    expect(ident('OrderId')).toBe('"OrderId"');
  });

  it('doubles embedded double quotes', () => {
    expect(ident('say "hi"')).toBe('"say ""hi"""');
    expect(ident('"')).toBe('""""');
    expect(ident('""')).toBe('""""""');
  });

  it('leaves semicolons, spaces, single quotes and backslashes inside the quotes', () => {
    expect(ident('a;b')).toBe('"a;b"');
    expect(ident('Sales "EU"; drop')).toBe('"Sales ""EU""; drop"');
    expect(ident("it's")).toBe('"it\'s"');
    expect(ident('a\\b')).toBe('"a\\b"');
    expect(ident('x -- y')).toBe('"x -- y"');
  });

  it('passes unicode through unchanged', () => {
    expect(ident('prix_€')).toBe('"prix_€"');
    expect(ident('名前')).toBe('"名前"');
  });

  it("handles a 63-byte name whole (truncation is the server's business, not the quoter's)", () => {
    expect(byteLength(name63)).toBe(63);
    expect(ident(name63)).toBe(`"${name63}"`);
    expect(byteLength(ident(name63))).toBe(65);
  });

  it('rejects NUL and the empty name', () => {
    expect(() => ident('a\u0000b')).toThrow(/NUL/);
    expect(() => ident('\u0000')).toThrow(/NUL/);
    expect(() => ident('')).toThrow(/empty/);
  });
});

describe('qualified', () => {
  it('quotes schema and name separately', () => {
    expect(qualified('public', 'orders')).toBe('"public"."orders"');
  });

  it('never splits on a dot inside a name', () => {
    expect(qualified('s', 'a.b')).toBe('"s"."a.b"');
    expect(qualified('a.b', 'c')).toBe('"a.b"."c"');
  });

  it('quotes hostile parts independently', () => {
    expect(qualified('Sales "EU"; drop', 'order')).toBe('"Sales ""EU""; drop"."order"');
    expect(qualified('My Schema', 'Order "x"')).toBe('"My Schema"."Order ""x"""');
    expect(qualified('名前', 'prix_€')).toBe('"名前"."prix_€"');
    expect(qualified(name63, name63)).toBe(`"${name63}"."${name63}"`);
  });

  it('rejects NUL in either part', () => {
    expect(() => qualified('a\u0000', 'b')).toThrow(/NUL/);
    expect(() => qualified('a', 'b\u0000')).toThrow(/NUL/);
  });
});

describe('literal', () => {
  it('single-quotes and doubles embedded single quotes', () => {
    expect(literal('abc')).toBe("'abc'");
    expect(literal("it's")).toBe("'it''s'");
    expect(literal("''")).toBe("''''''");
    expect(literal('')).toBe("''");
  });

  it('leaves double quotes, semicolons and comment markers as data', () => {
    expect(literal('"Sales"; DROP TABLE x; --')).toBe('\'"Sales"; DROP TABLE x; --\'');
  });

  it('treats backslashes as plain characters (standard_conforming_strings)', () => {
    expect(literal('a\\b')).toBe("'a\\b'");
    expect(literal("\\'")).toBe("'\\'''");
  });

  it('passes unicode through unchanged', () => {
    expect(literal('prix_€ 名前')).toBe("'prix_€ 名前'");
  });

  it('keeps the text of a quoted identifier intact', () => {
    expect(literal(qualified("O'Brien", 'order'))).toBe(`'"O''Brien"."order"'`);
  });

  it('rejects NUL', () => {
    expect(() => literal('a\u0000b')).toThrow(/NUL/);
  });
});

describe('dollarTag', () => {
  it('uses the plain tag when the body does not contain it', () => {
    expect(dollarTag('SELECT 1')).toBe('$sp$');
    expect(dollarTag('SELECT $1, $$x$$')).toBe('$sp$');
  });

  it('picks another tag when the body contains the plain one', () => {
    expect(dollarTag('x $sp$ y')).toBe('$sp1$');
    expect(dollarTag('x $sp$ $sp1$ y')).toBe('$sp2$');
  });

  it('picks another tag when the body ends in the tag without its closing $', () => {
    // "x $sp" + "$sp$" would end the body at "$sp$" inside the text.
    expect(dollarTag('x $sp')).toBe('$sp1$');
  });

  it('honours a custom base', () => {
    expect(dollarTag('body', 'fn')).toBe('$fn$');
    expect(dollarTag('$fn$', 'fn')).toBe('$fn1$');
  });

  it('never returns a tag that occurs in the body, whatever the names in it', () => {
    const bodies = [
      `ALTER TABLE ${qualified('Sales "EU"; drop', 'order')} ADD COLUMN ${ident('$sp$')} int`,
      'a $sp$ b $sp1$ c $sp2$ d $sp3$',
      '名前 prix_€ $sp$',
      '',
    ];
    for (const body of bodies) {
      const tag = dollarTag(body);
      expect(body.includes(tag), `${tag} in ${body}`).toBe(false);
      expect(tag).toMatch(/^\$sp\d*\$$/);
    }
  });

  it('is deterministic', () => {
    expect(dollarTag('x $sp$ y')).toBe(dollarTag('x $sp$ y'));
  });
});
