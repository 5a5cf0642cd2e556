/**
 * Catalog queries for `shadowpack bloat`. One row per ordinary table of the
 * chosen schemas, read in one pass over pg_class, so the listing stays fast on
 * a database with thousands of tables. $1: schemas (text[], NULL = every
 * schema but the system ones and the tool's own).
 */

/**
 * Size, the statistics-based estimate of its packed size and the cheap
 * reasons a table cannot be rebuilt. The estimate works like the size a
 * rebuild would write: live tuples (reltuples) of the average width pg_stats
 * reports, each with its aligned header and line pointer, packed into pages at
 * the table's fillfactor. Tables never analysed have no width: the dead-tuple
 * counters of pg_stat_user_tables stand in for them.
 */
export const BLOAT_TABLES_SQL = `
WITH t AS (
  SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind, c.relpersistence, c.relispartition,
         c.relhassubclass, c.reloftype <> 0 AS is_typed,
         EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = c.oid) AS is_child,
         c.relpages::float8 AS relpages, c.reltuples::float8 AS reltuples,
         coalesce((SELECT substring(o FROM 'fillfactor=([0-9]+)')::float8 FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%'), 100) AS fillfactor,
         (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS natts,
         EXISTS (SELECT FROM pg_index x WHERE x.indrelid = c.oid AND x.indisvalid AND x.indisunique AND x.indpred IS NULL
                   AND x.indexprs IS NULL AND x.indimmediate AND 0 <> ALL (x.indkey::int2[])
                   AND NOT EXISTS (SELECT FROM unnest(x.indkey::int2[]) k(attnum)
                                     JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                                    WHERE NOT a.attnotnull)) AS has_key
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p')
     AND CASE WHEN $1::text[] IS NULL
              THEN n.nspname NOT IN ('pg_catalog', 'information_schema', $2) AND n.nspname NOT LIKE 'pg\\_%'
              ELSE n.nspname = ANY ($1::text[]) END
), w AS (
  SELECT s.schemaname, s.tablename, sum((1 - s.null_frac) * s.avg_width) AS data_width, max(s.null_frac) > 0 AS has_nulls
    FROM pg_stats s
   WHERE NOT s.inherited AND CASE WHEN $1::text[] IS NULL THEN true ELSE s.schemaname = ANY ($1::text[]) END
   GROUP BY 1, 2
)
SELECT t.schema, t.name, t.relkind, t.relpersistence AS persistence, t.relispartition AS is_partition,
       t.relhassubclass AS has_children, t.is_child, t.is_typed, t.has_key,
       pg_relation_size(t.oid) AS main_bytes, pg_total_relation_size(t.oid) AS total_bytes,
       pg_indexes_size(t.oid) AS index_bytes, t.relpages, t.reltuples, t.fillfactor,
       w.data_width, st.n_live_tup AS live_tuples, st.n_dead_tup AS dead_tuples,
       -- 24-byte page header; tuple header 23 bytes plus the null bitmap, MAXALIGNed (8); 4-byte line pointer.
       CASE WHEN w.data_width IS NOT NULL AND t.reltuples >= 0 THEN
         ceil(t.reltuples / greatest(1, floor((current_setting('block_size')::float8 - 24) * t.fillfactor / 100
              / (8 * ceil((23 + CASE WHEN w.has_nulls THEN ceil(t.natts / 8.0) ELSE 0 END) / 8.0)
                 + 8 * ceil(w.data_width / 8.0) + 4))))
         * current_setting('block_size')::float8
       END AS packed_bytes
  FROM t
  LEFT JOIN w ON w.schemaname = t.schema AND w.tablename = t.name
  LEFT JOIN pg_stat_user_tables st ON st.relid = t.oid
 ORDER BY t.schema, t.name`;

/** The schema of pgstattuple_approx(regclass), when the extension is installed here and this role may call it. */
export const PGSTATTUPLE_SQL = `
SELECT n.nspname AS schema
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pgstattuple'
 WHERE p.proname = 'pgstattuple_approx' AND p.pronargs = 1 AND p.proargtypes[0] = 'regclass'::regtype
   AND has_function_privilege(p.oid, 'EXECUTE')`;
