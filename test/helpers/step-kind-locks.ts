import type { LockMode, StepKind } from '../../src/compile/step.js';

export const AEL: LockMode = 'ACCESS EXCLUSIVE';
export const SRE: LockMode = 'SHARE ROW EXCLUSIVE';
export const SUE: LockMode = 'SHARE UPDATE EXCLUSIVE';

/**
 * For each kind of step: the statement it must be (a check of its label, written here and never
 * in src/), and the lock modes, stronger than a row write, that PostgreSQL takes on existing
 * relations for it (ALTER TABLE, CREATE INDEX, CREATE TRIGGER … reference pages; the modes are
 * checked against pg_locks on a live server in test/integration/step-lock-modes.test.ts). Kept
 * apart from src/compile/step.ts on purpose: a builder that forgets a lock, or labels a statement
 * with the wrong kind, fails test/unit/step-locks.test.ts.
 */
export const IMPLIED: { readonly [K in StepKind]: { readonly shape: RegExp; readonly modes: readonly LockMode[] } } = {
  'session-setting': { shape: /^SET /, modes: [] },
  check: { shape: /^DO /, modes: [] },
  'add-constraint': { shape: /ADD CONSTRAINT /, modes: [AEL] },
  'alter-copy': { shape: /ALTER TABLE /, modes: [AEL] },
  'create-index': { shape: /^CREATE (UNIQUE )?INDEX /, modes: ['SHARE'] },
  'create-partition': { shape: /^CREATE TABLE .* PARTITION OF /, modes: [AEL] },
  'create-statistics': { shape: /^CREATE STATISTICS /, modes: [SUE] },
  'alter-statistics': { shape: /^ALTER STATISTICS /, modes: [] },
  'column-storage': { shape: /^ALTER TABLE .* ALTER COLUMN .* SET (STORAGE|COMPRESSION) /, modes: [AEL] },
  'column-statistics': { shape: /^ALTER TABLE .* ALTER COLUMN .* SET (STATISTICS \d|\()/, modes: [SUE] },
  'storage-parameters': { shape: /^ALTER (TABLE|INDEX) .* SET \(/, modes: [AEL] },
  'autovacuum-reset': {
    shape: /^ALTER TABLE .* RESET \(autovacuum_enabled, toast\.autovacuum_enabled\);$/,
    modes: [SUE],
  },
  'row-security': { shape: /^(ALTER TABLE .* (ENABLE|FORCE) ROW LEVEL SECURITY;|CREATE POLICY )/, modes: [AEL] },
  'create-trigger': { shape: /^CREATE (OR REPLACE )?(CONSTRAINT )?TRIGGER /, modes: [SRE] },
  'trigger-state': { shape: /^ALTER TABLE .* (ENABLE|DISABLE)( ALWAYS| REPLICA)? TRIGGER /, modes: [SRE] },
  'drop-triggers': { shape: /^DROP TRIGGER /, modes: [AEL] },
  'rename-table': { shape: /^ALTER TABLE .* RENAME TO /, modes: [AEL] },
  'rename-index': { shape: /^ALTER INDEX .* RENAME TO /, modes: [SUE] },
  'rename-sequence': { shape: /^ALTER SEQUENCE .* RENAME TO /, modes: [AEL] },
  'cluster-on': { shape: /^ALTER TABLE .* CLUSTER ON /, modes: [SUE] },
  'replica-identity': { shape: /^ALTER TABLE .* REPLICA IDENTITY /, modes: [AEL] },
  'add-identity': { shape: /^ALTER TABLE .* ADD GENERATED .* AS IDENTITY /, modes: [AEL] },
  'drop-identity': { shape: /^ALTER TABLE .* DROP IDENTITY;$/, modes: [AEL] },
  'alter-sequence': { shape: /^ALTER SEQUENCE .* (OWNED BY|AS) /, modes: [SRE] },
  'sequence-value': { shape: /^SELECT pg_catalog\.setval\(/, modes: [] },
  comment: { shape: /^COMMENT ON (TABLE|COLUMN|INDEX|SEQUENCE) /, modes: [SUE] },
  'comment-object': { shape: /^COMMENT ON (CONSTRAINT|STATISTICS) /, modes: [] },
  'move-foreign-key': {
    shape: /^ALTER TABLE .* DROP CONSTRAINT .*;\nALTER TABLE .* ADD CONSTRAINT .* FOREIGN KEY .* NOT VALID;/,
    modes: [AEL, SRE],
  },
  'validate-foreign-key': { shape: /ALTER TABLE .* VALIDATE CONSTRAINT /, modes: [SUE] },
  privileges: { shape: /^(DO |GRANT )/, modes: [] },
  'replace-view': { shape: /^CREATE OR REPLACE VIEW /, modes: [AEL] },
  'replace-function': { shape: /^CREATE (OR REPLACE )?(FUNCTION|PROCEDURE) /i, modes: [] },
  'move-publication': {
    shape: /^ALTER PUBLICATION .* DROP TABLE ONLY .*;\nALTER PUBLICATION .* ADD TABLE ONLY /,
    modes: [SUE],
  },
};
