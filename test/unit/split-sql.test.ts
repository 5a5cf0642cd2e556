import { describe, expect, it } from 'vitest';
import { SqlSplitError, splitSql } from '../../src/model/split-sql.js';

const texts = (sql: string): string[] => splitSql(sql).map((statement) => statement.text);

/** 1-based line of an offset, computed independently of the splitter */
const lineAt = (sql: string, offset: number): number => sql.slice(0, offset).split(/\r\n|\r|\n/).length;

/** the error splitSql throws, or a failure when it does not throw */
const errorOf = (sql: string): SqlSplitError => {
  try {
    splitSql(sql);
  } catch (error) {
    expect(error).toBeInstanceOf(SqlSplitError);
    return error as SqlSplitError;
  }
  throw new Error(`expected splitSql to throw for ${JSON.stringify(sql)}`);
};

describe('splitSql: statement boundaries', () => {
  it('splits on semicolons, including several statements on one line', () => {
    expect(texts('SELECT 1;\nSELECT 2; SELECT 3;')).toEqual(['SELECT 1;', 'SELECT 2;', 'SELECT 3;']);
  });

  it('keeps the statement text byte for byte, inner newlines and comments included', () => {
    const sql = 'SELECT a,\n       b -- the b column\n  FROM t /* alias-free */\n WHERE c = 1;\n';
    expect(texts(sql)).toEqual([sql.trimEnd()]);
  });

  it('returns a trailing statement without a semicolon, trimmed of trailing whitespace', () => {
    expect(texts('SELECT 1;\nSELECT 2  \n\t\n')).toEqual(['SELECT 1;', 'SELECT 2']);
    expect(texts('SELECT 1')).toEqual(['SELECT 1']);
  });

  it('ends a trailing statement at its last token, not at a trailing comment', () => {
    expect(texts('SELECT 1;\nSELECT 2 -- no semicolon here\n')).toEqual(['SELECT 1;', 'SELECT 2']);
    expect(texts('SELECT 2 /* tail */   ')).toEqual(['SELECT 2']);
  });

  it('yields nothing for empty, blank or comment-only input or remainder', () => {
    expect(splitSql('')).toEqual([]);
    expect(splitSql('  \n\t\r\n  ')).toEqual([]);
    expect(splitSql('-- just a comment\n/* and a block; */\n-- no newline at end')).toEqual([]);
    expect(texts('SELECT 1;\n\n-- done;\n/* really; */\n')).toEqual(['SELECT 1;']);
  });

  it('returns an empty statement (a lone semicolon) as psql sends it', () => {
    expect(texts('SELECT 1;;\n ;')).toEqual(['SELECT 1;', ';', ';']);
  });

  it('does not end a statement at a semicolon inside parentheses (psql counts parentheses)', () => {
    const rule =
      'CREATE RULE r AS ON INSERT TO t DO INSTEAD (\n' +
      '  INSERT INTO a VALUES (new.id);\n' +
      '  DELETE FROM b WHERE id = new.id\n' +
      ');';
    expect(texts(`${rule}\nSELECT 1;`)).toEqual([rule, 'SELECT 1;']);
  });

  it('ignores an unmatched closing parenthesis, as psql does', () => {
    expect(texts('SELECT 1);\nSELECT 2;')).toEqual(['SELECT 1);', 'SELECT 2;']);
  });
});

describe('splitSql: single-quoted strings', () => {
  it("ignores semicolons inside '...' and handles '' escapes", () => {
    expect(texts("SELECT 'a;b', 'it''s; fine', '''';\nSELECT 2;")).toEqual([
      "SELECT 'a;b', 'it''s; fine', '''';",
      'SELECT 2;',
    ]);
  });

  it('treats a backslash as an ordinary character in a standard string', () => {
    expect(texts("SELECT 'C:\\';\nSELECT 2;")).toEqual(["SELECT 'C:\\';", 'SELECT 2;']);
  });

  it('treats comment and dollar-quote markers inside strings as text', () => {
    expect(texts("SELECT '--;', '/*;', '$$;', '\";';\nSELECT 2;")).toEqual([
      "SELECT '--;', '/*;', '$$;', '\";';",
      'SELECT 2;',
    ]);
  });

  it("handles B'', X'', N'' and U&'' literals like plain strings", () => {
    expect(texts("SELECT B'1;0', X'A;F', N'n;', U&'d\\0061t;a';\nSELECT 2;")).toEqual([
      "SELECT B'1;0', X'A;F', N'n;', U&'d\\0061t;a';",
      'SELECT 2;',
    ]);
  });
});

