/**
 * SQL that finds the objects depending on a table from outside it: views,
 * rules, functions, policies of other tables, columns of its row type,
 * extended statistics. Shared by introspection (which carries or refuses each
 * one) and the catalog signature (which must change when any of them does),
 * so both agree on what "a dependent" is. Fully qualified: it runs under any
 * search_path, but its output is only canonical under search_path = pg_catalog.
 */

/**
 * Rows (classid, objid, objsubid, refclassid) of pg_depend for every object
 * that depends on the table `rel` or on its row type (or that type's array
 * type), except the table's own parts, which the swap carries itself: its
 * columns, indexes, constraints, triggers, policies, defaults, owned
 * sequences, TOAST table and row type, and foreign keys pointing at it.
 * Publication membership is read separately (see PUBLICATIONS_SQL).
 */
export function dependentObjectsSql(rel: string): string {
  // The three referenced objects are joined to pg_depend one by one, so each is an index probe
  // (pg_depend_reference_index); written as one OR of the three, the condition read all of pg_depend
  // (about 20 ms on a fresh database, in every stage's guard).
  return `SELECT DISTINCT d.classid, d.objid, d.objsubid, d.refclassid
  FROM pg_catalog.pg_class c
 CROSS JOIN LATERAL (VALUES ('pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, c.oid),
                            ('pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid, c.reltype),
                            ('pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid,
                             (SELECT t.typarray FROM pg_catalog.pg_type t WHERE t.oid = c.reltype))) AS ref(classid, objid)
  JOIN pg_catalog.pg_depend d ON d.refclassid = ref.classid AND d.refobjid = ref.objid
 WHERE c.oid = ${rel}
   AND d.deptype IN ('n', 'a')
   AND NOT (d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
            AND (d.objid = c.oid
                 OR d.objid IN (SELECT i.indexrelid FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid)
                 OR d.objid IN (SELECT s.oid FROM pg_catalog.pg_class s WHERE s.relkind = 'S')))
   AND NOT (d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
            AND d.objid IN (SELECT k.oid FROM pg_catalog.pg_constraint k
                             WHERE k.conrelid = c.oid OR (k.contype = 'f' AND k.confrelid = c.oid)))
   AND NOT (d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
            AND d.objid IN (SELECT g.oid FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.oid))
   AND NOT (d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass
            AND d.objid IN (SELECT p.oid FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid))
   AND NOT (d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
            AND d.objid IN (SELECT a.oid FROM pg_catalog.pg_attrdef a WHERE a.adrelid = c.oid))
   AND d.classid <> 'pg_catalog.pg_publication_rel'::pg_catalog.regclass`;
}

/**
 * One canonical line per dependent, for the signature: what it is, and for
 * the views and functions the swap re-creates, exactly the text it re-runs
 * (definition, options, owner), so a plan never re-creates a stale one.
 * Publication membership (with column list and row filter) is read through
 * pg_publication_tables as JSON, which works on every supported version.
 */
export function dependentsSignatureSql(rel: string, schemaLiteral: string, tableLiteral: string): string {
  return `(SELECT pg_catalog.string_agg(x.line, E'\\n' ORDER BY x.line) FROM (
      SELECT pg_catalog.concat_ws('|', pg_catalog.pg_describe_object(o.classid, o.objid, o.objsubid), o.refclassid,
        (SELECT pg_catalog.concat_ws('|', r.rulename, v.relkind, v.relpersistence, pg_catalog.pg_get_userbyid(v.relowner),
                (SELECT pg_catalog.string_agg(opt, ',' ORDER BY opt) FROM pg_catalog.unnest(v.reloptions) opt), pg_catalog.pg_get_viewdef(v.oid))
           FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
          WHERE o.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND r.oid = o.objid),
        (SELECT pg_catalog.concat_ws('|', pg_catalog.pg_get_userbyid(p.proowner), pg_catalog.pg_get_functiondef(p.oid))
           FROM pg_catalog.pg_proc p
          WHERE o.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = o.objid AND p.prokind IN ('f', 'p'))) AS line
        FROM (${dependentObjectsSql(rel)}) o
      UNION ALL
      SELECT pg_catalog.concat_ws('|', 'publication', pt.pubname, p.puballtables, r.oid IS NOT NULL,
             (pg_catalog.to_jsonb(r) ->> 'prattrs') IS NULL,
             (pg_catalog.to_jsonb(pt) - 'pubname' - 'schemaname' - 'tablename')::pg_catalog.text)
        FROM pg_catalog.pg_publication_tables pt
        JOIN pg_catalog.pg_publication p ON p.pubname = pt.pubname
        LEFT JOIN pg_catalog.pg_publication_rel r ON r.prpubid = p.oid AND r.prrelid = ${rel}
       WHERE pt.schemaname = ${schemaLiteral} AND pt.tablename = ${tableLiteral}
    ) x)`;
}
