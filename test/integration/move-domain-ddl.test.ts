/**
 * Domains of moved columns altered on the source mid-move (issue 15), source 14 -> target 17, with psql and the
 * runner. The target's domains are created at setup from the plan's model, and a round rewrites only the rows a
 * write touched. Before the fix only a domain renamed (the table's signature names the column's type) and an enum
 * label added through a domain (labels compared with the plan) stopped the move: ALTER DOMAIN … ADD CONSTRAINT
 * (valid or NOT VALID), SET/DROP DEFAULT, SET NOT NULL, VALIDATE and RENAME CONSTRAINT, and a RENAME of the domain
 * under a domain went through the catch-up, and a check added to that inner domain after the fence went through the
 * cut-over: the target kept the planned domains. A check or NOT NULL dropped, then a row using it, stopped the
 * backfill or the catch-up with the target's own error (`value for domain app.code violates check constraint
 * "code_len"`, `domain app.flag does not allow null values`, `value for domain app.small violates check constraint
 * "nonneg_check"`) instead of the DDL message. Now setup records every type of the columns (domains with their
 * constraints, defaults and NOT NULL, names of nested types) and every batch, round, the fence and the cut-over
 * compare; each change below stops the stage with the DDL message, and taken back the stage goes on. A domain
 * changed between the plan and setup went through both preflight and setup (the target's copy is made from the
 * plan); now both compare the domain's NOT NULL, default and checks with the plan's, and so does every round.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOVE_SOURCE_MISSING, startMoveServers, type MovePair, type MoveServers } from '../helpers/move-servers.js';
import { newStagedMove, type StagedMove } from '../helpers/move-stage-runner.js';

let servers: MoveServers;
let root: string;
const pairs: MovePair[] = [];

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-domain-ddl-'));
}, 120_000);

afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

/** Domains on app.orders: one with a check (and a NOT VALID one), a domain over a domain, NOT NULL with a default, one over an enum. */
const DOMAINS = `
  CREATE TYPE app.level AS ENUM ('lo', 'hi');
  CREATE DOMAIN app.leveled AS app.level;
  CREATE DOMAIN app.code AS text CONSTRAINT code_len CHECK (length(VALUE) <= 8);
  ALTER DOMAIN app.code ADD CONSTRAINT code_trim CHECK (VALUE = btrim(VALUE)) NOT VALID;
  CREATE DOMAIN app.nonneg AS integer CONSTRAINT nonneg_check CHECK (VALUE >= 0);
  CREATE DOMAIN app.small AS app.nonneg CONSTRAINT small_check CHECK (VALUE < 1000);
  CREATE DOMAIN app.flag AS boolean NOT NULL DEFAULT false;
  ALTER TABLE app.orders ADD COLUMN code app.code, ADD COLUMN amount app.small DEFAULT 1, ADD COLUMN flag app.flag,
    ADD COLUMN level app.leveled`;

/** A change on the source, what the application then writes with it, and how the test takes both back. */
interface DomainChange {
  readonly ddl: string;
  readonly write?: string;
  readonly undo: string;
}