describe("splitSql: E'...' strings", () => {
  it("honours backslash escapes, including \\' ", () => {
    expect(texts("SELECT E'it\\'s; still text';\nSELECT 2;")).toEqual(["SELECT E'it\\'s; still text';", 'SELECT 2;']);
  });

  it("closes at the quote after an escaped backslash (E'\\\\')", () => {
    expect(texts("SELECT e'\\\\';\nSELECT 2;")).toEqual(["SELECT e'\\\\';", 'SELECT 2;']);
  });

  it("also accepts '' inside an E string", () => {
    expect(texts("SELECT E'a''b;\\n';\nSELECT 2;")).toEqual(["SELECT E'a''b;\\n';", 'SELECT 2;']);
  });

  it('does not treat an identifier ending in e followed by a quote as an E string', () => {
    // `some` is an identifier; the string after it is a standard one, so the backslash does not escape
    expect(texts("SELECT some'\\';\nSELECT 2;")).toEqual(["SELECT some'\\';", 'SELECT 2;']);
  });

  it('does not continue a string onto the next line, because psql lexes line by line', () => {
    // the server would continue E'a' with 'b\'...' in E mode, but psql has already split here
    expect(texts("SELECT E'a'\n  'b\\'; SELECT 2;")).toEqual(["SELECT E'a'\n  'b\\';", 'SELECT 2;']);
    expect(texts("SELECT E'a' -- c\r\n'b\\'; SELECT 2;")).toEqual(["SELECT E'a' -- c\r\n'b\\';", 'SELECT 2;']);
  });

  it('keeps E mode across a continuation whose newline is a bare CR, as psql does', () => {
    const continued = "SELECT E'a'\r  'b\\'; still b';";
    expect(texts(`${continued}\nSELECT 2;`)).toEqual([continued, 'SELECT 2;']);
  });
});

describe('splitSql: double-quoted identifiers', () => {
  it('ignores semicolons inside "..." and handles "" escapes', () => {
    expect(texts('SELECT "semi;colon", "say ""hi;"" ";\nSELECT 2;')).toEqual([
      'SELECT "semi;colon", "say ""hi;"" ";',
      'SELECT 2;',
    ]);
  });

  it('handles U&"..." identifiers', () => {
    expect(texts('SELECT 1 AS U&"d\\0061t;a";\nSELECT 2;')).toEqual(['SELECT 1 AS U&"d\\0061t;a";', 'SELECT 2;']);
  });

  it('handles unicode identifiers and text, with offsets in UTF-16 code units', () => {
    const sql =
      'CREATE TABLE café (naïve int, "日本;語" text);\nINSERT INTO café VALUES (1, \'😀;ü\');\nSELECT naïve FROM café;';
    const statements = splitSql(sql);
    expect(statements.map((st) => st.text)).toEqual([
      'CREATE TABLE café (naïve int, "日本;語" text);',
      "INSERT INTO café VALUES (1, '😀;ü');",
      'SELECT naïve FROM café;',
    ]);
    for (const st of statements) {
      expect(sql.slice(st.offset, st.offset + st.text.length)).toBe(st.text);
    }
    expect(statements.map((st) => st.line)).toEqual([1, 2, 3]);
    expect(statements[2]?.offset).toBe(sql.indexOf('SELECT naïve'));
  });
});

