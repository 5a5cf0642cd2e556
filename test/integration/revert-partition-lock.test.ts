/**
 * Revert of a table rebuilt as partitions (--partition-by): after the swap the live table is partitioned,
 * and an application may write straight into a partition. Such a write locks only that partition (a
 * DELETE never touches the parent), so the revert's ACCESS EXCLUSIVE must cover the partitions too:
 * else the write is logged after the apply under the lock and the table put back lacks it.
 * The twin table is the oracle.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, psql } from '../helpers/rebuild.js';
import { until } from '../helpers/live-run.js';
import { createDemoSchema } from '../../src/dev/workload.js';

const databases: FreshDatabase[] = [];
const clients: pg.Client[] = [];
afterAll(async () => {
  for (const c of clients.splice(0)) await c.end().catch(() => undefined);
  for (const db of databases.splice(0)) await db.drop().catch(() => undefined);
});

async function session(url: string, name: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: name });
  c.on('error', () => undefined);
  await c.connect();
  clients.push(c);
  return c;
}

const COLS = 'id, customer_id, email, qty, note, created_at';

describe.each(['psql', 'runner'] as const)('revert of a partitioned table (%s)', (executor) => {
  it('a DELETE straight into a partition waits for the revert and is not lost', async () => {
    const db = await freshDatabase('revert_partition_lock');
    databases.push(db);
    await withClient(db.url, async (c) => {
      await createDemoSchema(c, 600);
      // Partitionable: no foreign key into it, no unique key without created_at; no generated column
      // (the twin has none to compare).
      await c.query(`
        DROP TABLE app.order_items;
        ALTER TABLE app.orders DROP CONSTRAINT orders_email_key, DROP CONSTRAINT orders_customer_id_fkey, DROP COLUMN total;
        UPDATE app.orders SET created_at = created_at + (id % 6) * interval '1 month';
        UPDATE app.orders_twin t SET created_at = o.created_at FROM app.orders o WHERE o.id = t.id;`);
    });
    const out = mkdtempSync(join(tmpdir(), 'sp-plan-'));
    const p = await cli([
      'plan',
      '--table',
      'app.orders',
      '--out',
      out,
      '--url',
      db.url,
      '--partition-by',
      'range(created_at)',
      '--interval',
      '1 month',
      '--partitions-ahead',
      '1',
    ]);
    expect(p.code, p.stderr).toBe(0);
    const s = await cli(['run', '--plan', out, '--url', db.url, '--until', 'swap']);
    expect(s.code, s.stderr).toBe(0);
    const mon = await session(db.url, 'monitor');
    const part = String(
      (await mon.query('SELECT tableoid::regclass::text AS t FROM app.orders WHERE id = 7')).rows[0].t,
    );
    expect(part).not.toBe('app.orders');
    const deleter = await session(db.url, 'deleter');
    // The deleter takes its lock on the partition first and keeps it: the revert cannot lock the
    // partitions until it commits, and then it applies the delete.
    await deleter.query('BEGIN');
    await deleter.query(`DELETE FROM ${part} WHERE id = 7`);
    await mon.query('DELETE FROM app.orders_twin WHERE id = 7');
    let ended = false;
    const revert = (
      executor === 'psql'
        ? psql(db.url, join(out, '91-revert.sql'))
        : cli(['run', '--plan', out, '--url', db.url, '--stage', 'revert'])
    ).finally(() => (ended = true));
    // The revert has reached its lock step, or waits for a lock (or, not waiting for the deleter at all, has ended).
    expect(
      await until(async () => {
        const r = await mon.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'shadowpack/%/revert' AND (query LIKE '%pg_stat_clear_snapshot%' OR wait_event_type = 'Lock')",
        );
        return r.rowCount || ended ? true : null;
      }, 60_000),
    ).toBe(true);
    await new Promise((res) => setTimeout(res, 500));
    await deleter.query('COMMIT');
    const r = await revert;
    expect(r.code, r.stderr).toBe(0);
    const diff = await mon.query<{ missing: number; extra: number }>(`SELECT
      (SELECT count(*)::int FROM (SELECT ${COLS} FROM app.orders_twin EXCEPT ALL SELECT ${COLS} FROM app.orders) x) AS missing,
      (SELECT count(*)::int FROM (SELECT ${COLS} FROM app.orders EXCEPT ALL SELECT ${COLS} FROM app.orders_twin) x) AS extra`);
    expect(diff.rows[0]).toEqual({ missing: 0, extra: 0 });
    expect((await mon.query("SELECT relkind FROM pg_class WHERE oid = 'app.orders'::regclass")).rows[0].relkind).toBe(
      'r',
    );
    expect(await leftovers(mon)).toEqual([]);
  }, 120_000);
});
