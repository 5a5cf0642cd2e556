/**
 * The backfill leaves out the rows whose key the change log holds (issue 14: no settle round over the
 * un-indexed copy). Deterministic interleavings between batches, with the run's own pause control and
 * a lock on the copy stepping the backfill one batch at a time: rows copied and then updated, moved
 * to a later page, given a new key or deleted; keys changed and rows deleted before their batch; a row
 * inserted into a range already copied; a unique value moved from a copied row to one not copied yet;
 * a writer transaction open across batches that commits after a later one; a prepared transaction
 * committed after the backfill; rollbacks (one after a batch read its log entry as in progress).
 * After the backfill the copy must hold no key twice and, for every key the log does not hold,
 * exactly the table's row; an apply before every page is copied is refused. After the whole run the table equals a twin written in the same transactions. When the
 * copying statement is handed to the table's owner (a superuser runs the plan), the owner cannot read
 * the log: then every row is copied and the log is settled once, as before.
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable, psql, type Exit } from '../helpers/rebuild.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const databases: FreshDatabase[] = [];
const OWNER = 'sp_skip_logged_owner';

afterAll(async () => {
  for (const db of databases.splice(0)) await db.drop().catch(() => undefined);
});

async function waitFor(what: string, c: pg.ClientBase, sql: string, params: unknown[] = []): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    await c.query('SELECT pg_stat_clear_snapshot()');
    if (((await c.query(sql, params)).rowCount ?? 0) > 0) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Writes the table and its twin in one transaction on `c` (open or autocommit). */
async function both(c: pg.ClientBase, sql: string): Promise<void> {
  await c.query(sql.replaceAll('$T', 's.t'));
  await c.query(sql.replaceAll('$T', 's.t_twin'));
}

/**
 * handedToOwner: a superuser runs the plan for another owner, which cannot read the log. bigLog: the
 * log is past 2 MB when the backfill starts, so each batch copies every row (reading the log would
 * cost more than settling once). Either way the log is settled once after the last batch.
 */
type Variant = { executor: 'runner' | 'psql'; handedToOwner: boolean; bigLog: boolean };

const VARIANTS: Variant[] = [
  { executor: 'psql', handedToOwner: false, bigLog: false },
  { executor: 'runner', handedToOwner: false, bigLog: false },
  { executor: 'psql', handedToOwner: true, bigLog: false },
  { executor: 'runner', handedToOwner: false, bigLog: true },
];