describe('splitSql: dollar quoting', () => {
  it('keeps a DO block with BEGIN/END and inner semicolons together', () => {
    const block = "DO $$\nBEGIN\n  RAISE NOTICE 'a;b';\n  PERFORM 1;\nEND\n$$;";
    expect(texts(`${block}\nSELECT 1;`)).toEqual([block, 'SELECT 1;']);
  });

  it('ends a tagged quote only at the same tag, so $$ inside $fn$ is text', () => {
    const fn =
      'CREATE OR REPLACE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $fn$\n' +
      'BEGIN\n' +
      '  EXECUTE $$SELECT 1; SELECT 2$$;\n' +
      '  RETURN $q$;$q$;\n' +
      'END;\n' +
      '$fn$;';
    expect(texts(`${fn}\nSELECT 3;`)).toEqual([fn, 'SELECT 3;']);
  });

  it('compares tags case-sensitively and allows digits, underscores and non-ASCII letters in tags', () => {
    expect(texts('SELECT $A$ $a$; $A$;\nSELECT $_x1$;$_x1$, $é$;$é$;\nSELECT 3;')).toEqual([
      'SELECT $A$ $a$; $A$;',
      'SELECT $_x1$;$_x1$, $é$;$é$;',
      'SELECT 3;',
    ]);
  });

  it('treats $1 as a parameter, not as a dollar quote', () => {
    expect(texts('PREPARE p(int, int) AS SELECT $1 + $2;\nEXECUTE p(1, 2);\nSELECT $1;')).toEqual([
      'PREPARE p(int, int) AS SELECT $1 + $2;',
      'EXECUTE p(1, 2);',
      'SELECT $1;',
    ]);
  });

  it('does not start a dollar quote at a $ inside an identifier', () => {
    expect(texts('SELECT a$$b, c$ FROM t;\nSELECT 2;')).toEqual(['SELECT a$$b, c$ FROM t;', 'SELECT 2;']);
  });

  it('treats a $ not forming $tag$ as an ordinary character', () => {
    expect(texts('SELECT $abc;\nSELECT 2;')).toEqual(['SELECT $abc;', 'SELECT 2;']);
  });

  it('does not interpret quotes or comments inside a dollar quote', () => {
    const sql = 'SELECT $body$ it\'s -- not /* a comment; " $body$;\nSELECT 2;';
    expect(texts(sql)).toEqual(['SELECT $body$ it\'s -- not /* a comment; " $body$;', 'SELECT 2;']);
  });
});

describe('splitSql: comments', () => {
  it('ignores semicolons and quotes inside -- comments', () => {
    expect(texts("SELECT 1 -- it's; fine\n     + 2;\nSELECT 3;")).toEqual([
      "SELECT 1 -- it's; fine\n     + 2;",
      'SELECT 3;',
    ]);
  });

  it('handles nested block comments', () => {
    expect(texts('SELECT /* a /* b; */ still comment; */ 1;\nSELECT 2;')).toEqual([
      'SELECT /* a /* b; */ still comment; */ 1;',
      'SELECT 2;',
    ]);
  });

  it('starts a comment right after an operator character', () => {
    expect(texts('SELECT 2*/*x;*/3;\nSELECT 4;')).toEqual(['SELECT 2*/*x;*/3;', 'SELECT 4;']);
  });

  it('leaves comments between statements out of the statement text', () => {
    const statements = splitSql('/* header; */ SELECT 1; -- done;\n-- next;\nSELECT 2;');
    expect(statements.map((st) => st.text)).toEqual(['SELECT 1;', 'SELECT 2;']);
  });
});

describe('splitSql: BEGIN ATOMIC bodies', () => {
  it('keeps SQL-standard function and procedure bodies together', () => {
    const fn =
      'CREATE FUNCTION add1(a int) RETURNS int\n' +
      'LANGUAGE sql\n' +
      'BEGIN ATOMIC\n' +
      '  SELECT CASE WHEN a > 0 THEN a + 1 ELSE CASE WHEN a = 0 THEN 1 END END;\n' +
      'END;';
    const proc =
      'create or replace procedure ins(x int)\n' +
      'language sql\n' +
      'begin atomic\n' +
      '  insert into t values (x);\n' +
      '  insert into t values (x + 1);\n' +
      'end;';
    const cop = 'CREATE OR REPLACE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC; SELECT 1; END;';
    expect(texts(`${fn}\n${proc}\n${cop}\nSELECT 1;`)).toEqual([fn, proc, cop, 'SELECT 1;']);
  });

  it('handles CREATE PROCEDURE without OR REPLACE', () => {
    const proc = 'CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;';
    expect(texts(`${proc} SELECT 2;`)).toEqual([proc, 'SELECT 2;']);
  });

  it('does not track BEGIN/END outside CREATE FUNCTION/PROCEDURE', () => {
    expect(texts('BEGIN;\nSELECT CASE WHEN true THEN 1 END;\nEND;\nCREATE TABLE begin (case int);')).toEqual([
      'BEGIN;',
      'SELECT CASE WHEN true THEN 1 END;',
      'END;',
      'CREATE TABLE begin (case int);',
    ]);
  });

  it('ignores BEGIN/END inside quotes, comments and dollar-quoted bodies', () => {
    const plpgsql = 'CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; END $$;';
    const quoted = "CREATE FUNCTION g() RETURNS text LANGUAGE sql /* begin */ AS 'SELECT ''begin''';";
    expect(texts(`${plpgsql}\n${quoted}\nSELECT 1;`)).toEqual([plpgsql, quoted, 'SELECT 1;']);
  });

  it('ignores words that merely contain begin/end and words inside parentheses', () => {
    const fn =
      'CREATE FUNCTION h(begin_at int, "end" int) RETURNS int LANGUAGE sql\n' +
      'BEGIN ATOMIC\n' +
      '  SELECT (CASE WHEN begin_at > 0 THEN 1 END);\n' +
      '  SELECT legend_end FROM t;\n' +
      'END;';
    expect(texts(`${fn}\nSELECT 2;`)).toEqual([fn, 'SELECT 2;']);
  });

  it('follows psql in counting any BEGIN word in a CREATE FUNCTION statement', () => {
    // psql's heuristic does not look for ATOMIC: a function in a schema named "begin"
    // swallows the following statements up to the next END. The runner must agree with psql.
    const sql = 'CREATE FUNCTION begin.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\nSELECT 2;\nEND;\nSELECT 3;';
    expect(texts(sql)).toEqual([
      'CREATE FUNCTION begin.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\nSELECT 2;\nEND;',
      'SELECT 3;',
    ]);
  });
});

