/**
 * The relation locks a generated statement takes, said beside it in the
 * scripts (`-- locks: …`). Derived from the statement shapes the compiler
 * itself writes (every name double-quoted by quote.ts), so the annotation
 * cannot drift from the SQL. Plain reads and row writes (ACCESS SHARE,
 * ROW EXCLUSIVE) are not listed: they conflict only with the locks listed.
 * Modes follow the ALTER TABLE / CREATE INDEX reference pages.
 */

/** A possibly schema-qualified name: quoted as quote.ts writes it, or bare as pg_get_triggerdef does. */
const NAME = '(?:"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*)';
const REL = `(${NAME}(?:\\.${NAME})?)`;

interface Rule {
  readonly pattern: RegExp;
  readonly locks: (m: RegExpExecArray) => string[];
}

const on = (mode: string, rel: string | undefined) => (rel === undefined ? [] : [`${mode} on ${rel}`]);

/** First match wins: specific shapes before the general ALTER TABLE. */
const RULES: readonly Rule[] = [
  { pattern: new RegExp(`^LOCK TABLE (?:ONLY )?${REL} IN ([A-Z ]+?) MODE`), locks: (m) => on(m[2]!, m[1]) },
  { pattern: new RegExp(`^ALTER TABLE (?:ONLY )?${REL} VALIDATE CONSTRAINT`), locks: (m) => on('SHARE UPDATE EXCLUSIVE', m[1]) },
  {
    pattern: new RegExp(`^ALTER TABLE (?:ONLY )?${REL} ADD CONSTRAINT .* REFERENCES ${REL}`),
    locks: (m) => [...on('SHARE ROW EXCLUSIVE', m[1]), ...(m[2] === m[1] ? [] : on('SHARE ROW EXCLUSIVE', m[2]))],
  },
  { pattern: new RegExp(`^ALTER TABLE (?:ONLY )?${REL} (?:ENABLE|DISABLE)(?: ALWAYS| REPLICA)? TRIGGER`), locks: (m) => on('SHARE ROW EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^ALTER TABLE (?:ONLY )?${REL} (?:CLUSTER ON|ALTER COLUMN \\S+ SET STATISTICS)`), locks: (m) => on('SHARE UPDATE EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^ALTER TABLE (?:ONLY )?${REL} `), locks: (m) => on('ACCESS EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^ALTER INDEX ${REL} RENAME`), locks: (m) => on('SHARE UPDATE EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^ALTER SEQUENCE ${REL}`), locks: (m) => on('SHARE ROW EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^ALTER PUBLICATION \\S+ (?:ADD|DROP) TABLE (?:ONLY )?${REL}`), locks: (m) => on('SHARE UPDATE EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^CREATE (?:UNIQUE )?INDEX (?:IF NOT EXISTS )?\\S+ ON (?:ONLY )?${REL}`), locks: (m) => on('SHARE', m[1]) },
  // Locks the table it is defined on; ALTER and COMMENT ON STATISTICS lock only the statistics object.
  { pattern: new RegExp(`^CREATE STATISTICS (?:IF NOT EXISTS )?\\S+(?: \\([a-z, ]+\\))? ON .* FROM ${REL}`), locks: (m) => on('SHARE UPDATE EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^CREATE (?:OR REPLACE )?TRIGGER [\\s\\S]*? ON ${REL}`), locks: (m) => on('SHARE ROW EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^CREATE (?:OR REPLACE )?VIEW ${REL}`), locks: (m) => on('ACCESS EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^CREATE POLICY \\S+ ON ${REL}`), locks: (m) => on('ACCESS EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^DROP TRIGGER (?:IF EXISTS )?\\S+ ON ${REL}`), locks: (m) => on('ACCESS EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^DROP TABLE (?:IF EXISTS )?${REL}`), locks: (m) => on('ACCESS EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^COMMENT ON (?:TABLE|COLUMN|SEQUENCE) ${REL}`), locks: (m) => on('SHARE UPDATE EXCLUSIVE', m[1]) },
  { pattern: new RegExp(`^ANALYZE ${REL}`), locks: (m) => on('SHARE UPDATE EXCLUSIVE', m[1]) },
];

/**
 * The locks of the statements in `sql` (one or a few, possibly inside a DO
 * block), in order, each once. A line is looked at only where a statement can
 * start: the first line, or after a line ending in `;`, `THEN` or `BEGIN`.
 */
export function statementLocks(sql: string): string[] {
  const found: string[] = [];
  const lines = sql.split('\n');
  let canStart = true;
  lines.forEach((line, i) => {
    const text = line.trim();
    if (canStart) {
      // Only CREATE TRIGGER names its table on a later line.
      const subject = /^CREATE (?:OR REPLACE )?TRIGGER /.test(text) ? [text, ...lines.slice(i + 1, i + 4)].join('\n') : text;
      const rule = RULES.find((r) => r.pattern.test(subject));
      if (rule) for (const l of rule.locks(rule.pattern.exec(subject)!)) if (!found.includes(l)) found.push(l);
    }
    canStart = text === '' ? canStart : /(;|\bTHEN|\bBEGIN|\bLOOP|\bELSE)$/.test(text);
  });
  return found;
}