describe.each(VARIANTS)(
  'backfill between writes ($executor, handed to the owner: $handedToOwner, log past 2 MB: $bigLog)',
  (v) => {
    it('copies no key twice, leaves the logged keys to the catch-up, and ends equal to the twin', async () => {
      const db = await freshDatabase(
        `skip_logged_${v.executor}_${v.handedToOwner ? 'owner' : 'runner'}${v.bigLog ? '_big' : ''}`,
      );
      databases.push(db);
      const admin = new pg.Client({ connectionString: db.url });
      const holder = new pg.Client({ connectionString: db.url });
      const w = new pg.Client({ connectionString: db.url });
      const w2 = new pg.Client({ connectionString: db.url });
      const w3 = new pg.Client({ connectionString: db.url });
      for (const c of [admin, holder, w, w2, w3]) {
        c.on('error', () => undefined);
        await c.connect();
      }
      let running: Promise<Exit> | null = null;
      try {
        // About 32 rows per 8 kB page, 63 pages; free space in page 0 and in the middle (VACUUM), so
        // updates that do not fit their page move there, and inserts land in ranges already copied.
        await admin.query(`
        CREATE SCHEMA s;
        CREATE TABLE s.t (id int PRIMARY KEY, email text NOT NULL UNIQUE, v int NOT NULL, pad text) WITH (autovacuum_enabled = false);
        INSERT INTO s.t SELECT g, 'e' || g, g, repeat('x', 200) FROM generate_series(1, 2000) g;
        CREATE TABLE s.t_twin AS TABLE s.t;
        DELETE FROM s.t WHERE id <= 20 OR id BETWEEN 1001 AND 1040;
        DELETE FROM s.t_twin WHERE id <= 20 OR id BETWEEN 1001 AND 1040;`);
        await admin.query('VACUUM s.t');
        if (v.handedToOwner) {
          await admin.query(`DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${OWNER}') THEN CREATE ROLE ${OWNER}; END IF; END $$`);
          await admin.query(`GRANT USAGE ON SCHEMA s TO ${OWNER}; ALTER TABLE s.t OWNER TO ${OWNER}`);
        }
        const plan: LoadedPlan = await planTable(db.url, 's', 't', { batchPages: 10 });
        const id = plan.manifest.runId;
        const copy = `s._sp_${id}_new`;
        const control = `shadowpack.control_${id}`;
        const stages = plan.manifest.stages.filter((x) => !x.offPath);
        const psqlStages = async (from: string, until: string): Promise<Exit> => {
          const list = stages.slice(
            stages.findIndex((x) => x.name === from),
            stages.findIndex((x) => x.name === until) + 1,
          );
          for (const x of list) {
            const r = await psql(db.url, join(plan.dir, x.file));
            if (r.code !== 0) return r;
          }
          return { code: 0, signal: null, stdout: '', stderr: '' };
        };
        const setup =
          v.executor === 'runner'
            ? await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'setup'])
            : await psqlStages('preflight', 'setup');
        expect(setup.code, setup.stderr).toBe(0);
        if (v.bigLog) {
          // 60,000 entries (about 2.6 MB) for keys the table does not have: the apply finds nothing for them.
          await admin.query(`INSERT INTO shadowpack.log_${id} (k1) SELECT g FROM generate_series(900001, 960000) g`);
        }
        const pagesDone = async () =>
          Number(
            (await admin.query('SELECT backfill_next AS n FROM shadowpack.runs WHERE run_id = $1', [id])).rows[0].n,
          );

        // One batch, then paused: hold the batch's INSERT on the copy, pause meanwhile, let it go.
        const step = async (first: boolean) => {
          const before = await pagesDone();
          await holder.query('BEGIN');
          await holder.query(`LOCK TABLE ${copy} IN SHARE MODE`);
          if (first) {
            running =
              v.executor === 'runner'
                ? cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'backfill'])
                : psqlStages('backfill', 'backfill');
          } else await admin.query(`UPDATE ${control} SET paused = false`);
          await waitFor(
            'a batch to wait for the copy',
            admin,
            `SELECT FROM pg_locks WHERE relation = '${copy}'::regclass AND NOT granted`,
          );
          await admin.query(`UPDATE ${control} SET paused = true`);
          await holder.query('COMMIT');
          await waitFor(
            'the pause after the batch',
            admin,
            `SELECT FROM shadowpack.runs r, ${control} c WHERE r.run_id = $1 AND r.backfill_next > $2 AND c.waiting_for IS NOT NULL`,
            [id, before],
          );
        };

        await step(true); // pages 0-9: ids 21 to about 340
        expect(await pagesDone()).toBe(10);
        // An apply now would remove log entries a later batch relies on.
        // (The catch-up procedure would first wait for the pause: its apply, as each round calls it.)
        await admin.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await expect(admin.query(`SELECT shadowpack.apply_${id}()`)).rejects.toThrow(
          /cannot be applied before the backfill has copied every page/,
        );
        await admin.query('ROLLBACK');
        await both(w, `UPDATE $T SET pad = repeat('y', 300) WHERE id = 50`); // copied, moves to another page
        await both(w, `UPDATE $T SET id = 100060 WHERE id = 60`); // copied, new key
        await both(w, `UPDATE $T SET id = 101500 WHERE id = 1500`); // not copied yet, new key
        await both(w, `DELETE FROM $T WHERE id IN (70, 1600)`); // copied; not copied yet
        await both(w, `INSERT INTO $T VALUES (200001, 'new1', 1, 'n')`); // into free space of a copied page
        // A unique value moves from a copied row to one not copied yet.
        await w.query('BEGIN');
        await both(w, `UPDATE $T SET email = 'm80' WHERE id = 80`);
        await both(w, `UPDATE $T SET email = 'e80', pad = repeat('z', 300) WHERE id = 1700`);
        await w.query('COMMIT');
        // A writer open across the next batches: updates a row of the third batch (pages 20-29).
        await w2.query('BEGIN');
        await both(w2, `UPDATE $T SET v = -900, pad = repeat('w', 300) WHERE id = 900`);
        // And one that rolls back after that batch read its log entry as in progress: row 910 is copied
        // as it was, once; its moved version (pages 30-39) is dead when that batch reads it.
        await w3.query('BEGIN');
        await both(w3, `UPDATE $T SET v = -910, pad = repeat('u', 300) WHERE id = 910`);
        // A prepared transaction, committed only after the backfill.
        await w.query('BEGIN');
        await both(w, `UPDATE $T SET v = -1200, pad = repeat('p', 300) WHERE id = 1200`);
        await both(w, `DELETE FROM $T WHERE id = 1201`);
        await w.query(`PREPARE TRANSACTION 'sp_skip_${id}'`);
        // Rolled back: nothing of it may arrive.
        await w.query('BEGIN');
        await both(w, `UPDATE $T SET id = 301300 WHERE id = 1300`);
        await w.query('ROLLBACK');
        await w.query('BEGIN');
        await both(w, `UPDATE $T SET v = -1310 WHERE id = 1310`);
        await w.query('SAVEPOINT a');
        await both(w, `DELETE FROM $T WHERE id = 1311`);
        await both(w, `UPDATE $T SET id = 301312 WHERE id = 1312`);
        await w.query('ROLLBACK TO SAVEPOINT a');
        await w.query('COMMIT');

        await step(false); // pages 10-19
        await step(false); // pages 20-29: row 900 as it was (its writer is still open)
        await w2.query('COMMIT');
        await w3.query('ROLLBACK');
        // A row of the copied range moves on into the ranges still to copy, and back again.
        await both(w, `UPDATE $T SET pad = repeat('q', 400) WHERE id = 100`);
        await both(w, `UPDATE $T SET pad = repeat('r', 100) WHERE id = 100`);
        await step(false); // pages 30-39
        await both(w, `UPDATE $T SET email = 'e' || id || 'b', pad = repeat('s', 300) WHERE id BETWEEN 1900 AND 1910`);
        await admin.query(`UPDATE ${control} SET paused = false`);
        const b = await running!;
        expect(b.code, b.stderr).toBe(0);

        const logged = Number((await admin.query(`SELECT count(*) AS n FROM shadowpack.log_${id}`)).rows[0].n);
        const dup = await admin.query(`SELECT id, count(*) FROM ${copy} GROUP BY id HAVING count(*) > 1`);
        expect(dup.rows, 'keys copied twice').toEqual([]);
        const stale = await admin.query(
          `SELECT c.id FROM ${copy} c LEFT JOIN s.t t USING (id)
          WHERE NOT EXISTS (SELECT FROM shadowpack.log_${id} l WHERE l.k1 = c.id)
            AND (t.id IS NULL OR ROW(c.email, c.v, c.pad) IS DISTINCT FROM ROW(t.email, t.v, t.pad))`,
        );
        expect(stale.rows, 'copied rows that differ from the table without a log entry').toEqual([]);
        if (v.handedToOwner || v.bigLog) {
          // Every row was copied and the log settled once.
          expect(logged).toBe(0);
        } else {
          expect(logged, 'keys left to the catch-up').toBeGreaterThan(10);
          // Copied with a key the log now holds: only rows written after their batch copied them (row
          // 900's writer was open across its batch); 1200 and 1201 are prepared, their entries not visible.
          const copiedLogged = await admin.query<{ id: number }>(
            `SELECT c.id FROM ${copy} c WHERE EXISTS (SELECT FROM shadowpack.log_${id} l WHERE l.k1 = c.id) ORDER BY c.id`,
          );
          expect(copiedLogged.rows.map((r) => r.id)).toEqual([50, 60, 70, 80, 100, 900]);
        }

        await w.query(`COMMIT PREPARED 'sp_skip_${id}'`);
        const rest =
          v.executor === 'runner'
            ? await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'cleanup'])
            : await psqlStages('build', 'cleanup');
        expect(rest.code, rest.stderr).toBe(0);
        const diff = await admin.query(`
        SELECT 'missing' AS what, * FROM (TABLE s.t_twin EXCEPT TABLE s.t) m
        UNION ALL SELECT 'extra', * FROM (TABLE s.t EXCEPT TABLE s.t_twin) x`);
        expect(diff.rows).toEqual([]);
        expect(Number((await admin.query('SELECT count(*) AS n FROM s.t')).rows[0].n)).toBe(1938);
        expect(await leftovers(admin)).toEqual([]);
      } finally {
        await w.query('ROLLBACK').catch(() => undefined);
        await admin
          .query(`SELECT format('ROLLBACK PREPARED %L', gid) AS q FROM pg_prepared_xacts WHERE gid LIKE 'sp_skip_%'`)
          .then(async (r) => {
            for (const row of r.rows) await admin.query(row.q);
          })
          .catch(() => undefined);
        await admin
          .query(
            `DO $$ DECLARE t text; BEGIN FOR t IN SELECT format('UPDATE shadowpack.%I SET paused = false', tablename) FROM pg_tables WHERE schemaname = 'shadowpack' AND tablename LIKE 'control%' LOOP EXECUTE t; END LOOP; END $$`,
          )
          .catch(() => undefined);
        for (const c of [admin, holder, w, w2, w3]) await c.end().catch(() => undefined);
        if (running) await Promise.race([running, sleep(10_000)]);
      }
    });
  },
);

