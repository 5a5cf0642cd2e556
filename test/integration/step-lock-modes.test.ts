/**
 * The lock modes each kind of step takes (test/helpers/step-kind-locks.ts, against which
 * test/unit/step-locks.test.ts checks every step the compiler writes), as PostgreSQL takes them:
 * one statement of each kind runs in a transaction, and pg_locks says which relations that existed
 * before it are locked in which mode. Plain reads and row writes (ACCESS SHARE, ROW SHARE, ROW
 * EXCLUSIVE) are left out, as the steps leave them out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LockMode, StepKind } from '../../src/compile/step.js';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { IMPLIED } from '../helpers/step-kind-locks.js';

/** One statement of each kind, on the schema below; a kind added to step.ts needs one here. */
const SAMPLES: { readonly [K in StepKind]: string } = {
  'session-setting': "SET default_tablespace = ''",
  check: "DO $$BEGIN PERFORM FROM pg_class WHERE oid = 't'::regclass; END$$",
  'add-constraint': 'ALTER TABLE t ADD CONSTRAINT t_b_key UNIQUE (b)',
  'alter-copy': 'ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0',
  'create-index': 'CREATE INDEX IF NOT EXISTS t_b_idx ON t (b)',
  'create-partition': 'CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (0) TO (10) WITH (autovacuum_enabled = false)',
  'create-statistics': 'CREATE STATISTICS IF NOT EXISTS st_b ON a, b FROM t',
  'alter-statistics': 'ALTER STATISTICS st RENAME TO st_aside',
  'column-storage': 'ALTER TABLE t ALTER COLUMN b SET STORAGE EXTERNAL',
  'column-statistics': "ALTER TABLE t ALTER COLUMN b SET (n_distinct = '5')",
  // The strongest a storage parameter takes (most take SHARE UPDATE EXCLUSIVE).
  'storage-parameters': "ALTER TABLE t SET (user_catalog_table = 'true')",
  'autovacuum-reset': 'ALTER TABLE t RESET (autovacuum_enabled, toast.autovacuum_enabled);',
  'row-security': 'CREATE POLICY pol ON t AS PERMISSIVE FOR SELECT TO PUBLIC USING (true)',
  'create-trigger':
    'CREATE TRIGGER tg2\n  AFTER INSERT ON t\n  FOR EACH ROW EXECUTE FUNCTION tf();\nALTER TABLE t ENABLE ALWAYS TRIGGER tg2;',
  'trigger-state': 'ALTER TABLE t DISABLE TRIGGER tg',
  'drop-triggers': 'DROP TRIGGER tg ON t',
  'rename-table': 'ALTER TABLE t RENAME TO t_aside',
  'rename-index': 'ALTER INDEX t_a_idx RENAME TO t_a_aside',
  'rename-sequence': 'ALTER SEQUENCE sq RENAME TO sq_aside',
  'cluster-on': 'ALTER TABLE t CLUSTER ON t_pkey',
  'replica-identity': 'ALTER TABLE t REPLICA IDENTITY FULL',
  'add-identity': 'ALTER TABLE t3 ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME t3_seq)',
  'drop-identity': 'ALTER TABLE t2 ALTER COLUMN id DROP IDENTITY;',
  'alter-sequence': 'ALTER SEQUENCE sq OWNED BY t.a',
  'sequence-value': "SELECT pg_catalog.setval('sq'::regclass, 5)",
  comment: "COMMENT ON INDEX t_a_idx IS 'x'",
  'comment-object': "COMMENT ON CONSTRAINT t_pid_fkey ON t IS 'x'",
  // As at the swap: dropped from the table that steps aside, added on the one that takes its place.
  'move-foreign-key':
    'ALTER TABLE t DROP CONSTRAINT t_pid_fkey;\nALTER TABLE t2 ADD CONSTRAINT t2_x_fkey FOREIGN KEY (x) REFERENCES p(id) NOT VALID;',
  'validate-foreign-key': 'ALTER TABLE ch VALIDATE CONSTRAINT ch_tid_fkey',
  privileges: 'GRANT SELECT ON t TO PUBLIC',
  'replace-view': 'CREATE OR REPLACE VIEW v AS SELECT * FROM t',
  'replace-function':
    'CREATE OR REPLACE FUNCTION f() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM t; END',
  'move-publication': 'ALTER PUBLICATION pb DROP TABLE ONLY t;\nALTER PUBLICATION pb ADD TABLE ONLY t;',
};

