import { dependentObjectsSql } from '../model/dependents-sql.js';
import { dollarTag, literal, qualified } from '../model/quote.js';
import type { TableModel } from '../model/types.js';

/**
 * A DO block that stops a stage, before it changes anything, when objects
 * depend on `rel` that the plan does not carry. Revert checks the live table
 * (something created over it after the swap would be left reading the copy,
 * and would keep the copy from being dropped); cleanup checks the old table
 * (something bound to it would make DROP TABLE fail halfway). The stage
 * names them instead, and can run again once they are dealt with.
 */
export function unplannedDependentsCheck(
  stage: string,
  rel: string,
  model: TableModel,
  carried: boolean,
  partitions: readonly string[] = [],
): string {
  const relExpr = `to_regclass(${literal(rel)})`;
  const views = carried
    ? model.dependents.views.map((v) => `to_regclass(${literal(qualified(v.schema, v.name))})`)
    : [];
  const functions = carried
    ? model.dependents.functions.map((f) => `(${literal(f.schema)}, ${literal(f.name)}, ${literal(f.arguments)})`)
    : [];
  const publications = carried ? model.dependents.publications.map((p) => literal(p.name)) : [];
  const conditions: string[] = [];
  if (views.length)
    conditions.push(
      `NOT (o.classid = 'pg_rewrite'::regclass AND r.rulename = '_RETURN' AND r.ev_class IN (${views.join(', ')}))`,
    );
  if (functions.length) {
    conditions.push(`NOT (o.classid = 'pg_proc'::regclass AND o.objid IN (SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE (n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid)) IN (${functions.join(', ')})))`);
  }
  // Extended statistics: the plan's own are renamed back by revert; those on the old table go with it
  // at cleanup, as DROP TABLE drops them (they describe that table only, nothing is lost).
  const statistics = model.extendedStatistics.map((st) => `(${literal(st.schema)}, ${literal(st.name)})`);
  if (!carried) conditions.push(`o.classid <> 'pg_statistic_ext'::regclass`);
  else if (statistics.length) {
    conditions.push(`NOT (o.classid = 'pg_statistic_ext'::regclass AND o.objid IN (SELECT s.oid FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
                  WHERE (n.nspname::text, s.stxname::text) IN (${statistics.join(', ')})))`);
  }
  // The plan's own partitions (--partition-by) go with the rebuilt table.
  if (partitions.length)
    conditions.push(
      `NOT (o.classid = 'pg_class'::regclass AND o.objid IN (${partitions.map((t) => `to_regclass(${literal(t)})`).join(', ')}))`,
    );
  const where = conditions.length ? `\n       WHERE ${conditions.join('\n         AND ')}` : '';
  // Publication membership is dropped with the table without an error; only revert can lose it silently.
  const pubs = carried
    ? `
      UNION ALL
      SELECT format('publication %I', p.pubname) FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
       WHERE pr.prrelid = ${relExpr}${publications.length ? ` AND p.pubname NOT IN (${publications.join(', ')})` : ''}`
    : '';
  const body = `DECLARE
  found text;
BEGIN
  IF ${relExpr} IS NULL THEN
    RETURN;
  END IF;
  SELECT string_agg(x.d, '; ' ORDER BY x.d) INTO found FROM (
      SELECT pg_describe_object(o.classid, o.objid, o.objsubid) AS d
        FROM (${dependentObjectsSql(relExpr)}) o
        LEFT JOIN pg_rewrite r ON o.classid = 'pg_rewrite'::regclass AND r.oid = o.objid${where}${pubs}) x;
  IF found IS NOT NULL THEN
    RAISE EXCEPTION 'shadowpack: % stopped before changing anything: % depend on %, and this plan does not carry them', ${literal(stage)}, found, ${literal(rel)}
      USING HINT = 'Drop them (re-create them after this stage), then run the stage again.';
  END IF;
END`;
  const tag = dollarTag(body);
  return `DO ${tag}\n${body}\n${tag};`;
}
