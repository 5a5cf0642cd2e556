import { dollarTag, ident, literal } from '../../model/quote.js';
import type { TableModel } from '../../model/types.js';
import { commonContext } from '../context.js';
import { rowByRowSearch } from '../owner-statements.js';
import type { PlanOptions } from '../options.js';
import { deriveTarget } from './derive.js';
import type { TransformSpec } from './spec.js';

/** Raised by the row-by-row search with the number of rows it named. */
const FOUND_SQLSTATE = 'SPB02';

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
  // The INSERT evaluates the owner's code (defaults, casts, --alter expressions, checks): when a
  // superuser other than the owner plans, it runs as the owner, through a SECURITY DEFINER function
  // in a schema made for this transaction (no grants: the owner cannot name it to change it), as the
  // run itself does (owner-functions.hbs). Rolled back with everything else.
  const schema = ident(`shadowpack_check_${c.names.runId}`);
  const fn = `${schema}.${ident('as_owner')}`;
  const ownerBody = `
BEGIN
  IF current_user = ${literal(model.owner)} OR NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    CREATE FUNCTION pg_temp.sp_check_insert(statement text, a bigint, b bigint) RETURNS void
    LANGUAGE plpgsql AS $f$ BEGIN EXECUTE statement USING a, b; END $f$;
    RETURN;
  END IF;
  CREATE SCHEMA ${schema};
  CREATE FUNCTION ${fn}(statement text, a bigint, b bigint) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$ BEGIN EXECUTE statement USING a, b; END $f$;
  ALTER FUNCTION ${fn}(text, bigint, bigint) OWNER TO ${ident(model.owner)};
  ALTER TABLE ${c.copy} OWNER TO ${ident(model.owner)};
${c.partitionTables.map((t) => `  ALTER TABLE ${t} OWNER TO ${ident(model.owner)};\n`).join('')}END
`;
  const ownerSetup = `DO ${dollarTag(ownerBody)}${ownerBody}${dollarTag(ownerBody)}`;
  const call = `CASE WHEN to_regnamespace(${literal(`shadowpack_check_${c.names.runId}`)}) IS NULL THEN 'pg_temp.sp_check_insert' ELSE ${literal(fn)} END`;
  const statement = (where: string) =>
    literal(
      `INSERT INTO ${c.copy} (${c.forward.insertList}) SELECT ${c.forward.selectList} FROM ONLY ${c.src} WHERE ${where}`,
    );
  const insert = (where: string, a: string, b: string) =>
    `EXECUTE format('SELECT %s($1, $2, $3)', ${call}) USING ${statement(where)}, ${a}, ${b};`;
  // When a batch fails, its rows are retried one by one in key order to name those that do not fit (at
  // most the %3$s still wanted), each in a NOTICE; the search raises FOUND_SQLSTATE with their count.
  // As the owner, like the backfill's: reading the table plans it, which folds its index expressions.
  const search = rowByRowSearch({
    src: c.src,
    keyList: c.keyList,
    insert: `INSERT INTO ${c.copy} (${c.forward.insertList}) SELECT ${c.forward.selectList} FROM ONLY ${c.src}`,
    declare: ['  found integer := 0;'],
    onBad: [
      '      found := found + 1;\n',
      "      RAISE NOTICE 'shadowpack:bad-row %', json_build_object('key', bad.k, 'error', failure);\n",
      '      EXIT WHEN found >= ',
      { arg: 3 },
      ';\n',
    ],
    after: [`  RAISE EXCEPTION USING ERRCODE = '${FOUND_SQLSTATE}', MESSAGE = found::text;`],
  });
  const body = `
DECLARE
  last_page bigint := pg_relation_size(${literal(c.src)}) / current_setting('block_size')::bigint;
  step bigint := ${options.batchPages};
  p bigint := 0;
  found integer := 0;
  counted text;
BEGIN
  WHILE p < last_page AND found < ${limit} LOOP
    BEGIN
      ${insert("ctid >= format('(%s,0)', $1)::tid AND ctid < format('(%s,0)', $1 + $2)::tid", 'p', 'step')}
    EXCEPTION WHEN OTHERS THEN
      -- Name the batch's rows that do not fit, as the owner (see rowByRowSearch); it raises the count.
      BEGIN
        EXECUTE format('SELECT %s($1, NULL, NULL)', ${call}) USING format(${search}, p, p + step, ${limit} - found);
      EXCEPTION WHEN SQLSTATE '${FOUND_SQLSTATE}' THEN
        GET STACKED DIAGNOSTICS counted = MESSAGE_TEXT;
        found := found + counted::integer;
      END;
    END;
    p := p + step;
  END LOOP;
END`;
  return [
    'BEGIN',
    `SET LOCAL lock_timeout = '${options.lockTimeoutMs}ms'`,
    // Partitioned like the plan's copy, so its partitions can be created and rows routed the same way.
    `CREATE TABLE ${c.copy} (${c.columnDefs.join(', ')})${target.partitioning !== null ? c.copyStorage : ''}`,
    ...target.partitionSteps.map((s) => s.sql.replace(/;\s*$/, '')),
    ownerSetup,
    // The generated columns (and those after them) as the owner: creating one plans its expression.
    ...(target.ownerColumns.length === 0
      ? []
      : [
          (() => {
            const body = `BEGIN EXECUTE format('SELECT %s($1, NULL, NULL)', ${call}) USING ${literal(c.ownerColumnsSql)}; END`;
            return `DO ${dollarTag(body)}${body}${dollarTag(body)}`;
          })(),
        ]),
    // The --alter statements as the owner too: adding a non-volatile DEFAULT evaluates it.
    ...target.alterSteps.map((s) => {
      const body = `BEGIN EXECUTE format('SELECT %s($1, NULL, NULL)', ${call}) USING ${literal(s.sql.replace(/;\s*$/, ''))}; END`;
      return `DO ${dollarTag(body)}${body}${dollarTag(body)}`;
    }),
    // The tag is chosen so that no name inside the body can end it early.
    `DO ${dollarTag(body, 'check')}${body}\n${dollarTag(body, 'check')}`,
  ];
}
