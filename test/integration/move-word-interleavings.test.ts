/**
 * Two target sessions writing the source's state row through postgres_fdw at once (issue 15), source 14 -> target
 * 17, psql beside the runner on one pair taken to the end. Such a write runs REPEATABLE READ on the source and
 * fails with SQLSTATE 40001 when the row changed after that snapshot, so every one takes the rounds' lock (the
 * target's state row FOR UPDATE) first; a second session then begins its source transaction after the first's
 * commit. A row trigger on the source's state table holds the first session to write a stage there (waiting on an
 * advisory lock) while the second comes:
 * - two catch-ups, the first held in its word 'ready-for-fence' (737530d took the lock there; this pins it);
 * - two cut-overs, the first held in its word 'cutover-started': the second failed to serialize waiting for that
 *   row; now it waits, then one cuts over and the other refuses;
 * - 08-cleanup.target.sql started while the cut-over is held in its last word ('cutover'): its own word ('cutover'
 *   again, idempotent) failed to serialize; now it waits for the cut-over's.
 * - two aborts (psql's 90-abort.target.sql held in its word 'target-aborted', the runner's beside it): the second
 *   failed to serialize ('could not tell the source that the target aborts'); now it waits for the rounds' lock,
 *   and the drops after the word take it too (both dropping at once deadlocked); an abort run again says nothing.
 * And the runner's read of the target's state while that cleanup drops it (found by the test above, once in ~10
 * runs): it failed as an internal error ('relation "shadowpack.move_…" does not exist'); now no run there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareMoveWithTwins } from '../helpers/move-fixture.js';
import { MOVE_SOURCE_MISSING, startMoveServers, type MovePair, type MoveServers } from '../helpers/move-servers.js';
import { newStagedMove, waitingFor, type StagedMove } from '../helpers/move-stage-runner.js';

let servers: MoveServers;
let root: string;
const pairs: MovePair[] = [];

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-word-il-'));
}, 120_000);

afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

/** A stage run in the background; `ended` is its outcome once it has ended. */
interface Running {
  readonly outcome: Promise<string>;
  ended?: string;
}
const running = (outcome: Promise<string>): Running => {
  const r: Running = { outcome };
  void outcome.then((o) => (r.ended = o));
  return r;
};
const runner = (m: StagedMove, ...extra: string[]): Running =>
  running(m.cli('run', ...extra).then((o) => (o.code === 0 ? 'ok' : o.stderr)));

/**
 * Polls `check` until it is true; fails at once, with its outcome, when one of `runs` ended meanwhile (a stage
 * that should be waiting failed instead).
 */
