/**
 * The oracle of the cross-cluster move tests checked on its own (test/helpers/move-*.ts): the twin writers keep
 * twins equal to the group on the source; a copy of the group to the target compares equal, a single changed
 * row on the target does not; in stop-at-fence mode every writer stops at the fence message and nothing else
 * fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../helpers/db.js';
import { compareMoveWithTwins, createMoveFixture, MOVE_COLUMNS, MOVE_GROUP } from '../helpers/move-fixture.js';
import {
  createTestForeignServer,
  freshMovePair,
  MOVE_SOURCE_MISSING,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';
import { openSpanning, prepareOne, startMoveWriters } from '../helpers/move-writers.js';

let servers: MoveServers;
let pair: MovePair;

beforeAll(async () => {
  servers = await startMoveServers();
  pair = await freshMovePair(servers, 'move_harness');
  await withClient(pair.source.url, (c) => createMoveFixture(c));
}, 120_000);

afterAll(async () => {
  await pair?.drop();
  await servers?.stop();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('the move oracle', () => {
  it('twins equal the group after concurrent writers, a spanning and a prepared transaction; one changed row is found', async () => {
    const writers = await startMoveWriters(pair.source.url, { count: 4, seed: 3 });
    const spanning = await openSpanning(pair.source.url);
    const prepared = await prepareOne(pair.source.url, 'move_harness_gid');
    await sleep(600);
    await prepared.commit();
    await spanning.commit();
    await sleep(300);
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    expect(stats.commits).toBeGreaterThan(20);
    expect(stats.rollbacks).toBeGreaterThan(0);

    // The target gets the group's tables (no FKs needed) and a copy through postgres_fdw.
    await withClient(pair.target.url, (c) => createMoveFixture(c, { customers: 0, orders: 0 }));
    await createTestForeignServer(pair);
    await withClient(pair.target.url, async (c) => {
      await c.query('CREATE SCHEMA src');
      await c.query(`IMPORT FOREIGN SCHEMA app LIMIT TO (${MOVE_GROUP.join(', ')}) FROM SERVER src INTO src`);
      await c.query('TRUNCATE app.order_items, app.orders, app.customers');
      for (const t of MOVE_GROUP) {
        const cols = MOVE_COLUMNS[t].join(', ');
        await c.query(`INSERT INTO app.${t} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM src.${t}`);
      }
    });
    const same = await compareMoveWithTwins(pair.source.url, pair.target.url);
    expect(same.equal, JSON.stringify(same)).toBe(true);
    expect(same.tables.orders.rows).toBeGreaterThan(1000);

    await withClient(pair.target.url, (c) =>
      c.query(`UPDATE app.orders SET ratio = ratio + 1 WHERE id = (SELECT min(id) FROM app.orders)`),
    );
    const differs = await compareMoveWithTwins(pair.source.url, pair.target.url);
    expect(differs.equal).toBe(false);
    expect(differs.tables.orders).toMatchObject({ missing: 1, extra: 1 });
    expect(differs.tables.customers).toMatchObject({ missing: 0, extra: 0 });
  });

  it('stop-at-fence: each writer counts the fence message once and stops; nothing else fails', async () => {
    const writers = await startMoveWriters(pair.source.url, { count: 3, seed: 5, stopAtFence: true });
    await sleep(300);
    // A stand-in for the move's fence (06-fence.source.sql): statement triggers refusing every write.
    await withClient(pair.source.url, async (c) => {
      await c.query(`CREATE FUNCTION app.fence() RETURNS trigger LANGUAGE plpgsql AS
        $$BEGIN RAISE EXCEPTION 'shadowpack: % moved to the target; writes are refused (run test)', TG_TABLE_NAME; END$$`);
      for (const t of MOVE_GROUP) {
        await c.query(
          `CREATE TRIGGER fence BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON app.${t} FOR EACH STATEMENT EXECUTE FUNCTION app.fence()`,
        );
      }
    });
    const stats = await writers.fencedAll;
    expect(stats).toMatchObject({ fenced: 3, errors: 0 });
    expect(stats.commits).toBeGreaterThan(0);
  });
});