describe('splitSql: positions and leading comments', () => {
  it('reports line, offset and leadingComments exactly', () => {
    const sql = [
      '-- Stage 1: prepare',
      '-- (header, separated by a blank line)',
      '',
      '-- Label A',
      '--   more about A  ',
      'CREATE TABLE a (id int);  -- trailing, not a label',
      '-- Label B',
      'INSERT INTO a VALUES (1); SELECT 1;',
      '/* block */',
      '--- Label C ---',
      '  SELECT 2;',
      '--',
      'SELECT 3;',
      '-- dangling',
      '',
    ].join('\n');
    const statements = splitSql(sql);
    expect(statements).toEqual([
      {
        text: 'CREATE TABLE a (id int);',
        line: 6,
        offset: sql.indexOf('CREATE'),
        leadingComments: ['Label A', 'more about A'],
      },
      { text: 'INSERT INTO a VALUES (1);', line: 8, offset: sql.indexOf('INSERT'), leadingComments: ['Label B'] },
      { text: 'SELECT 1;', line: 8, offset: sql.indexOf('SELECT 1'), leadingComments: [] },
      { text: 'SELECT 2;', line: 11, offset: sql.indexOf('SELECT 2'), leadingComments: ['- Label C ---'] },
      { text: 'SELECT 3;', line: 13, offset: sql.indexOf('SELECT 3'), leadingComments: [''] },
    ]);
  });

  it('does not attach a comment separated by a blank line or a trailing comment', () => {
    const statements = splitSql('-- far away\n\nSELECT 1; -- trailing\nSELECT 2;');
    expect(statements.map((st) => st.leadingComments)).toEqual([[], []]);
  });

  it('attaches comments only from the gap before the statement', () => {
    const statements = splitSql('-- first\nSELECT 1; SELECT 2;');
    expect(statements.map((st) => st.leadingComments)).toEqual([['first'], []]);
  });

  it('handles CRLF line endings', () => {
    const sql = '-- one\r\n-- two\r\nSELECT 1\r\n  FROM t;\r\n\r\n-- three\r\nSELECT $$a;\r\nb$$;\r\nSELECT 3\r\n';
    const statements = splitSql(sql);
    expect(statements).toEqual([
      { text: 'SELECT 1\r\n  FROM t;', line: 3, offset: sql.indexOf('SELECT 1'), leadingComments: ['one', 'two'] },
      { text: 'SELECT $$a;\r\nb$$;', line: 7, offset: sql.indexOf('SELECT $$'), leadingComments: ['three'] },
      { text: 'SELECT 3', line: 9, offset: sql.indexOf('SELECT 3'), leadingComments: [] },
    ]);
  });

  it('counts a lone CR as a line break, as psql does', () => {
    const statements = splitSql('SELECT 1;\rSELECT 2;');
    expect(statements.map((st) => st.line)).toEqual([1, 2]);
  });
});

