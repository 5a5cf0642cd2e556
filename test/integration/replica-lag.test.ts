/**
 * The replica-lag throttle against a real streaming replica: a standby whose
 * replay is paused falls behind, and the backfill waits for it before its
 * first batch; once replay resumes, the backfill goes on and the rebuild ends
 * equal to its twin. The standby is made from a low-level base backup
 * (pg_backup_start / copy / pg_backup_stop): the embedded binaries have no
 * pg_basebackup.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { withClient } from '../helpers/db.js';
import { startStandby, waitFor } from '../helpers/standby.js';
import { cli, leftovers, planTable } from '../helpers/rebuild.js';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/dev/embedded-server.js';
import { compareWithTwin, createDemoSchema, startWriters } from '../../src/dev/workload.js';

const servers: EmbeddedServer[] = [];
afterAll(async () => {
  // The standby first: its directory lives inside the primary's, which stop() removes.
  for (const s of servers.reverse()) await s.stop().catch(() => undefined);
});

describe('replica lag throttle', () => {
  it('waits while a standby replays behind, then finishes equal to the twin', async () => {
    const primary = await startEmbeddedPostgres({ settings: { wal_level: 'replica', max_wal_senders: '4' } });
    servers.push(primary);
    await withClient(primary.url, (c) => createDemoSchema(c, 6_000));
    const standby = await startStandby(primary);
    servers.push(standby);

    const plan = await planTable(primary.url, 'app', 'orders', { batchPages: 5, maxReplicaLagMs: 300 });
    expect(plan.files.get('01-setup.sql')).toContain('pg_stat_replication');
    const writers = await startWriters({ connectionString: primary.url }, 2, 5);
    const setup = await cli(['run', '--plan', plan.dir, '--url', primary.url, '--until', 'setup']);
    expect(setup.code, setup.stderr).toBe(0);

    await withClient(standby.url, (c) => c.query('SELECT pg_wal_replay_pause()'));
    await withClient(primary.url, async (c) => {
      // The writers keep WAL coming; with replay paused, the lag grows past the limit.
      await waitFor('the replay lag to pass 300 ms', async () => {
        const r = await c.query<{ ms: number | null }>(
          "SELECT extract(epoch FROM replay_lag) * 1000 AS ms FROM pg_stat_replication WHERE application_name = 'standby1'",
        );
        return Number(r.rows[0]?.ms ?? 0) > 600 ? true : undefined;
      });
      const backfill = cli(['run', '--plan', plan.dir, '--url', primary.url, '--until', 'backfill']);
      const held = await waitFor('the throttle to wait for the replica', async () => {
        const r = await c.query<{ waiting_for: string | null; next: string }>(
          `SELECT k.waiting_for, r.backfill_next AS next FROM shadowpack.runs r, shadowpack.control_${plan.manifest.runId} k`,
        );
        const row = r.rows[0]!;
        return row.waiting_for?.startsWith('replica replay lag') ? row : undefined;
      });
      expect(held.waiting_for).toMatch(/^replica replay lag \d+ ms is above 300 ms$/);
      expect(Number(held.next)).toBe(0);

      await withClient(standby.url, (s) => s.query('SELECT pg_wal_replay_resume()'));
      const b = await backfill;
      expect(b.code, b.stderr).toBe(0);
      expect(b.stderr).toMatch(/waiting: replica replay lag/);
    });

    const rest = await cli(['run', '--plan', plan.dir, '--url', primary.url, '--until', 'cleanup']);
    expect(rest.code, rest.stderr).toBe(0);
    const stats = await writers.stop();
    expect(stats.errors, stats.lastError ?? '').toBe(0);
    await withClient(primary.url, async (c) => {
      expect(await compareWithTwin(c)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
      expect(await leftovers(c)).toEqual([]);
    });
  });
});
