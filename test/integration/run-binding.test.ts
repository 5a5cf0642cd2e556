import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { cli, leftovers, psql } from '../helpers/rebuild.js';

/** The plan id a plan folder records. */
function planIdIn(dir: string): string {
  const id = (JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { planId?: string }).planId;
  expect(id).toMatch(/^i1:[0-9a-f]{32}$/);
  return id!;
}

async function columns(url: string): Promise<string[]> {
  return withClient(url, async (c) =>
    (
      await c.query<{ n: string }>(
        "SELECT attname AS n FROM pg_attribute WHERE attrelid = 'public.small'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
      )
    ).rows.map((r) => r.n),
  );
}

/** The newcomer review's finding 1: a plain rebuild finished a run that a DROP COLUMN plan had started. */
describe('a run belongs to the plan that started it', () => {
  let db: FreshDatabase;
  const out = mkdtempSync(join(tmpdir(), 'sp-bind-'));
  beforeAll(async () => {
    db = await freshDatabase('run_binding');
    await withClient(db.url, (c) =>
      c.query(`
      CREATE TABLE public.small (id bigserial PRIMARY KEY, v int, w text);
      INSERT INTO public.small (v, w) SELECT g, 'row ' || g FROM generate_series(1, 3000) g;
      ANALYZE public.small`),
    );
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('refuses, under the runner and psql, to continue a run another plan started, naming both plans; its own plan finishes it', async () => {
    const a = join(out, 'A');
    const b = join(out, 'B');
    let r = await cli(['plan', '--table', 'public.small', '--out', a, '--alter', 'DROP COLUMN v', '--url', db.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('warning');
    r = await cli(['run', '--plan', a, '--until', 'backfill', '--url', db.url]);
    expect(r.code, r.stderr).toBe(0);

    // A plain rebuild planned while A's run is in progress: written, with a warning on stderr.
    r = await cli(['plan', '--table', 'public.small', '--out', b, '--url', db.url]);
    expect(r.code, r.stderr).toBe(0);
    const idA = planIdIn(a);
    const idB = planIdIn(b);
    expect(idB).not.toBe(idA);
    expect(r.stderr.trim().split('\n')).toEqual([
      `shadowpack: warning: a run on public.small is in progress (stage "backfill", plan ${idA}); this plan (${idB}) cannot run until that run is finished or aborted with its own plan`,
    ]);

    const refusal = `the run on "public"."small" was started by plan ${idA}, not by this plan (${idB})`;
    r = await cli(['run', '--plan', b, '--url', db.url, '--until', 'cleanup']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(refusal);
    expect(r.stderr).toMatch(/hint: Finish or abort that run with its own plan/);
    for (const file of [
      '03-build.sql',
      '04-catchup.sql',
      '05-swap.sql',
      '06-cleanup.sql',
      '91-revert.sql',
      '01-setup.sql',
    ]) {
      const p = await psql(db.url, join(b, file));
      expect(p.code, file).not.toBe(0);
      expect(p.stderr, file).toContain(refusal);
    }
    r = await cli(['status', '--plan', b, '--url', db.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`run of plan ${idA}; this is plan ${idB}: it will not continue that run`);
    r = await cli(['status', '--plan', a, '--url', db.url]);
    expect(r.stdout).toContain(`run of plan ${idA}, started `);
    expect(r.stdout).not.toContain('this is plan');
    expect(await columns(db.url)).toEqual(['id', 'v', 'w']);

    // The plan that started the run finishes it, as its review promised.
    r = await cli(['run', '--plan', a, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    expect(await columns(db.url)).toEqual(['id', 'w']);
    expect(
      await withClient(db.url, async (c) =>
        Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM public.small')).rows[0]!.n),
      ),
    ).toBe(3000);

    // The history outlives cleanup (and is all that is left).
    await withClient(db.url, async (c) => {
      expect(await leftovers(c)).toEqual([]);
      const h = await c.query('SELECT plan_id, outcome FROM shadowpack.history ORDER BY started_at');
      expect(h.rows).toEqual([{ plan_id: idA, outcome: 'cleaned' }]);
    });
  });

  it('lets any plan of the table abort a run, saying whose run it removes', async () => {
    const c = join(out, 'C');
    const d = join(out, 'D');
    let r = await cli([
      'plan',
      '--table',
      'public.small',
      '--out',
      c,
      '--alter',
      'ADD COLUMN extra int',
      '--url',
      db.url,
    ]);
    expect(r.code, r.stderr).toBe(0);
    r = await cli(['run', '--plan', c, '--until', 'setup', '--url', db.url]);
    expect(r.code, r.stderr).toBe(0);
    r = await cli(['plan', '--table', 'public.small', '--out', d, '--url', db.url]);
    expect(r.code, r.stderr).toBe(0);
    r = await cli(['run', '--plan', d, '--stage', 'abort', '--url', db.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).toContain(
      `aborting the run on "public"."small" that plan ${planIdIn(c)} started (this is plan ${planIdIn(d)})`,
    );
    await withClient(db.url, async (cl) => {
      expect(await leftovers(cl)).toEqual([]);
      const h = await cl.query('SELECT plan_id, outcome FROM shadowpack.history ORDER BY started_at');
      expect(h.rows.at(-1)).toEqual({ plan_id: planIdIn(c), outcome: 'aborted' });
    });
    expect(await columns(db.url)).toEqual(['id', 'w']);
    // An aborted plan may run again (nothing it promised happened); a finished one never does.
    r = await cli(['run', '--plan', d, '--url', db.url, '--until', 'cleanup']);
    expect(r.code, r.stderr).toBe(0);
    const idD = planIdIn(d);
    await withClient(db.url, async (cl) => {
      expect(await leftovers(cl)).toEqual([]);
      const h = await cl.query(
        'SELECT plan_id, outcome, started_by = current_user AS mine, ended_at >= started_at AS ordered FROM shadowpack.history ORDER BY started_at',
      );
      expect(h.rows.slice(-2)).toEqual([
        { plan_id: planIdIn(c), outcome: 'aborted', mine: true, ordered: true },
        { plan_id: idD, outcome: 'cleaned', mine: true, ordered: true },
      ]);
    });
    r = await cli(['status', '--plan', d, '--url', db.url]);
    expect(r.stdout).toMatch(
      new RegExp(
        `^public\\.small: plan ${idD} already rebuilt it \\(cleaned up at .* by \\S+\\); a plan runs once: make a new plan`,
      ),
    );
    const again = `plan ${idD} already rebuilt "public"."small" (cleaned up at `;
    r = await cli(['run', '--plan', d, '--url', db.url, '--until', 'cleanup']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(again);
    // Refused before anything is done: at preflight.
    expect(r.stderr).toMatch(/00-preflight\.sql:\d+:\d+: shadowpack: plan i1:/);
    expect(r.stderr).toMatch(/hint: Make a new plan with "shadowpack plan"/);
    for (const file of ['00-preflight.sql', '01-setup.sql']) {
      const p = await psql(db.url, join(d, file));
      expect(p.code, file).not.toBe(0);
      expect(p.stderr, file).toContain(again);
    }
    await withClient(db.url, async (cl) => expect(await leftovers(cl)).toEqual([]));
    // A plan made of the rebuilt table is a new plan.
    const e = join(out, 'E');
    r = await cli(['plan', '--table', 'public.small', '--out', e, '--url', db.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(planIdIn(e)).not.toBe(idD);
  });
});