/**
 * The mode changes between sessions: the owner may read the log while one session copies (it skips
 * logged keys), not while the next one does (it copies every row), and a third one, able to read it
 * again, finds every page copied. The settle must not depend on the mode of the session that gets
 * there: a row copied by the first session and moved into a later range was copied again by the
 * second. Both sessions are ended by pg_terminate_backend, the second between its last batch and the
 * settle.
 */
it('settles the log when an earlier session copied every row, whatever the settling session would do', async () => {
  const db = await freshDatabase('skip_logged_mixed_modes');
  databases.push(db);
  const admin = new pg.Client({ connectionString: db.url });
  const holder = new pg.Client({ connectionString: db.url });
  for (const c of [admin, holder]) {
    c.on('error', () => undefined);
    await c.connect();
  }
  const running: Promise<Exit>[] = [];
  try {
    await admin.query(`
      CREATE SCHEMA s;
      CREATE TABLE s.t (id int PRIMARY KEY, email text NOT NULL UNIQUE, v int NOT NULL, pad text) WITH (autovacuum_enabled = false);
      INSERT INTO s.t SELECT g, 'e' || g, g, repeat('x', 200) FROM generate_series(1, 2000) g;
      DELETE FROM s.t WHERE id BETWEEN 1001 AND 1040;`);
    await admin.query('VACUUM s.t');
    await admin.query(`DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${OWNER}') THEN CREATE ROLE ${OWNER}; END IF; END $$`);
    await admin.query(`GRANT USAGE ON SCHEMA s TO ${OWNER}; ALTER TABLE s.t OWNER TO ${OWNER}`);
    const plan: LoadedPlan = await planTable(db.url, 's', 't', { batchPages: 10 });
    const id = plan.manifest.runId;
    const copy = `s._sp_${id}_new`;
    const control = `shadowpack.control_${id}`;
    const stages = plan.manifest.stages.filter((x) => !x.offPath);
    const file = (name: string) => join(plan.dir, stages.find((x) => x.name === name)!.file);
    for (const name of ['preflight', 'setup']) {
      const r = await psql(db.url, file(name));
      expect(r.code, r.stderr).toBe(0);
    }
    const readLog = (grant: boolean) =>
      admin.query(
        grant
          ? `GRANT USAGE ON SCHEMA shadowpack TO ${OWNER}; GRANT SELECT ON shadowpack.log_${id} TO ${OWNER}`
          : `REVOKE USAGE ON SCHEMA shadowpack FROM ${OWNER}; REVOKE SELECT ON shadowpack.log_${id} FROM ${OWNER}`,
      );
    // One psql session of the backfill: its first batch (of batchPages) is copied, then it waits in
    // the pause and is terminated there.
    const oneBatchThenKill = async (batchPages: number) => {
      await admin.query(`UPDATE ${control} SET batch_pages = $1, paused = false`, [batchPages]);
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${copy} IN SHARE MODE`);
      const before = Number(
        (await admin.query('SELECT backfill_next AS n FROM shadowpack.runs WHERE run_id = $1', [id])).rows[0].n,
      );
      running.push(psql(db.url, file('backfill')));
      await waitFor(
        'a batch to wait for the copy',
        admin,
        `SELECT FROM pg_locks WHERE relation = '${copy}'::regclass AND NOT granted`,
      );
      const pid = (await admin.query(`SELECT pid FROM pg_locks WHERE relation = '${copy}'::regclass AND NOT granted`))
        .rows[0].pid;
      await admin.query(`UPDATE ${control} SET paused = true`);
      await holder.query('COMMIT');
      await waitFor(
        'the pause after the batch',
        admin,
        `SELECT FROM shadowpack.runs r, ${control} c WHERE r.run_id = $1 AND r.backfill_next > $2 AND c.waiting_for IS NOT NULL`,
        [id, before],
      );
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      expect((await running[running.length - 1]!).code).not.toBe(0);
    };

    await readLog(true);
    await oneBatchThenKill(10); // pages 0-9, logged keys skipped: row 50 copied
    await admin.query(`UPDATE s.t SET pad = repeat('y', 300) WHERE id = 50`); // moves to page 31 or 32
    await readLog(false);
    await oneBatchThenKill(1000); // pages 10-62, every row copied: row 50 again
    await readLog(true);
    await admin.query(`UPDATE ${control} SET paused = false`);
    const b = await psql(db.url, file('backfill')); // every page copied: only the settle is left
    expect(b.code, b.stderr).toBe(0);
    const dup = await admin.query(`SELECT id, count(*)::int AS n FROM ${copy} GROUP BY id HAVING count(*) > 1`);
    expect(dup.rows, 'keys copied twice').toEqual([]);
    await readLog(false);
    for (const x of stages.slice(
      stages.findIndex((y) => y.name === 'build'),
      stages.findIndex((y) => y.name === 'cleanup') + 1,
    )) {
      const r = await psql(db.url, join(plan.dir, x.file));
      expect(r.code, `${x.name}: ${r.stderr}`).toBe(0);
    }
    const kept = await admin.query(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE id = 50 AND pad = repeat('y', 300))::int AS moved FROM s.t`,
    );
    expect(kept.rows[0]).toEqual({ n: 1960, moved: 1 });
    expect(await leftovers(admin)).toEqual([]);
  } finally {
    for (const c of [admin, holder]) await c.end().catch(() => undefined);
    await Promise.race([Promise.allSettled(running), sleep(10_000)]);
  }
});
