/**
 * Two sessions running the revert of a --reversible move at once (issue 15), source 14 -> target 17, one pair
 * taken through the revert. A session holds an advisory lock (or a row) that a row trigger waits on (or a stage),
 * at an exact point of a stage. Each point gave SQLSTATE 40001 (could not serialize access due to concurrent
 * update) before its fix: a write through postgres_fdw runs in a REPEATABLE READ transaction on the other side,
 * and fails when the row it writes changed after that transaction's snapshot.
 * - two runs of 91-revert.source.sql: the first held in its word to the target ('reverting'), the second waiting
 *   for that row failed; then one held in its prune, the other's prune of the same log entries failed (the prune
 *   now takes the rounds' lock, the word treats a row another run changed meanwhile as told);
 * - 92-revert.target.sql waiting for the source's state row (FOR SHARE) behind a round of a third 91 run: it failed
 *   when the round committed; now it refuses, saying to run it again, and the target stays unfenced;
 * - two runs of 93-revert.source.sql (psql, then the runner), the first held in its word to the target
 *   ('reverted'): the second failed waiting for that row; now it takes the word as said.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../helpers/db.js';
import { compareMoveWithTwins, MOVE_COLUMNS, MOVE_GROUP } from '../helpers/move-fixture.js';
import { MOVE_SOURCE_MISSING, startMoveServers, type MovePair, type MoveServers } from '../helpers/move-servers.js';
import { newStagedMove, waitingFor, type StagedMove } from '../helpers/move-stage-runner.js';

let servers: MoveServers;
let root: string;
const pairs: MovePair[] = [];
const REVERT_PASSWORD_ENV = 'SHADOWPACK_REVERT_FDW_PASSWORD';
let savedRevertPassword: string | undefined;

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-revert-il-'));
  savedRevertPassword = process.env[REVERT_PASSWORD_ENV];
}, 120_000);

afterAll(async () => {
  if (savedRevertPassword === undefined) delete process.env[REVERT_PASSWORD_ENV];
  else process.env[REVERT_PASSWORD_ENV] = savedRevertPassword;
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

/** A reversible move cut over by the runner, twins of the group on the target, a write there to bring back. */
async function cutOver(name: string): Promise<StagedMove> {
  const m = await newStagedMove(servers, root, name, { reversible: true, lockTimeoutMs: 15_000 }, undefined, {
    customers: 30,
    orders: 100,
  });
  pairs.push(m.pair);
  process.env[REVERT_PASSWORD_ENV] = decodeURIComponent(new URL(m.pair.target.url).password);
  const out = await m.cli('run', '--until', 'cutover');
  expect(out.code, out.stderr).toBe(0);
  await withClient(m.pair.target.url, async (c) => {
    await c.query('CREATE SCHEMA twin');
    for (const t of MOVE_GROUP)
      await c.query(`CREATE TABLE twin.${t} AS SELECT ${MOVE_COLUMNS[t].join(', ')} FROM app.${t}`);
    await c.query(`BEGIN; UPDATE app.customers SET name = name || '+' WHERE id <= 5;
                   UPDATE twin.customers SET name = name || '+' WHERE id <= 5; COMMIT`);
  });
  return m;
}

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

/**
 * Polls `sql` (a boolean `ok`) on `sides` until it is true on one; fails at once, with its outcome, when one of
 * `runs` ended meanwhile (a stage that should be waiting failed instead).
 */
async function waitOn(
  m: StagedMove,
  sides: readonly ('src' | 'tgt')[],
  sql: string,
  what: string,
  runs: readonly Running[],
): Promise<void> {
  const end = Date.now() + 20_000;
  for (;;) {
    for (const side of sides) if ((await m[side](sql))[0]!.ok) return;
    const gone = runs.find((r) => r.ended !== undefined);
    if (gone) throw new Error(`a stage ended before ${what}: ${gone.ended}`);
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((res) => setTimeout(res, 25));
  }
}

