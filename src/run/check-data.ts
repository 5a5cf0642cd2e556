import type { ClientBase } from 'pg';
import type { PlanOptions } from '../compile/options.js';
import { checkDataSql } from '../compile/transform/check-data-sql.js';
import type { TransformSpec } from '../compile/transform/spec.js';
import type { TableModel } from '../model/types.js';

export interface BadRow {
  readonly key: string;
  readonly error: string;
}

/**
 * Finds rows that would stop the backfill, before anything runs: copies
 * them into a copy shaped like the plan's, in a transaction that is always
 * rolled back, so the database is left as it was.
 */
export async function checkData(
  client: ClientBase,
  model: TableModel,
  spec: TransformSpec,
  options: PlanOptions,
  limit = 10,
): Promise<BadRow[]> {
  const bad: BadRow[] = [];
  const onNotice = (n: { message?: string }) => {
    const m = /^shadowpack:bad-row (.*)$/s.exec(n.message ?? '');
    if (m) {
      const v = JSON.parse(m[1]!) as { key: string; error: string };
      bad.push({ key: v.key, error: v.error });
    }
  };
  client.on('notice', onNotice);
  try {
    for (const sql of checkDataSql(model, spec, options, limit)) await client.query(sql);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.off('notice', onNotice);
  }
  return bad;
}
