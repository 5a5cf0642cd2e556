/**
 * The guards' way through for the move's own writes (issue 15), source 14 -> target 17, psql. The target's deny
 * trigger and the source's fence let a session through that set shadowpack.apply to the run's id; any session may
 * set a custom setting, so a role allowed to write the tables (pg_write_all_data here; default privileges or the
 * application's grants do the same) wrote past either with one SET:
 * - on the target before the cut-over, a row whose key the source never logged stays there (customers 900001 on
 *   the target after the cut-over, not on the source). The setting now counts only for a role with the rights of
 *   the tables' owner there (the role running the target stages, which could drop the trigger anyway);
 * - on the fenced source, a write after the cut-over's snapshot stays on the source only. The setting now counts
 *   only in the replica role, which a revert's rounds apply in and an application role may not set.
 * The target's guard disabled (DISABLE TRIGGER ALL, a write, then ENABLE ALWAYS again) by its owner or a superuser
 * let the row through to after the cut-over too; every round now refuses unless the guard's triggers are as setup
 * made them (ENABLE ALWAYS, the same xmin), as the source's capture is checked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../helpers/db.js';
import { compareMoveWithTwins } from '../helpers/move-fixture.js';
import { MOVE_SOURCE_MISSING, startMoveServers, type MovePair, type MoveServers } from '../helpers/move-servers.js';
import { newStagedMove } from '../helpers/move-stage-runner.js';

let servers: MoveServers;
let root: string;
const pairs: MovePair[] = [];
const ROLE = 'sp_guard_writer';
const roleOn: string[] = [];

beforeAll(async () => {
  servers = await startMoveServers();
  root = mkdtempSync(join(tmpdir(), 'sp-move-guard-'));
}, 120_000);

afterAll(async () => {
  for (const url of roleOn) await withClient(url, (c) => c.query(`DROP ROLE IF EXISTS ${ROLE}`)).catch(() => undefined);
  if (root) rmSync(root, { recursive: true, force: true });
  for (const p of pairs) await p.drop();
  await servers?.stop();
});

/** The role, on the server of `url`: no rights but to read and write every table (pg_read_all_data, pg_write_all_data: 14 on). */
async function writer(url: string): Promise<void> {
  roleOn.push(url);
  await withClient(url, (c) =>
    c.query(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}') THEN CREATE ROLE ${ROLE} NOLOGIN; END IF; END $$;
             GRANT pg_read_all_data, pg_write_all_data TO ${ROLE}`),
  );
}

const runOf = async (q: (sql: string) => Promise<{ [k: string]: unknown }[]>, trigger: string): Promise<string> =>
  (
    (await q(
      `SELECT substring(tgname FROM '^${trigger}_(.*)$') AS run FROM pg_trigger WHERE tgname LIKE '${trigger.replace(/_/g, '\\_')}\\_%' LIMIT 1`,
    )) as [{ run: string }]
  )[0].run;

const FENCED = /app\.orders moved to .*; writes are refused/;
const DENIED = /app\.customers is being moved here from another cluster; writes are refused until the cut-over/;

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)("the guards' way through for the move's own writes", () => {
  it('on the target before the cut-over, a role allowed to write the tables setting shadowpack.apply is refused; the move still writes', async () => {
    const m = await newStagedMove(servers, root, 'tg');
    pairs.push(m.pair);
    for (const f of [
      '00-preflight.source.sql',
      '00-preflight.target.sql',
      '01-setup.source.sql',
      '02-setup.target.sql',
    ])
      await m.psql(f);
    const run = await runOf(m.tgt, 'shadowpack_mdeny');
    await writer(m.pair.target.url);
    const insert = (id: number) =>
      `SET ROLE ${ROLE}; INSERT INTO app.customers (id, name, ref) VALUES (${id}, 'written on the target too early', ${id})`;
    await expect(m.tgt(insert(900000))).rejects.toThrow(DENIED);
    // COPY fires statement triggers too (a superuser here, reading from a program).
    await expect(
      m.tgt(`COPY app.customers (id, name, ref) FROM PROGRAM 'printf "900002\\tcopied\\t900002\\n"'`),
    ).rejects.toThrow(DENIED);
    const bypass = await m.tgt(`SET shadowpack.apply = '${run}'; ${insert(900001)}`).then(
      () => 'written',
      (e: Error) => e.message,
    );
    for (const f of [
      '03-backfill.target.sql',
      '04-build.target.sql',
      '05-catchup.target.sql',
      '06-fence.source.sql',
      '07-cutover.target.sql',
    ])
      await m.psql(f);
    const same = await compareMoveWithTwins(m.pair.source.url, m.pair.target.url);
    expect({ bypass, equal: same.equal, customers: same.tables.customers.sample }).toEqual({
      bypass: expect.stringMatching(DENIED),
      equal: true,
      customers: [],
    });
  }, 60_000);

  it('on the fenced source, an application role setting shadowpack.apply is refused, before and after the cut-over', async () => {
    const m = await newStagedMove(servers, root, 'fg');
    pairs.push(m.pair);
    for (const f of [
      '00-preflight.source.sql',
      '00-preflight.target.sql',
      '01-setup.source.sql',
      '02-setup.target.sql',
      '03-backfill.target.sql',
      '04-build.target.sql',
      '05-catchup.target.sql',
      '06-fence.source.sql',
    ])
      await m.psql(f);
    const run = await runOf(m.src, 'shadowpack_mfence');
    await writer(m.pair.source.url);
    const write = (qty: number) =>
      m.src(`SET ROLE ${ROLE}; SET shadowpack.apply = '${run}'; UPDATE app.orders SET qty = ${qty} WHERE id = 7`).then(
        () => 'written',
        (e: Error) => e.message,
      );
    // The replica role is what the bypass needs now, and this role may not set it.
    await expect(m.src(`SET ROLE ${ROLE}; SET session_replication_role = replica`)).rejects.toThrow(
      /permission denied/,
    );
    const before = await write(6001);
    await m.psql('07-cutover.target.sql');
    const after = await write(6002);
    const [src] = await m.src(`SELECT qty FROM app.orders WHERE id = 7`);
    const [tgt] = await m.tgt(`SELECT qty FROM app.orders WHERE id = 7`);
    expect({ before, after, source: src!.qty, target: tgt!.qty }).toEqual({
      before: expect.stringMatching(FENCED),
      after: expect.stringMatching(FENCED),
      source: tgt!.qty,
      target: tgt!.qty,
    });
  }, 60_000);

  it('on the target before the cut-over, the guard disabled for a write and enabled again: the next round refuses, abort takes the move back', async () => {
    const m = await newStagedMove(servers, root, 'dg');
    pairs.push(m.pair);
    for (const f of [
      '00-preflight.source.sql',
      '00-preflight.target.sql',
      '01-setup.source.sql',
      '02-setup.target.sql',
    ])
      await m.psql(f);
    const run = await runOf(m.tgt, 'shadowpack_mdeny');
    // A bulk load into the target (pg_restore --disable-triggers does the same), then the guard as it was.
    await m.tgt(`ALTER TABLE app.customers DISABLE TRIGGER ALL;
                 INSERT INTO app.customers (id, name, ref) VALUES (900100, 'loaded on the target', 900100);
                 ALTER TABLE app.customers ENABLE ALWAYS TRIGGER shadowpack_mdeny_${run}, ENABLE ALWAYS TRIGGER shadowpack_mdenyrow_${run}`);
    let outcome = await m.outcome('03-backfill.target.sql');
    if (outcome === 'ok') {
      for (const f of ['04-build.target.sql', '05-catchup.target.sql', '06-fence.source.sql', '07-cutover.target.sql'])
        await m.psql(f);
      outcome = `cut over: ${JSON.stringify((await compareMoveWithTwins(m.pair.source.url, m.pair.target.url)).tables.customers)}`;
    }
    expect(outcome).toMatch(/the guard refusing writes to .* on the target was disabled or altered during the move/);
    await m.psql('90-abort.target.sql');
    await m.psql('90-abort.source.sql');
    const [left] = await m.tgt(`SELECT to_regclass('app.customers') IS NULL AS gone`);
    expect(left!.gone).toBe(true);
  }, 60_000);
});
