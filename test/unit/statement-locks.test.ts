import { describe, expect, it } from 'vitest';
import { statementLocks } from '../../src/compile/statement-locks.js';

describe('statementLocks', () => {
  it('names the mode and relation of each kind of statement the compiler writes', () => {
    expect(statementLocks('ALTER TABLE "s"."t" RENAME TO "x";')).toEqual(['ACCESS EXCLUSIVE on "s"."t"']);
    expect(statementLocks('ALTER TABLE "s"."t" VALIDATE CONSTRAINT "fk";')).toEqual(['SHARE UPDATE EXCLUSIVE on "s"."t"']);
    expect(statementLocks('ALTER TABLE "s"."c" DROP CONSTRAINT "fk";\nALTER TABLE "s"."c" ADD CONSTRAINT "fk" FOREIGN KEY (a) REFERENCES "s"."t"(id) NOT VALID;')).toEqual([
      'ACCESS EXCLUSIVE on "s"."c"',
      'SHARE ROW EXCLUSIVE on "s"."c"',
      'SHARE ROW EXCLUSIVE on "s"."t"',
    ]);
    expect(statementLocks('CREATE UNIQUE INDEX IF NOT EXISTS "i" ON "s"."t" USING "btree" (a);')).toEqual(['SHARE on "s"."t"']);
    expect(statementLocks('CREATE TRIGGER "g"\n  AFTER INSERT ON "s"."t"\n  FOR EACH ROW EXECUTE FUNCTION f();')).toEqual(['SHARE ROW EXCLUSIVE on "s"."t"']);
    expect(statementLocks('ALTER INDEX "s"."i" RENAME TO "j";')).toEqual(['SHARE UPDATE EXCLUSIVE on "s"."i"']);
    expect(statementLocks('GRANT SELECT ON "s"."t" TO "r";')).toEqual([]);
  });

  it('finds statements inside a DO block, and keeps quoted names whole', () => {
    const sql = 'DO $sp$\nBEGIN\n  IF NOT EXISTS (SELECT 1) THEN\n    ALTER TABLE "we""ird; ON x"."t" ADD CONSTRAINT "c" CHECK (a > 0);\n  END IF;\nEND\n$sp$;';
    expect(statementLocks(sql)).toEqual(['ACCESS EXCLUSIVE on "we""ird; ON x"."t"']);
  });

  it('does not read a statement into the middle of a multi-line literal', () => {
    expect(statementLocks("COMMENT ON TABLE \"s\".\"t\" IS 'two\nALTER TABLE \"s\".\"u\" lines';")).toEqual(['SHARE UPDATE EXCLUSIVE on "s"."t"']);
  });
});