const CHANGES: Record<'psql' | 'runner', readonly DomainChange[]> = {
  psql: [
    {
      ddl: 'ALTER DOMAIN app.code ADD CONSTRAINT code_upper CHECK (VALUE = upper(VALUE))',
      undo: 'ALTER DOMAIN app.code DROP CONSTRAINT code_upper',
    },
    { ddl: `ALTER DOMAIN app.code SET DEFAULT 'none'`, undo: 'ALTER DOMAIN app.code DROP DEFAULT' },
    {
      ddl: 'ALTER DOMAIN app.flag DROP NOT NULL',
      write: 'UPDATE app.orders SET flag = NULL WHERE id = 8',
      undo: 'UPDATE app.orders SET flag = false WHERE id = 8; ALTER DOMAIN app.flag SET NOT NULL',
    },
    { ddl: 'ALTER DOMAIN app.code RENAME TO label', undo: 'ALTER DOMAIN app.label RENAME TO code' },
    {
      ddl: 'ALTER DOMAIN app.nonneg DROP CONSTRAINT nonneg_check',
      write: 'UPDATE app.orders SET amount = -5 WHERE id = 9',
      undo: 'UPDATE app.orders SET amount = 1 WHERE id = 9; ALTER DOMAIN app.nonneg ADD CONSTRAINT nonneg_check CHECK (VALUE >= 0)',
    },
    {
      ddl: 'ALTER DOMAIN app.code VALIDATE CONSTRAINT code_trim',
      undo: 'ALTER DOMAIN app.code DROP CONSTRAINT code_trim; ALTER DOMAIN app.code ADD CONSTRAINT code_trim CHECK (VALUE = btrim(VALUE)) NOT VALID',
    },
  ],
  runner: [
    {
      ddl: 'ALTER DOMAIN app.code ADD CONSTRAINT code_upper CHECK (VALUE = upper(VALUE)) NOT VALID',
      write: `UPDATE app.orders SET code = 'AB' WHERE id = 10`,
      undo: 'ALTER DOMAIN app.code DROP CONSTRAINT code_upper',
    },
    { ddl: 'ALTER DOMAIN app.flag DROP DEFAULT', undo: 'ALTER DOMAIN app.flag SET DEFAULT false' },
    { ddl: 'ALTER DOMAIN app.small SET NOT NULL', undo: 'ALTER DOMAIN app.small DROP NOT NULL' },
    {
      ddl: 'ALTER DOMAIN app.code DROP CONSTRAINT code_len',
      write: `UPDATE app.orders SET code = 'longer than eight' WHERE id = 11`,
      undo: `UPDATE app.orders SET code = NULL WHERE id = 11; ALTER DOMAIN app.code ADD CONSTRAINT code_len CHECK (length(VALUE) <= 8)`,
    },
    { ddl: 'ALTER DOMAIN app.nonneg RENAME TO whole', undo: 'ALTER DOMAIN app.whole RENAME TO nonneg' },
    {
      ddl: 'ALTER DOMAIN app.code RENAME CONSTRAINT code_len TO code_max',
      undo: 'ALTER DOMAIN app.code RENAME CONSTRAINT code_max TO code_len',
    },
  ],
};

/** Changed in the backfill (after setup, before the first batch): a row the change allows is in a page range. */
const IN_BACKFILL: Record<'psql' | 'runner', DomainChange> = {
  psql: {
    ddl: 'ALTER DOMAIN app.code DROP CONSTRAINT code_len',
    write: `UPDATE app.orders SET code = 'longer than eight' WHERE id = 7`,
    undo: `UPDATE app.orders SET code = NULL WHERE id = 7; ALTER DOMAIN app.code ADD CONSTRAINT code_len CHECK (length(VALUE) <= 8)`,
  },
  runner: {
    ddl: 'ALTER DOMAIN app.nonneg DROP CONSTRAINT nonneg_check',
    write: 'UPDATE app.orders SET amount = -3 WHERE id = 7',
    undo: 'UPDATE app.orders SET amount = 1 WHERE id = 7; ALTER DOMAIN app.nonneg ADD CONSTRAINT nonneg_check CHECK (VALUE >= 0)',
  },
};

/** Changed after the catch-up: the fence refuses. */
const AT_FENCE: Record<'psql' | 'runner', DomainChange> = {
  psql: { ddl: 'ALTER DOMAIN app.flag SET DEFAULT true', undo: 'ALTER DOMAIN app.flag SET DEFAULT false' },
  runner: { ddl: `ALTER DOMAIN app.leveled SET DEFAULT 'hi'`, undo: 'ALTER DOMAIN app.leveled DROP DEFAULT' },
};

/** Changed after the fence: the cut-over's round refuses. */
const AT_CUTOVER: Record<'psql' | 'runner', string> = {
  psql: `ALTER TYPE app.level ADD VALUE 'mid'`,
  runner: 'ALTER DOMAIN app.nonneg ADD CONSTRAINT nonneg_cap CHECK (VALUE < 500)',
};

const DDL_MESSAGE = /changed on the source (during the move|since the move was set up) \(DDL\)/;

