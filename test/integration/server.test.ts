import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartImmediate, serverLogTail, startEmbeddedPostgres } from '../../src/dev/embedded-server.js';
import type { EmbeddedServer } from '../../src/dev/embedded-server.js';
import { freshDatabase, withClient } from '../helpers/db.js';
import type { FreshDatabase } from '../helpers/db.js';

const external = Boolean(process.env.TEST_DATABASE_URL);
const wantedMajor = process.env.SHADOWPACK_TEST_PG_MAJOR ? Number(process.env.SHADOWPACK_TEST_PG_MAJOR) : undefined;

describe('test database server', () => {
  let db: FreshDatabase | undefined;

  beforeAll(async () => {
    db = await freshDatabase('smoke');
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('answers version queries in a fresh database', async () => {
    const { url, name } = db!;
    await withClient(url, async (c) => {
      const version = await c.query<{ version: string }>('select version()');
      expect(version.rows[0]?.version).toMatch(/^PostgreSQL \d+/);

      const num = await c.query<{ server_version_num: string }>('show server_version_num');
      const major = Math.floor(Number(num.rows[0]?.server_version_num) / 10_000);
      expect(major).toBeGreaterThanOrEqual(14);
      if (!external && wantedMajor !== undefined) expect(major).toBe(wantedMajor);

      const current = await c.query<{ db: string }>('select current_database() as db');
      expect(current.rows[0]?.db).toBe(name);
    });
  });

  it('drops the database', async () => {
    const other = await freshDatabase('smoke drop');
    await withClient(other.url, (c) => c.query('create table t (id int)'));
    await other.drop();
    await other.drop(); // idempotent
    await expect(withClient(other.url, (c) => c.query('select 1'))).rejects.toThrow(/does not exist/);
  });
});

describe.skipIf(external)('restartImmediate', () => {
  let server: EmbeddedServer | undefined;
  const log: string[] = [];

  beforeAll(async () => {
    server = await startEmbeddedPostgres({
      major: wantedMajor,
      settings: { shared_buffers: '32MB', max_connections: '20' },
      log: (line) => log.push(line),
    });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('keeps committed rows across an immediate shutdown', async () => {
    const s = server!;
    await withClient(s.url, async (c) => {
      await c.query('create table crash_probe (id int primary key, note text)');
      await c.query(`insert into crash_probe values (1, 'committed')`);
    });

    // An open transaction whose row must not survive.
    const open = new pg.Client({ connectionString: s.url });
    open.on('error', () => undefined);
    await open.connect();
    await open.query('begin');
    await open.query(`insert into crash_probe values (2, 'uncommitted')`);

    const before = await withClient(s.url, (c) => c.query<{ t: Date }>('select pg_postmaster_start_time() as t'));
    const port = s.port;

    const same = await restartImmediate(s);
    expect(same).toBe(s);
    expect(s.port).toBe(port);
    await open.end().catch(() => undefined);

    const tail = serverLogTail(s, 200);
    expect(tail).toMatch(/immediate shutdown request/);
    expect(tail).toMatch(/not properly shut down; automatic recovery in progress/);

    await withClient(s.url, async (c) => {
      const after = await c.query<{ t: Date }>('select pg_postmaster_start_time() as t');
      expect(after.rows[0]?.t.getTime()).toBeGreaterThan(before.rows[0]!.t.getTime());
      const rows = await c.query('select id, note from crash_probe order by id');
      expect(rows.rows).toEqual([{ id: 1, note: 'committed' }]);
    });
  });

  it('names the cause and shows the server log when the server cannot start', async () => {
    // The port is taken by the running server: pg_ctl start fails, and the message carries the log's reason.
    await expect(startEmbeddedPostgres({ major: wantedMajor, port: server!.port })).rejects.toThrow(
      /failed to start on 127\.0\.0\.1:\d+[\s\S]*(already in use|could not create any TCP\/IP sockets)/,
    );
  });

  it('stop() removes its own data directory', async () => {
    const s = server!;
    expect(existsSync(s.dataDir)).toBe(true);
    await s.stop();
    await s.stop(); // idempotent
    expect(existsSync(s.dataDir)).toBe(false);
    expect(log.some((l) => l.includes('received fast shutdown request'))).toBe(true);
  });
});