const stages = async (m: StagedMove): Promise<[string, string]> => {
  const q = `SELECT stage FROM shadowpack.%s`;
  const name = `SELECT relname AS t FROM pg_class WHERE relnamespace = 'shadowpack'::regnamespace AND relname ~ '^move_[0-9a-f]+$'`;
  const [sn] = await m.src(name);
  const [tn] = await m.tgt(name);
  const [s] = await m.src(q.replace('%s', sn!.t as string));
  const [t] = await m.tgt(q.replace('%s', tn!.t as string));
  return [s!.stage as string, t!.stage as string];
};

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('two sessions running the revert of a move at once', () => {
  it('two 91 runs (their word to the target, their prunes), 92 behind a 91 round, two 93 runs: none fails to serialize', async () => {
    const m = await cutOver('rvil');
    const [state] = await m.tgt(
      `SELECT 'shadowpack.' || relname AS t FROM pg_class WHERE relnamespace = 'shadowpack'::regnamespace AND relname ~ '^move_[0-9a-f]+$'`,
    );
    const logs = await m.tgt(
      `SELECT c.oid::regclass::text AS log FROM pg_class c WHERE c.relnamespace = 'shadowpack'::regnamespace AND c.relkind = 'r' AND c.relname LIKE 'mlog%'`,
    );
    expect(logs.length).toBe(3);
    // The first session to write the target's state row to 'reverting' (or 'reverted') takes 4246 (4248) for good
    // and waits for 4247 (4249) holding the row; the first to delete an entry of the target's change logs takes
    // 4245 and waits for 4244 holding the entry. Any other session goes through.
    await m.tgt(`CREATE FUNCTION public.hold_word() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   IF NEW.stage = 'reverting' AND pg_try_advisory_lock(4246) THEN PERFORM pg_advisory_xact_lock_shared(4247); END IF;
                   IF NEW.stage = 'reverted' AND pg_try_advisory_lock(4248) THEN PERFORM pg_advisory_xact_lock_shared(4249); END IF;
                   RETURN NULL; END $$;
                 CREATE TRIGGER hold_word AFTER UPDATE ON ${state!.t as string} FOR EACH ROW EXECUTE FUNCTION public.hold_word();
                 CREATE FUNCTION public.hold_prune() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                   IF pg_try_advisory_lock(4245) THEN PERFORM pg_advisory_xact_lock_shared(4244); END IF;
                   RETURN OLD; END $$;
                 ${logs.map((r) => `CREATE TRIGGER hold_prune BEFORE DELETE ON ${r.log} FOR EACH ROW EXECUTE FUNCTION public.hold_prune();`).join('\n')}`);
    const advisoryWait = (key: number) => waitingFor(`locktype = 'advisory' AND objid = ${key}`);
    const rowWait = waitingFor(`locktype <> 'advisory'`);
    const BOTH = ['src', 'tgt'] as const;
    const holder = new pg.Client({ connectionString: m.pair.target.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(4244), pg_advisory_lock(4247)');
      // 91 twice: the first waits in its word to the target; the second, past its own first transaction, waits for
      // that row.
      const first = running(m.outcome('91-revert.source.sql'));
      await waitOn(m, BOTH, advisoryWait(4247), "the first 91's word to the target waits", [first]);
      const second = running(m.outcome('91-revert.source.sql'));
      await waitOn(m, BOTH, rowWait, "the second 91's word waits for the first's", [first, second]);
      await holder.query('SELECT pg_advisory_unlock(4247)');
      // Then both run rounds: the first to prune is held on an entry; the other waits for the rounds' lock (or, the
      // defect, for the entry).
      await waitOn(m, BOTH, advisoryWait(4244), 'a 91 prune waits holding an entry', [first, second]);
      await waitOn(m, BOTH, rowWait, 'the other 91 waits for a row lock', [first, second]);
      await holder.query('SELECT pg_advisory_unlock(4244)');
      expect(await first.outcome).toBe('ok');
      expect(await second.outcome).toBe('ok');
    } finally {
      await holder.end().catch(() => undefined);
    }
    await m.tgt(
      `${logs.map((r) => `DROP TRIGGER hold_prune ON ${r.log};`).join('\n')} DROP FUNCTION public.hold_prune()`,
    );
    expect(await stages(m)).toEqual(['reverting', 'reverting']);

    // 92 behind a round of a third 91 run, which waits for a source row that a session holds.
    await m.tgt(`BEGIN; UPDATE app.customers SET name = name || '*' WHERE id = 6;
                 UPDATE twin.customers SET name = name || '*' WHERE id = 6; COMMIT`);
    const row = new pg.Client({ connectionString: m.pair.source.url });
    await row.connect();
    try {
      await row.query('BEGIN');
      await row.query('SELECT FROM app.customers WHERE id = 6 FOR UPDATE');
      const third = running(m.outcome('91-revert.source.sql'));
      await waitOn(m, ['src'], waitingFor('true'), 'the 91 round waits for the held row', [third]);
      const fence = running(m.outcome('92-revert.target.sql'));
      await waitOn(
        m,
        ['src'],
        `SELECT count(*) >= 2 AS ok FROM pg_locks WHERE NOT granted`,
        "92 waits for the source's state row behind the round",
        [third, fence],
      );
      await row.query('ROLLBACK');
      expect(await fence.outcome).toMatch(
        /shadowpack: the source's revert state changed while this file waited for it \(a round of 91-revert\.source\.sql ran\); the target is not fenced/,
      );
      expect(await third.outcome).toBe('ok');
    } finally {
      await row.end();
    }
    expect(await stages(m)).toEqual(['reverting', 'reverting']);
    await m.tgt(`BEGIN; UPDATE app.customers SET name = name || '#' WHERE id = 7;
                 UPDATE twin.customers SET name = name || '#' WHERE id = 7; COMMIT`);
    await m.psql('92-revert.target.sql');

    // 93 twice: psql's word to the target waits; the runner, which runs 93 again, waits for that row.
    const word = new pg.Client({ connectionString: m.pair.target.url });
    await word.connect();
    try {
      await word.query('SELECT pg_advisory_lock(4249)');
      const first = running(m.outcome('93-revert.source.sql'));
      await waitOn(m, ['tgt'], advisoryWait(4249), "93's word to the target waits", [first]);
      expect(await stages(m)).toEqual(['reverted', 'revert-fenced']);
      const second = running(m.cli('run', '--stage', 'revert').then((o) => (o.code === 0 ? 'ok' : o.stderr)));
      await waitOn(m, ['tgt'], rowWait, "the runner's 93 waits for that row", [first, second]);
      await word.query('SELECT pg_advisory_unlock(4249)');
      expect(await first.outcome).toBe('ok');
      expect(await second.outcome).toBe('ok');
    } finally {
      await word.end();
    }
    expect(await stages(m)).toEqual(['reverted', 'reverted']);
    await m.tgt(`DROP TRIGGER hold_word ON ${state!.t as string}; DROP FUNCTION public.hold_word()`);
    const same = await compareMoveWithTwins(m.pair.target.url, m.pair.source.url);
    expect(same.equal, JSON.stringify(same.tables)).toBe(true);
  }, 90_000);
});