/** One stage with psql, or with `run --stage`; 'ok' or the error. */
async function stage(m: StagedMove, executor: 'psql' | 'runner', name: string, file: string): Promise<string> {
  if (executor === 'psql') return m.outcome(file);
  const out = await m.cli('run', '--stage', name);
  return out.code === 0 ? 'ok' : out.stderr;
}

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('a domain of a moved column altered on the source', () => {
  it.each(['psql', 'runner'] as const)(
    '%s: each change stops the backfill, the catch-up, the fence or the cut-over with the DDL message; taken back, the move goes on; abort goes through',
    async (executor) => {
      const m = await newStagedMove(
        servers,
        root,
        `dd_${executor}`,
        {},
        async (c) => {
          await c.query(DOMAINS);
        },
        { customers: 30, orders: 100 },
      );
      pairs.push(m.pair);
      for (const [name, file] of [
        ['preflight', '00-preflight.source.sql'],
        ['preflight', '00-preflight.target.sql'],
        ['setup', '01-setup.source.sql'],
        ['setup', '02-setup.target.sql'],
      ] as const) {
        if (executor === 'runner' && file.endsWith('target.sql')) continue;
        expect(await stage(m, executor, name, file)).toBe('ok');
      }
      const seen: Record<string, string> = {};
      const expected: Record<string, unknown> = {};
      const attempt = async (at: string, c: DomainChange, name: string, file: string) => {
        await m.src(c.ddl);
        if (c.write) await m.src(c.write);
        seen[`${at}: ${c.ddl}`] = await stage(m, executor, name, file);
        expected[`${at}: ${c.ddl}`] = expect.stringMatching(DDL_MESSAGE);
        await m.src(c.undo);
        expect(await stage(m, executor, name, file), `after taking back ${c.ddl}`).toBe('ok');
      };
      await attempt('backfill', IN_BACKFILL[executor], 'backfill', '03-backfill.target.sql');
      expect(await stage(m, executor, 'build', '04-build.target.sql')).toBe('ok');
      for (const c of CHANGES[executor]) await attempt('catch-up', c, 'catchup', '05-catchup.target.sql');
      await attempt('fence', AT_FENCE[executor], 'fence', '06-fence.source.sql');
      await m.src(AT_CUTOVER[executor]);
      seen[`cut-over: ${AT_CUTOVER[executor]}`] = await stage(m, executor, 'cutover', '07-cutover.target.sql');
      expected[`cut-over: ${AT_CUTOVER[executor]}`] = expect.stringMatching(DDL_MESSAGE);
      expect(seen).toEqual(expected);
      if (executor === 'psql') {
        await m.psql('90-abort.target.sql');
        await m.psql('90-abort.source.sql');
      } else {
        const aborted = await m.cli('run', '--stage', 'abort');
        expect(aborted.code, aborted.stderr).toBe(0);
      }
      const [left] = await m.src(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'shadowpack'`);
      const [leftTarget] = await m.tgt(
        `SELECT count(*)::int AS n FROM pg_type WHERE typnamespace = 'app'::regnamespace AND typtype IN ('d', 'e')`,
      );
      expect([left!.n, leftTarget!.n]).toEqual([0, 0]);
      await m.src(`UPDATE app.orders SET code = 'free' WHERE id = 12`);
    },
    60_000,
  );
  it('psql: a domain changed between the plan and setup stops the preflight and the setup (changed since the plan); taken back they go on', async () => {
    const m = await newStagedMove(
      servers,
      root,
      'dd_plan',
      {},
      async (c) => {
        await c.query(DOMAINS);
      },
      { customers: 30, orders: 100 },
    );
    pairs.push(m.pair);
    const SINCE_PLAN = /domain app\.\w+ \(a type of the group's columns\) changed since this move plan was made/;
    await m.src('ALTER DOMAIN app.code ADD CONSTRAINT code_upper CHECK (VALUE = upper(VALUE))');
    expect(await m.outcome('00-preflight.source.sql')).toMatch(SINCE_PLAN);
    await m.src('ALTER DOMAIN app.code DROP CONSTRAINT code_upper');
    expect(await m.outcome('00-preflight.source.sql')).toBe('ok');
    expect(await m.outcome('00-preflight.target.sql')).toBe('ok');
    await m.src('ALTER DOMAIN app.flag DROP DEFAULT');
    expect(await m.outcome('01-setup.source.sql')).toMatch(SINCE_PLAN);
    await m.src('ALTER DOMAIN app.flag SET DEFAULT false');
    expect(await m.outcome('01-setup.source.sql')).toBe('ok');
  }, 60_000);
});
