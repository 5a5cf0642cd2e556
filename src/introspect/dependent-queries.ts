import { dependentObjectsSql } from '../model/dependents-sql.js';

/**
 * Catalog queries for the objects that depend on the table from outside it.
 * $1 is the table's oid; they run with search_path = pg_catalog, so
 * definitions come back fully qualified.
 */

/** Every dependent, with what is needed to decide whether it can be carried. */
export const DEPENDENTS_SQL = `
SELECT o.classid::regclass::text AS catalog, pg_describe_object(o.classid, o.objid, o.objsubid) AS description,
       o.refclassid = 'pg_type'::regclass AS via_row_type,
       r.rulename AS rule_name, v.relkind AS rel_kind, v.relpersistence AS rel_persistence,
       p.prokind AS proc_kind, p.prosqlbody IS NOT NULL AS sql_body, pn.nspname ~ '^pg_temp_' AS proc_temp
  FROM (${dependentObjectsSql('$1::oid')}) o
  LEFT JOIN pg_rewrite r ON o.classid = 'pg_rewrite'::regclass AND r.oid = o.objid
  LEFT JOIN pg_class v ON v.oid = r.ev_class
  LEFT JOIN pg_proc p ON o.classid = 'pg_proc'::regclass AND p.oid = o.objid
  LEFT JOIN pg_namespace pn ON pn.oid = p.pronamespace
 ORDER BY 2`;

/**
 * Views whose query reads the table directly, with their depth in the chain
 * of views over it (a view over a view over the table has depth 2).
 */
export const DEPENDENT_VIEWS_SQL = `
WITH RECURSIVE chain(oid, depth) AS (
  SELECT r.ev_class, 1
    FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
   WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND r.ev_class <> $1
  UNION
  SELECT r.ev_class, c.depth + 1
    FROM chain c
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
    JOIN pg_rewrite r ON r.oid = d.objid
   WHERE r.ev_class <> c.oid AND c.depth < 50)
SELECT n.nspname AS schema, v.relname AS name, pg_get_userbyid(v.relowner) AS owner,
       coalesce(v.reloptions, '{}') AS options, pg_get_viewdef(v.oid) AS definition,
       (SELECT max(c.depth) FROM chain c WHERE c.oid = v.oid) AS depth
  FROM pg_class v JOIN pg_namespace n ON n.oid = v.relnamespace
 WHERE v.relkind = 'v' AND v.relpersistence <> 't'
   AND v.oid IN (SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                  WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
                    AND d.refobjid = $1 AND r.rulename = '_RETURN')
 ORDER BY 6, 1, 2`;

/** Functions and procedures with a SQL-standard body that reads the table. */
export const DEPENDENT_FUNCTIONS_SQL = `
SELECT n.nspname AS schema, p.proname AS name, pg_get_function_identity_arguments(p.oid) AS arguments,
       p.prokind AS kind, pg_get_userbyid(p.proowner) AS owner, pg_get_functiondef(p.oid) AS definition
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.prosqlbody IS NOT NULL AND p.prokind IN ('f', 'p') AND n.nspname !~ '^pg_temp_'
   AND p.oid IN (SELECT d.objid FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1)
 ORDER BY 1, 2, 3`;

/**
 * Every publication that publishes the table ($2 schema, $3 name), and how:
 * explicitly (with its column list and row filter, read as JSON so the query
 * parses on PostgreSQL 14, which has neither), or through FOR ALL TABLES.
 */
export const PUBLICATIONS_SQL = `
SELECT p.pubname AS name, pg_get_userbyid(p.pubowner) AS owner, p.puballtables AS all_tables, r.oid IS NOT NULL AS explicit,
       CASE WHEN jsonb_typeof(to_jsonb(r) -> 'prattrs') = 'array' THEN
         (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
           WHERE a.attrelid = $1 AND a.attnum IN (SELECT x::int2 FROM jsonb_array_elements_text(to_jsonb(r) -> 'prattrs') x)) END AS columns,
       to_jsonb(pt) ->> 'rowfilter' AS row_filter
  FROM pg_publication_tables pt
  JOIN pg_publication p ON p.pubname = pt.pubname
  LEFT JOIN pg_publication_rel r ON r.prpubid = p.oid AND r.prrelid = $1
 WHERE pt.schemaname = $2 AND pt.tablename = $3
 ORDER BY 1`;

/** PostgreSQL 15+: publications of every table in a schema ($1: the schemas that matter). */
export const SCHEMA_PUBLICATIONS_SQL = `
SELECT p.pubname AS name, n.nspname AS schema
  FROM pg_publication_namespace pn
  JOIN pg_publication p ON p.oid = pn.pnpubid
  JOIN pg_namespace n ON n.oid = pn.pnnspid
 WHERE n.nspname = ANY ($1::text[])
 ORDER BY 1, 2`;