async function until(check: () => Promise<boolean>, what: string, runs: readonly Running[]): Promise<void> {
  const end = Date.now() + 20_000;
  for (;;) {
    if (await check()) return;
    const gone = runs.find((r) => r.ended !== undefined);
    if (gone) throw new Error(`a stage ended before ${what}: ${gone.ended}`);
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

/** `sql` (a boolean `ok`) is true on one of `sides`. */
const onSide = (m: StagedMove, sides: readonly ('src' | 'tgt')[], sql: string) => async (): Promise<boolean> => {
  for (const side of sides) if ((await m[side](sql))[0]!.ok) return true;
  return false;
};

const BOTH = ['src', 'tgt'] as const;
const advisoryWait = (key: number) => waitingFor(`locktype = 'advisory' AND objid = ${key}`);
const rowWait = waitingFor(`locktype <> 'advisory'`);

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)("two target sessions writing the source's state at once", () => {
  it('two catch-ups, two cut-overs, a cleanup beside the cut-over: each waits for the other, none fails to serialize', async () => {
    const m = await newStagedMove(servers, root, 'wil', { catchupTarget: 50, lockTimeoutMs: 15_000 });
    pairs.push(m.pair);
    const built = await m.cli('run', '--until', 'build');
    expect(built.code, built.stderr).toBe(0);
    await m.src(
      `BEGIN; UPDATE app.customers SET name = name || '+' WHERE id <= 5; UPDATE twin.customers SET name = name || '+' WHERE id <= 5; COMMIT`,
    );
    const [state] = await m.src(
      `SELECT 'shadowpack.' || relname AS t FROM pg_class WHERE relnamespace = 'shadowpack'::regnamespace AND relname ~ '^move_[0-9a-f]+$'`,
    );
    // The first session to write each of these stages into the source's state row takes the first key for good
    // and waits for the second, holding the row; any later one goes through.
    await m.src(`CREATE FUNCTION public.hold_word() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   IF NEW.stage = 'ready-for-fence' AND pg_try_advisory_lock(4256) THEN PERFORM pg_advisory_xact_lock_shared(4257); END IF;
                   IF NEW.stage = 'cutover-started' AND pg_try_advisory_lock(4258) THEN PERFORM pg_advisory_xact_lock_shared(4259); END IF;
                   IF NEW.stage = 'cutover' AND pg_try_advisory_lock(4260) THEN PERFORM pg_advisory_xact_lock_shared(4261); END IF;
                   RETURN NULL; END $$;
                 CREATE TRIGGER hold_word AFTER UPDATE ON ${state!.t as string} FOR EACH ROW EXECUTE FUNCTION public.hold_word()`);
    const holder = new pg.Client({ connectionString: m.pair.source.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(4257), pg_advisory_lock(4259), pg_advisory_lock(4261)');

      // Two catch-ups: psql's waits in its word; the runner's round waits for the rounds' lock.
      const psqlCatchup = running(m.outcome('05-catchup.target.sql'));
      await until(onSide(m, ['src'], advisoryWait(4257)), "psql's catch-up waits in its word", [psqlCatchup]);
      const runnerCatchup = runner(m, '--until', 'catchup');
      await until(onSide(m, BOTH, rowWait), 'the runner waits for a row lock', [psqlCatchup, runnerCatchup]);
      await holder.query('SELECT pg_advisory_unlock(4257)');
      expect(await psqlCatchup.outcome).toBe('ok');
      expect(await runnerCatchup.outcome).toBe('ok');

      const fenced = await m.cli('run', '--until', 'fence');
      expect(fenced.code, fenced.stderr).toBe(0);

      // Two cut-overs: psql's waits in its first word; the runner's waits for the rounds' lock.
      const psqlCutover = running(m.outcome('07-cutover.target.sql'));
      await until(onSide(m, ['src'], advisoryWait(4259)), "psql's cut-over waits in its first word", [psqlCutover]);
      const runnerCutover = runner(m, '--until', 'cutover');
      await until(onSide(m, BOTH, rowWait), 'the runner waits for a row lock', [psqlCutover, runnerCutover]);
      await holder.query('SELECT pg_advisory_unlock(4259)');
      // One of them cuts over and waits in its last word; the other refuses.
      await until(onSide(m, ['src'], advisoryWait(4261)), 'a cut-over waits in its last word', []);
      // The other has refused by now, or waits for the rounds' lock that the held one's last word holds.
      const cutovers = [psqlCutover, runnerCutover];
      const otherWaits = onSide(
        m,
        ['tgt'],
        `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name LIKE 'shadowpack:%:cutover') AS ok`,
      );
      await until(
        async () => cutovers.some((r) => r.ended !== undefined) || (await otherWaits()),
        'the other cut-over refused or waits',
        [],
      );

      // The target's cleanup beside it: its word waits for the rounds' lock (or, the defect, on the source for the
      // cut-over's row).
      const cleanup = running(m.outcome('08-cleanup.target.sql'));
      const cleanupWaits = onSide(
        m,
        ['tgt'],
        `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name LIKE 'shadowpack:%:cleanup') AS ok`,
      );
      const sourceRowWait = onSide(m, ['src'], rowWait);
      await until(async () => (await cleanupWaits()) || (await sourceRowWait()), 'the cleanup waits', [cleanup]);
      await holder.query('SELECT pg_advisory_unlock(4261)');
      const outcomes = [await psqlCutover.outcome, await runnerCutover.outcome];
      expect(outcomes.filter((o) => o === 'ok').length, outcomes.join('\n')).toBe(1);
      expect(outcomes.find((o) => o !== 'ok')).toMatch(
        /the cut-over cannot run at target stage cutover|the cut-over is done; the target is live/,
      );
      expect(await cleanup.outcome).toBe('ok');
    } finally {
      await holder.end();
    }
    await m.src(`DROP TRIGGER hold_word ON ${state!.t as string}; DROP FUNCTION public.hold_word()`);
    const cleaned = await m.cli('run', '--until', 'cleanup');
    expect(cleaned.code, cleaned.stderr).toBe(0);
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
  }, 90_000);

  it("two aborts at once: the second waits for the first's word to the source, then has nothing left to say", async () => {
    // 90-abort.target.sql's word ('target-aborted') wrote the source's state row through the server without the
    // rounds' lock: the runner's abort started while psql's waited in that word failed to serialize.
    const m = await newStagedMove(servers, root, 'wil_abort', { lockTimeoutMs: 15_000 }, undefined, {
      customers: 30,
      orders: 100,
    });
    pairs.push(m.pair);
    const fenced = await m.cli('run', '--until', 'fence');
    expect(fenced.code, fenced.stderr).toBe(0);
    const [state] = await m.src(
      `SELECT 'shadowpack.' || relname AS t FROM pg_class WHERE relnamespace = 'shadowpack'::regnamespace AND relname ~ '^move_[0-9a-f]+$'`,
    );
    await m.src(`CREATE FUNCTION public.hold_word() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   IF NEW.stage = 'target-aborted' AND pg_try_advisory_lock(4262) THEN PERFORM pg_advisory_xact_lock_shared(4263); END IF;
                   RETURN NULL; END $$;
                 CREATE TRIGGER hold_word AFTER UPDATE ON ${state!.t as string} FOR EACH ROW EXECUTE FUNCTION public.hold_word()`);
    const holder = new pg.Client({ connectionString: m.pair.source.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(4263)');
      const psqlAbort = running(m.outcome('90-abort.target.sql'));
      await until(onSide(m, ['src'], advisoryWait(4263)), "psql's abort waits in its word", [psqlAbort]);
      const runnerAbort = runner(m, '--stage', 'abort');
      // Waits for the rounds' lock on the target (or, the defect, for the source's row held by psql's word).
      await until(onSide(m, BOTH, rowWait), 'the runner waits for a row lock', [psqlAbort, runnerAbort]);
      await holder.query('SELECT pg_advisory_unlock(4263)');
      expect(await psqlAbort.outcome).toBe('ok');
      expect(await runnerAbort.outcome).toBe('ok');
    } finally {
      await holder.end();
    }
    const noRun = `SELECT to_regclass('${state!.t as string}') IS NULL AS ok`;
    expect((await m.src(noRun))[0]!.ok).toBe(true);
    expect((await m.tgt(noRun))[0]!.ok).toBe(true);
    await m.src(`DROP FUNCTION public.hold_word()`);
    // The fence is gone: the source takes writes again.
    await m.src(`UPDATE app.customers SET name = name WHERE id = 1`);
    // An abort run again after the end says nothing and changes nothing, with psql and with the runner.
    expect(await m.psql('90-abort.target.sql')).toBe('');
    expect(await m.psql('90-abort.source.sql')).toBe('');
    const again = await m.cli('run', '--stage', 'abort');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('move aborted');
  }, 60_000);

  it("the runner's read of the target's state while 08-cleanup.target.sql drops it: no run there, not an error", async () => {
    // Seen once in ~10 runs of the test above: the runner's cut-over ended while the cleanup dropped the state
    // table between the runner's look-up (to_regclass) and its read, which failed (relation does not exist).
    const m = await newStagedMove(servers, root, 'wil_read', { lockTimeoutMs: 15_000 }, undefined, {
      customers: 30,
      orders: 100,
    });
    pairs.push(m.pair);
    const cut = await m.cli('run', '--until', 'cutover');
    expect(cut.code, cut.stderr).toBe(0);
    const [state] = await m.tgt(
      `SELECT 'shadowpack.' || relname AS t FROM pg_class WHERE relnamespace = 'shadowpack'::regnamespace AND relname ~ '^move_[0-9a-f]+$'`,
    );
    const holder = new pg.Client({ connectionString: m.pair.target.url });
    await holder.connect();
    try {
      // The cleanup's DROP of the state table waits for the holder; the runner's read queues behind that DROP.
      await holder.query(`BEGIN; LOCK TABLE ${state!.t as string} IN ACCESS SHARE MODE`);
      const cleanup = running(m.outcome('08-cleanup.target.sql'));
      const lockWaits = (n: number) =>
        onSide(
          m,
          ['tgt'],
          `SELECT count(*) >= ${n} AS ok FROM pg_locks WHERE NOT granted AND relation = '${state!.t as string}'::regclass`,
        );
      await until(lockWaits(1), "the cleanup's DROP waits", [cleanup]);
      const next = runner(m, '--until', 'cutover');
      await until(lockWaits(2), "the runner's read waits behind it", [cleanup, next]);
      await holder.query('COMMIT');
      expect(await cleanup.outcome).toBe('ok');
      expect(await next.outcome).toBe('ok');
    } finally {
      await holder.end();
    }
    const cleaned = await m.cli('run', '--until', 'cleanup');
    expect(cleaned.code, cleaned.stderr).toBe(0);
  }, 60_000);
});
