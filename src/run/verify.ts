import { connectClient } from './connect.js';
import type { ClientConfig } from 'pg';
import type { PlanManifest } from '../compile/compile.js';
import { verifySql, type VerifySide } from '../compile/verify-sql.js';
import { UserError } from '../model/errors.js';
import { readState } from './state.js';

export interface VerifyResult {
  readonly side: VerifySide;
  readonly compared: number;
  readonly missing: number;
  readonly extra: number;
  readonly changed: number;
  readonly pending: number;
  readonly pass: boolean;
}

/** Read-only: compares the table with the copy (or the old table) in one snapshot. */
export async function verify(connection: ClientConfig, manifest: PlanManifest): Promise<VerifyResult> {
  const client = await connectClient(connection);
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const state = await readState(client, manifest);
    let side: VerifySide;
    switch (state?.stage) {
      case 'backfill':
      case 'build':
      case 'catchup':
        side = 'before-swap';
        break;
      case 'swap':
        side = 'after-swap';
        break;
      default:
        throw new UserError('RUN_STATE', `nothing to verify: the run is ${state ? `at stage "${state.stage}"` : 'not set up'}; verify works after the backfill and until cleanup`);
    }
    const r = await client.query<Record<string, string>>(verifySql(manifest.model, side));
    const row = r.rows[0]!;
    const result = { side, compared: Number(row['compared']), missing: Number(row['missing']), extra: Number(row['extra']), changed: Number(row['changed']), pending: Number(row['pending']) };
    return { ...result, pass: result.missing === 0 && result.extra === 0 && result.changed === 0 };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
