import { literal, qualified } from './quote.js';
import { dependentsSignatureSql } from './dependents-sql.js';

/**
 * The catalog signature of a table: md5 over a canonical text of everything a
 * rebuild depends on. It is SQL, not TypeScript, so that the plan's scripts can
 * recompute it under psql and refuse to run on a table that drifted. The same
 * text is run by introspection to fill `TableModel.fingerprint`.
 *
 * It must run with search_path = pg_catalog so that every name is qualified
 * the same way everywhere. The tool's own triggers are excluded (by the schema
 * of their function) so that the signature does not change during a run.
 */
export function signatureSql(schema: string, table: string, toolSchema: string): string {
  const rel = `${literal(qualified(schema, table))}::pg_catalog.regclass`;
  const tool = literal(toolSchema);
  return `pg_catalog.md5(pg_catalog.concat_ws(E'\\n',
    (SELECT pg_catalog.concat_ws('|', c.relkind, c.relpersistence, c.relispartition, c.relhassubclass,
            c.relrowsecurity, c.relforcerowsecurity, c.relreplident, pg_catalog.pg_get_userbyid(c.relowner),
            pg_catalog.array_to_string(c.reloptions, ','), c.relacl::pg_catalog.text, c.reltablespace <> 0,
            pg_catalog.obj_description(c.oid, 'pg_class'))
       FROM pg_catalog.pg_class c WHERE c.oid = ${rel}),
    (SELECT pg_catalog.string_agg(pg_catalog.concat_ws('|', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
            a.attnotnull, a.attidentity, a.attgenerated, a.attstorage, a.attstattarget, a.attcompression, a.attcollation::pg_catalog.regcollation,
            pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attacl::pg_catalog.text, (SELECT pg_catalog.string_agg(o, ',' ORDER BY o) FROM pg_catalog.unnest(a.attoptions) o WHERE o LIKE 'n\\_distinct%'),
            pg_catalog.col_description(a.attrelid, a.attnum)), E'\\n' ORDER BY a.attnum)
       FROM pg_catalog.pg_attribute a
       LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = ${rel} AND a.attnum > 0 AND NOT a.attisdropped),
    (SELECT pg_catalog.string_agg(pg_catalog.concat_ws('|', pg_catalog.pg_get_indexdef(i.indexrelid), i.indisclustered,
            i.indisvalid, i.indisreplident), E'\\n' ORDER BY ic.relname)
       FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
      WHERE i.indrelid = ${rel}),
    (SELECT pg_catalog.string_agg(pg_catalog.concat_ws('|', n.conname, pg_catalog.pg_get_constraintdef(n.oid), n.convalidated),
            E'\\n' ORDER BY n.conname)
       FROM pg_catalog.pg_constraint n WHERE n.conrelid = ${rel}),
    (SELECT pg_catalog.string_agg(pg_catalog.concat_ws('|', n.conrelid::pg_catalog.regclass, n.conname,
            pg_catalog.pg_get_constraintdef(n.oid), n.convalidated), E'\\n'
            ORDER BY n.conrelid::pg_catalog.regclass::pg_catalog.text, n.conname)
       FROM pg_catalog.pg_constraint n WHERE n.confrelid = ${rel} AND n.contype = 'f' AND n.conrelid <> ${rel}),
    (SELECT pg_catalog.string_agg(pg_catalog.concat_ws('|', t.tgname, pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled),
            E'\\n' ORDER BY t.tgname)
       FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
      WHERE t.tgrelid = ${rel} AND NOT t.tgisinternal
        AND p.pronamespace <> coalesce(pg_catalog.to_regnamespace(${tool})::pg_catalog.oid, 0)),
    (SELECT pg_catalog.string_agg(pg_catalog.concat_ws('|', p.polname, p.polcmd, p.polpermissive,
            (SELECT pg_catalog.string_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::pg_catalog.text END, ',' ORDER BY 1)
               FROM pg_catalog.unnest(p.polroles) r),
            pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)), E'\\n' ORDER BY p.polname)
       FROM pg_catalog.pg_policy p WHERE p.polrelid = ${rel}),
    (SELECT pg_catalog.string_agg(pg_catalog.concat_ws('|', s.stxnamespace::pg_catalog.regnamespace, s.stxname,
            pg_catalog.pg_get_statisticsobjdef(s.oid), s.stxstattarget, pg_catalog.pg_get_userbyid(s.stxowner),
            pg_catalog.obj_description(s.oid, 'pg_statistic_ext')), E'\n' ORDER BY s.stxnamespace::pg_catalog.regnamespace::pg_catalog.text, s.stxname)
       FROM pg_catalog.pg_statistic_ext s WHERE s.stxrelid = ${rel}),
    (SELECT pg_catalog.count(*) FROM pg_catalog.pg_rewrite WHERE ev_class = ${rel}),
    (SELECT pg_catalog.count(*) FROM pg_catalog.pg_depend WHERE refobjid = ${rel} AND classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass),
    ${dependentsSignatureSql(rel, literal(schema), literal(table))}
  ))`;
}
