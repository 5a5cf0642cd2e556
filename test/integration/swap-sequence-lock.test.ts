/**
 * The swap's steps lock the table's sequences (ALTER SEQUENCE … OWNED BY, an identity's rename),
 * and nextval() holds ROW EXCLUSIVE on a sequence until its transaction ends. A session that took
 * an id and sits in its transaction (an ORM fetching ids ahead) must hold up the swap's lock step,
 * which waits for it without holding anything, not the statement inside the locked transaction,
 * which would keep every reader and writer of the table waiting until the swap's statement_timeout.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, planTable } from '../helpers/rebuild.js';
import { liveStage } from '../helpers/live-stage.js';
import { createDemoSchema } from '../../src/dev/workload.js';

const databases: FreshDatabase[] = [];
const clients: pg.Client[] = [];

afterAll(async () => {
  for (const c of clients.splice(0)) await c.end().catch(() => undefined);
  for (const db of databases.splice(0)) await db.drop().catch(() => undefined);
});

async function prepared(name: string): Promise<{ db: FreshDatabase; plan: Awaited<ReturnType<typeof planTable>> }> {
  const db = await freshDatabase(name);
  databases.push(db);
  await withClient(db.url, (c) => createDemoSchema(c, 200));
  const plan = await planTable(db.url, 'app', 'orders', {
    lockTimeoutMs: 100,
    lockAttempts: 100,
    lockBudgetMs: 20_000,
    backoffBaseMs: 20,
    backoffMaxMs: 50,
    swapStatementTimeoutMs: 2_000,
  });
  const ran = await cli(['run', '--plan', plan.dir, '--url', db.url, '--until', 'catchup']);
  expect(ran.code, ran.stderr).toBe(0);
  return { db, plan };
}

describe("a session holding the table's sequence (nextval in an open transaction) at the swap", () => {
  it.each(['runner', 'psql'] as const)(
    'is waited for by the lock step, not under the lock: the swap names it, then completes once it commits (%s)',
    async (via) => {
      const { db, plan } = await prepared(`swap_seq_${via}`);
      const holder = new pg.Client({ connectionString: db.url, application_name: 'id-prefetch' });
      holder.on('error', () => undefined);
      await holder.connect();
      clients.push(holder);
      const pid = Number((await holder.query('SELECT pg_backend_pid() AS p')).rows[0].p);
      await holder.query('BEGIN');
      await holder.query("SELECT nextval('app.orders_id_seq')");

      const swap = liveStage(plan, db.url, 'swap', via);
      // Named by the lock step (it waits, holding nothing), as any session holding a conflicting lock.
      const named = await swap.seen(new RegExp(`pid ${pid} \\(`), 20_000);
      await holder.query('COMMIT');
      const exit = await swap.exit;
      expect(exit.stderr).not.toMatch(/statement timeout/);
      expect(named, exit.stdout + exit.stderr).toBe(true);
      expect(exit.code, exit.stderr).toBe(0);
    },
    120_000,
  );
});