describe('splitSql: errors', () => {
  it('reports an unterminated single-quoted string with its starting line', () => {
    const error = errorOf("SELECT 1;\nSELECT 'abc;\nSELECT 2;\n");
    expect(error.message).toMatch(/unterminated quoted string.*line 2, column 8/);
    expect(error).toMatchObject({ line: 2, column: 8, offset: 17 });
  });

  it("reports an unterminated E'' string, including one ending in a backslash", () => {
    expect(errorOf("SELECT 1;\n\nSELECT E'it\\';").message).toMatch(/unterminated escape string.*line 3/);
    expect(errorOf("SELECT E'abc\\").line).toBe(1);
  });

  it('reports an unterminated quoted identifier', () => {
    expect(errorOf('SELECT 1;\nSELECT "abc;\n').message).toMatch(/unterminated quoted identifier.*line 2/);
  });

  it('reports an unterminated dollar quote with its tag, even if another tag closes', () => {
    const error = errorOf('SELECT 1;\nSELECT 2;\nDO $fn$ BEGIN\n  PERFORM $$x$$;\nEND $$;\n');
    expect(error.message).toMatch(/unterminated dollar-quoted string \(\$fn\$\).*line 3/);
    expect(errorOf('SELECT $$;').line).toBe(1);
  });

  it('reports an unterminated block comment, counting nesting', () => {
    expect(errorOf('SELECT 1;\n/* outer /* inner */ still open;\nSELECT 2;').message).toMatch(
      /unterminated block comment.*line 2/,
    );
  });

  it('reports the line of an unterminated construct after CRLF lines', () => {
    expect(errorOf("SELECT 1;\r\nSELECT 2;\r\nSELECT 'x;\r\n").line).toBe(3);
  });

  it('does not mistake quotes inside comments for unterminated strings', () => {
    expect(texts("-- don't\nSELECT 1; /* it's */ SELECT 2; -- \"\nSELECT 3;")).toEqual([
      'SELECT 1;',
      'SELECT 2;',
      'SELECT 3;',
    ]);
  });
});

describe('splitSql: reassembly property', () => {
  /** deterministic PRNG (mulberry32) so failures are reproducible */
  const prng = (seed: number): (() => number) => {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  };

  /** complete statements: each starts with a token and ends with its terminating semicolon */
  const statementPool = [
    'SELECT 1;',
    "SELECT 'a;b', 'it''s;';",
    "SELECT E'\\'; still text', e'\\\\';",
    'SELECT "semi;colon" FROM "we""ird;";',
    "DO $$\nBEGIN\n  RAISE NOTICE 'x;y';\nEND\n$$;",
    'CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $fn$ SELECT $$;$$ $fn$;',
    'PREPARE q(int) AS SELECT $1;',
    'SELECT a$$b FROM t;',
    'SELECT /* inner; /* nested; */ */ 1;',
    'SELECT 1 -- trailing; comment\n  + 2;',
    'CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN 1 END;\n  SELECT 2;\nEND;',
    'CREATE RULE r AS ON INSERT TO t DO INSTEAD (INSERT INTO a VALUES (1); DELETE FROM b);',
    "INSERT INTO café (naïve) VALUES ('日本;語', '😀');",
    "SELECT 1\r\n  FROM t\r\n WHERE x = ';';",
    "SELECT E'a'\n'b\\\\';",
    'BEGIN;',
    'CALL p(1);',
    'COMMIT;',
    ';',
  ];
  /** whitespace and comments only */
  const separatorPool = [
    ' ',
    '\n',
    '\r\n',
    '\n\n',
    '\t',
    '\f',
    "-- note; with 'quote\n",
    '--\r\n',
    '  -- indented $$ comment\n',
    '/* block; */',
    '/* outer /* inner; */ still; */',
    '/* "x\n */',
  ];

  it('joining the texts gives back the statements, with exact offsets and lines', () => {
    const random = prng(20240611);
    const pick = <T>(pool: readonly T[]): T => pool[Math.floor(random() * pool.length)] as T;
    for (let round = 0; round < 500; round++) {
      const count = 1 + Math.floor(random() * 8);
      const statements: string[] = [];
      let script = '';
      for (let k = 0; k < count; k++) {
        const separators = Math.floor(random() * 3);
        for (let m = 0; m < separators; m++) script += pick(separatorPool);
        let statement = pick(statementPool);
        // sometimes leave the last statement unterminated
        if (k === count - 1 && statement !== ';' && random() < 0.3) statement = statement.slice(0, -1);
        statements.push(statement);
        script += statement;
        if (random() < 0.5) script += pick(separatorPool);
      }
      for (let m = Math.floor(random() * 3); m > 0; m--) script += pick(separatorPool);

      const result = splitSql(script);
      expect(result.map((st) => st.text).join(''), script).toBe(statements.join(''));
      expect(
        result.map((st) => st.text),
        script,
      ).toEqual(statements);
      for (const st of result) {
        expect(script.slice(st.offset, st.offset + st.text.length)).toBe(st.text);
        expect(st.line).toBe(lineAt(script, st.offset));
      }
    }
  });
});