const SCHEMA = `
CREATE TABLE p (id int PRIMARY KEY);
CREATE TABLE t (id int PRIMARY KEY, a int, b text, pid int REFERENCES p (id));
CREATE INDEX t_a_idx ON t (a);
CREATE TABLE ch (id int, tid int);
ALTER TABLE ch ADD CONSTRAINT ch_tid_fkey FOREIGN KEY (tid) REFERENCES t (id) NOT VALID;
CREATE TABLE t2 (id int GENERATED ALWAYS AS IDENTITY, x int);
CREATE TABLE t3 (id int NOT NULL);
CREATE TABLE pt (id int, k int) PARTITION BY RANGE (k);
CREATE STATISTICS st ON a, id FROM t;
CREATE SEQUENCE sq OWNED BY t.id;
CREATE PUBLICATION pb FOR TABLE t;
CREATE VIEW v AS SELECT * FROM t;
CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER tg AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION tf();
`;

const MODE: Readonly<Record<string, LockMode>> = {
  AccessShareLock: 'ACCESS SHARE',
  RowShareLock: 'ROW SHARE',
  RowExclusiveLock: 'ROW EXCLUSIVE',
  ShareUpdateExclusiveLock: 'SHARE UPDATE EXCLUSIVE',
  ShareLock: 'SHARE',
  ShareRowExclusiveLock: 'SHARE ROW EXCLUSIVE',
  ExclusiveLock: 'EXCLUSIVE',
  AccessExclusiveLock: 'ACCESS EXCLUSIVE',
};
const ORDER: readonly LockMode[] = Object.values(MODE);
const LISTED = new Set<LockMode>([
  'SHARE UPDATE EXCLUSIVE',
  'SHARE',
  'SHARE ROW EXCLUSIVE',
  'EXCLUSIVE',
  'ACCESS EXCLUSIVE',
]);

let db: FreshDatabase;

beforeAll(async () => {
  db = await freshDatabase('step_lock_modes');
  await withClient(db.url, (c) => c.query(SCHEMA));
});

afterAll(async () => {
  await db?.drop();
});

describe('each kind of step takes the lock modes it is said to take', () => {
  it('runs one statement of each kind and reads its locks from pg_locks', async () => {
    const found = await withClient(db.url, async (c) => {
      const out: Record<string, { shape: boolean; modes: string[] }> = {};
      for (const [kind, sql] of Object.entries(SAMPLES) as [StepKind, string][]) {
        await c.query('BEGIN');
        // Relations that exist before the statement: locks on what it creates are not listed.
        await c.query('CREATE TEMP TABLE IF NOT EXISTS before_oids (oid oid) ON COMMIT DELETE ROWS');
        await c.query("INSERT INTO before_oids SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace");
        await c.query(sql);
        const { rows } = await c.query<{ relation: string; mode: string }>(
          `SELECT l.relation::regclass::text AS relation, l.mode FROM pg_locks l
            WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.relation IN (SELECT oid FROM before_oids)`,
        );
        await c.query('ROLLBACK');
        // The strongest mode on each relation, as a step lists them.
        const strongest = new Map<string, LockMode>();
        for (const r of rows) {
          const m = MODE[r.mode]!;
          const had = strongest.get(r.relation);
          if (had === undefined || ORDER.indexOf(m) > ORDER.indexOf(had)) strongest.set(r.relation, m);
        }
        out[kind] = {
          shape: IMPLIED[kind].shape.test(sql),
          modes: [...new Set([...strongest.values()].filter((m) => LISTED.has(m)))].sort(),
        };
      }
      return out;
    });
    const expected = Object.fromEntries(
      (Object.keys(SAMPLES) as StepKind[]).map((k) => [k, { shape: true, modes: [...IMPLIED[k].modes].sort() }]),
    );
    expect(found).toEqual(expected);
  });
});
