import { execFileSync } from 'node:child_process';
import { chownSync, statSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { withClient } from './db.js';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/dev/embedded-server.js';

export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A hot standby of `primary` (started with wal_level replica and wal senders), streaming from it as
 * `standby1`, from a low-level base backup (pg_backup_start / copy / pg_backup_stop): the embedded
 * binaries have no pg_basebackup. Resolves once it streams. Stop it before the primary: its directory
 * lives inside the primary's.
 */
export async function startStandby(
  primary: EmbeddedServer,
  settings: Record<string, string> = {},
): Promise<EmbeddedServer> {
  const dir = join(dirname(primary.dataDir), 'standby');
  const owner = statSync(primary.dataDir);
  await withClient(primary.url, async (c) => {
    await c.query("SELECT pg_backup_start('shadowpack-test', true)");
    // cp -a keeps the server user's ownership and modes; the WAL comes by streaming.
    execFileSync('cp', ['-a', primary.dataDir, dir]);
    execFileSync('sh', ['-c', `rm -rf "${dir}"/pg_wal/* "${dir}/postmaster.pid" "${dir}/postmaster.opts"`]);
    const stop = await c.query<{ labelfile: string }>('SELECT labelfile FROM pg_backup_stop(true)');
    for (const [name, text] of [
      ['backup_label', stop.rows[0]!.labelfile],
      ['standby.signal', ''],
    ] as const) {
      writeFileSync(join(dir, name), text);
      chownSync(join(dir, name), owner.uid, owner.gid);
    }
  });
  const standby = await startEmbeddedPostgres({
    dataDir: dir,
    settings: {
      primary_conninfo: `host=127.0.0.1 port=${primary.port} user=postgres password=postgres application_name=standby1`,
      hot_standby: 'on',
      // Frequent replies, so the primary's replay_lag (and the feedback xmin) follow the standby closely.
      wal_receiver_status_interval: '1s',
      ...settings,
    },
  });
  await waitFor('the standby to stream', async () => {
    const r = await withClient(primary.url, (c) =>
      c.query("SELECT 1 FROM pg_stat_replication WHERE application_name = 'standby1' AND state = 'streaming'"),
    );
    return r.rowCount === 1 ? true : undefined;
  });
  return standby;
}
