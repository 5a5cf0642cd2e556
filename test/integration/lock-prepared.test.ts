/**
 * A prepared transaction (PREPARE TRANSACTION) holds its locks with no session: pg_locks shows
 * them without a pid. The lock steps must see it as a long-held blocker (never queue the
 * application behind it) and name its gid, with how to finish it.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, planTable, psql } from '../helpers/rebuild.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let db: FreshDatabase | undefined;

afterAll(async () => {
  // A prepared transaction left behind would keep the database from being dropped.
  if (db)
    await withClient(db.url, (c) =>
      c.query('SELECT gid FROM pg_prepared_xacts WHERE database = current_database()').then(async (r) => {
        for (const row of r.rows as { gid: string }[]) await c.query(`ROLLBACK PREPARED '${row.gid}'`);
      }),
    ).catch(() => undefined);
  await db?.drop();
});

describe('lock steps and prepared transactions', () => {
  it('setup names the prepared transaction holding the table and makes no attempt behind it (runner and psql)', async (ctx) => {
    db = await freshDatabase('lock_prepared');
    const url = db.url;
    const enabled = await withClient(
      url,
      async (c) => Number((await c.query('SHOW max_prepared_transactions')).rows[0].max_prepared_transactions) > 0,
    );
    // The embedded test server enables them (test/helpers/global-setup.ts); an external one may not.
    if (!enabled) ctx.skip();
    await withClient(url, (c) =>
      c.query(
        'CREATE TABLE public.t (id int PRIMARY KEY, v int); INSERT INTO public.t SELECT g, g FROM generate_series(1, 100) g',
      ),
    );
    const plan = await planTable(url, 'public', 't', { lockAttempts: 3, backoffBaseMs: 50, lockTimeoutMs: 100 });
    await withClient(url, (c) =>
      c.query("BEGIN; UPDATE public.t SET v = -7 WHERE id = 7; PREPARE TRANSACTION 'sp_test_px1'"),
    );
    // Older than one attempt: a long-held blocker, like a session in a transaction that old.
    await sleep(150);

    const runner = await cli(['run', '--plan', plan.dir, '--url', url, '--until', 'setup']);
    const viaPsql = await psql(url, join(plan.dir, '01-setup.sql'));
    for (const [r, code] of [
      [runner, 2],
      [viaPsql, 3],
    ] as const) {
      expect(r.code, r.stdout).toBe(code);
      expect(r.stderr).toMatch(
        /could not take SHARE ROW EXCLUSIVE on .*"public"\."t".* after 3 rounds \(0 attempts\): held by prepared transaction 'sp_test_px1' \(owner \w+, prepared [^)]+\); nothing was changed/,
      );
      expect(r.stderr).toMatch(/COMMIT PREPARED or ROLLBACK PREPARED 'sp_test_px1'/);
    }
    await withClient(url, async (c) => {
      expect(await leftovers(c)).toEqual([]);
      await c.query("COMMIT PREPARED 'sp_test_px1'");
    });
    // Once it is finished the stage goes through.
    const ok = await psql(url, join(plan.dir, '01-setup.sql'));
    expect(ok.code, ok.stderr).toBe(0);
    const abort = await psql(url, join(plan.dir, '90-abort.sql'));
    expect(abort.code, abort.stderr).toBe(0);
    await withClient(url, async (c) => expect(await leftovers(c)).toEqual([]));
  });
});
