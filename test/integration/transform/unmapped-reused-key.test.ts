import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase, withClient } from '../../helpers/db.js';
import { cli } from '../../helpers/rebuild.js';
import { planCommand } from '../../../src/cli/commands/plan.js';

/**
 * Revert after --alter "DROP COLUMN status": the apply keeps, for a key the old table still holds,
 * the value that key's old row had in `status`. A key that after the swap was deleted and inserted
 * again, or taken over by another row through a key change, is a different row, but it names a key
 * the old table holds: it must not inherit the deleted row's status (the README promises the
 * column's default to rows inserted, or re-keyed, after the swap).
 */
describe('revert after --alter "DROP COLUMN status" with keys reused after the swap', () => {
  // Before the capture marked a key the source took away (gone), the apply kept the target's value
  // for every logged key it held: on main c819959 row 5 kept the deleted row's 'shipped' and row 8
  // (row 7 re-keyed onto it) got row 8's old 'shipped'.
  it("gives a re-inserted key and a key taken over by another row the default, not the deleted row's status", async () => {
    const db = await freshDatabase('unmapped_reused_key');
    try {
      await withClient(db.url, (c) =>
        c.query(`
        CREATE TABLE public.orders (id integer PRIMARY KEY, v integer NOT NULL, status text NOT NULL DEFAULT 'new');
        INSERT INTO public.orders SELECT g, g, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3] FROM generate_series(1, 500) g;
        ANALYZE public.orders`),
      );
      const out = join(mkdtempSync(join(tmpdir(), 'sp-reused-')), 'orders');
      await planCommand(
        { table: 'public.orders', out, url: db.url, options: { batchPages: 2 }, alter: ['DROP COLUMN status'] },
        () => undefined,
      );
      const f = await cli(['run', '--plan', out, '--url', db.url, '--until', 'swap']);
      expect(f.code, f.stderr).toBe(0);
      await withClient(db.url, async (c) => {
        // The rebuilt table has no status. Row 4 ('paid' in the old table) is only updated: it keeps 'paid'.
        await c.query('UPDATE public.orders SET v = -4 WHERE id = 4');
        // Row 5 ('shipped') is deleted and a new row 5 inserted.
        await c.query('DELETE FROM public.orders WHERE id = 5');
        await c.query('INSERT INTO public.orders (id, v) VALUES (5, -5)');
        // Row 8 ('shipped') moves to key 100006, then row 7 ('paid') takes key 8.
        await c.query('UPDATE public.orders SET id = 100006 WHERE id = 8');
        await c.query('UPDATE public.orders SET id = 8 WHERE id = 7');
      });
      const r = await cli(['run', '--plan', out, '--url', db.url, '--stage', 'revert']);
      expect(r.code, r.stderr).toBe(0);
      await withClient(db.url, async (c) => {
        const rows = (
          await c.query<{ id: number; v: number; status: string }>(
            'SELECT id, v, status FROM public.orders WHERE id IN (4, 5, 8, 100006) ORDER BY id',
          )
        ).rows;
        expect(rows).toEqual([
          { id: 4, v: -4, status: 'paid' },
          { id: 5, v: -5, status: 'new' },
          { id: 8, v: 7, status: 'new' },
          { id: 100006, v: 8, status: 'new' },
        ]);
      });
    } finally {
      await db.drop();
    }
  });
});
