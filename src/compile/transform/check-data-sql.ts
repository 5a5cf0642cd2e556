import { dollarTag, literal } from '../../model/quote.js';
import type { TableModel } from '../../model/types.js';
import { commonContext } from '../context.js';
import type { PlanOptions } from '../options.js';
import { deriveTarget } from './derive.js';
import type { TransformSpec } from './spec.js';

/**
 * `plan --check-data`: statements that create the copy exactly as setup
 * does, shape it with the --alter statements, and push every row through
 * the same INSERT (same expressions, same assignment coercion, same checks)
 * as the backfill, batch by batch; a failing batch is retried row by row and
 * each bad row reported as a NOTICE (at most `limit`). Run inside a
 * transaction that is rolled back: nothing stays.
 */
export function checkDataSql(model: TableModel, spec: TransformSpec, options: PlanOptions, limit: number): string[] {
  const target = deriveTarget(model, spec);
  const c = commonContext(model, target, options, 'check');
  const range = "ctid >= format('(%s,0)', p)::tid AND ctid < format('(%s,0)', p + step)::tid";
  const insert = (where: string) => `INSERT INTO ${c.copy} (${c.forward.insertList}) SELECT ${c.forward.selectList} FROM ONLY ${c.src} WHERE ${where};`;
  const body = `
DECLARE
  last_page bigint := pg_relation_size(${literal(c.src)}) / current_setting('block_size')::bigint;
  step bigint := ${options.batchPages};
  p bigint := 0;
  found integer := 0;
  bad record;
  failure text;
BEGIN
  WHILE p < last_page AND found < ${limit} LOOP
    BEGIN
      ${insert(range)}
    EXCEPTION WHEN OTHERS THEN
      FOR bad IN SELECT ctid AS t, ROW(${c.keyList})::text AS k FROM ONLY ${c.src} WHERE ${range} ORDER BY ${c.keyList} LOOP
        EXIT WHEN found >= ${limit};
        BEGIN
          ${insert('ctid = bad.t')}
        EXCEPTION WHEN OTHERS THEN
          GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT;
          found := found + 1;
          RAISE NOTICE 'shadowpack:bad-row %', json_build_object('key', bad.k, 'error', failure);
        END;
      END LOOP;
    END;
    p := p + step;
  END LOOP;
END`;
  return [
    'BEGIN',
    `SET LOCAL lock_timeout = '${options.lockTimeoutMs}ms'`,
    // Partitioned like the plan's copy, so its partitions can be created and rows routed the same way.
    `CREATE TABLE ${c.copy} (${c.columnDefs.join(', ')})${target.partitioning !== null ? c.copyStorage : ''}`,
    ...c.alterSetupSteps.map((s) => s.sql.replace(/;\s*$/, '')),
    // The tag is chosen so that no name inside the body can end it early.
    `DO ${dollarTag(body, 'check')}${body}\n${dollarTag(body, 'check')}`,
  ];
}
