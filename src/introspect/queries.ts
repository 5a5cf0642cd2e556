/**
 * Catalog queries, one per object kind. Each takes the table's regclass as $1
 * and runs with search_path = pg_catalog so every name comes back qualified.
 */

export const TABLE_SQL = `
SELECT n.nspname AS schema, c.relname AS name, c.relkind AS relkind, c.relpersistence AS persistence,
       c.relispartition AS is_partition, c.relhassubclass AS has_children,
       EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid) AS is_child,
       c.reloftype <> 0 AS is_typed, c.reltablespace <> 0 AS has_tablespace,
       c.relacl IS NULL AS default_acl, c.relrowsecurity AS rls, c.relforcerowsecurity AS rls_forced, c.relreplident AS replident,
       pg_get_userbyid(c.relowner) AS owner, obj_description(c.oid, 'pg_class') AS comment,
       coalesce(c.reloptions, '{}') AS reloptions, c.relpages::int8 AS relpages, c.reltuples::float8 AS reltuples,
       pg_total_relation_size(c.oid) AS total_bytes, pg_table_size(c.oid) AS table_bytes,
       pg_indexes_size(c.oid) AS index_bytes,
       coalesce((SELECT t.reloptions FROM pg_class t WHERE t.oid = c.reltoastrelid), '{}') AS toast_reloptions,
       (SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace) AS tablespace,
       (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) AS bypass_rls, current_user AS current_role,
       current_setting('server_version_num')::int AS server_version_num,
       current_setting('server_version') AS server_version, current_database() AS database,
       (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())::int8 AS database_oid,
       current_setting('standard_conforming_strings') AS scs
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = $1`;

export const COLUMNS_SQL = `
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       CASE WHEN a.attcollation <> t.typcollation THEN a.attcollation::regcollation::text END AS collation,
       a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS default_expr,
       a.attidentity AS identity, a.attgenerated AS generated,
       a.attstorage <> t.typstorage AS custom_storage, a.attstorage AS storage, a.attstattarget AS stattarget,
       -- Only the options a user can set (n_distinct…); some builds add their own internal ones.
       ARRAY(SELECT o FROM unnest(a.attoptions) o WHERE o LIKE 'n\\_distinct%' ORDER BY o) AS options, a.attacl IS NOT NULL AS has_acl,
       col_description(a.attrelid, a.attnum) AS comment,
       CASE WHEN current_setting('server_version_num')::int >= 140000 THEN a.attcompression::text ELSE '' END AS compression
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum`;

export const INDEXES_SQL = `
SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS definition, am.amname AS method,
       i.indisunique AS is_unique, i.indisprimary AS is_primary, i.indisvalid AS is_valid,
       i.indisclustered AS is_clustered, i.indisreplident AS is_replident,
       i.indpred IS NULL AS is_total, 0 <> ALL (i.indkey::int2[]) AND i.indexprs IS NULL AS is_plain,
       (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE k.ord <= i.indnkeyatts) AS key_columns,
       (SELECT bool_and(a.attnotnull) FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE k.ord <= i.indnkeyatts) AS keys_not_null,
       con.conname AS constraint_name, (SELECT spcname FROM pg_tablespace WHERE oid = ic.reltablespace) AS tablespace,
       coalesce(ic.reloptions, '{}') AS reloptions, i.indimmediate AS is_immediate,
       obj_description(ic.oid, 'pg_class') AS comment,
       format('CREATE %sINDEX %s ON %s.%s USING %s ', CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
              quote_ident(ic.relname), quote_ident(tn.nspname), quote_ident(tc.relname), quote_ident(am.amname)) AS prefix
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class tc ON tc.oid = i.indrelid
  JOIN pg_namespace tn ON tn.oid = tc.relnamespace
  JOIN pg_am am ON am.oid = ic.relam
  LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
 WHERE i.indrelid = $1
 ORDER BY ic.relname`;

export const CONSTRAINTS_SQL = `
SELECT n.conname AS name, n.contype AS type, pg_get_constraintdef(n.oid) AS definition,
       n.convalidated AS validated, n.confrelid = n.conrelid AS self_reference,
       obj_description(n.oid, 'pg_constraint') AS comment, n.conislocal AS is_local,
       fn.nspname AS ref_schema, fc.relname AS ref_table,
       -- PostgreSQL 18 keeps NOT NULL as named constraints (contype n), one column each.
       CASE WHEN n.contype = 'n' THEN (SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = n.conrelid AND a.attnum = n.conkey[1]) END AS not_null_column
  FROM pg_constraint n
  LEFT JOIN pg_class fc ON fc.oid = n.confrelid
  LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
 WHERE n.conrelid = $1
 ORDER BY n.conname`;

export const REFERENCED_BY_SQL = `
SELECT cn.nspname AS schema, c.relname AS table_name, n.conname AS name, pg_get_constraintdef(n.oid) AS definition,
       n.convalidated AS validated, c.relkind AS relkind, obj_description(n.oid, 'pg_constraint') AS comment
  FROM pg_constraint n
  JOIN pg_class c ON c.oid = n.conrelid
  JOIN pg_namespace cn ON cn.oid = c.relnamespace
 WHERE n.confrelid = $1 AND n.contype = 'f' AND n.conrelid <> $1
 ORDER BY cn.nspname, c.relname, n.conname`;

export const OWNED_SEQUENCES_SQL = `
SELECT sn.nspname AS schema, s.relname AS name, a.attname AS column_name, d.deptype AS deptype
  FROM pg_depend d
  JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1
   AND d.deptype = 'a'
 ORDER BY sn.nspname, s.relname`;

/**
 * Extended statistics objects on the table. stxstattarget is -1 (PostgreSQL 14-16) or NULL (17+)
 * when no target was set.
 */
export const EXTENDED_STATISTICS_SQL = `
SELECT sn.nspname AS schema, s.stxname AS name, pg_get_userbyid(s.stxowner) AS owner, s.stxkind::text[] AS kinds,
       pg_get_statisticsobjdef_columns(s.oid) AS columns, nullif(s.stxstattarget::int, -1) AS target,
       obj_description(s.oid, 'pg_statistic_ext') AS comment
  FROM pg_statistic_ext s JOIN pg_namespace sn ON sn.oid = s.stxnamespace
 WHERE s.stxrelid = $1
 ORDER BY sn.nspname, s.stxname`;

/** Identity sequences (internal dependency 'i'): carried by re-adding the identity at the swap. */
export const IDENTITIES_SQL = `
SELECT a.attname AS column_name, sn.nspname AS schema, s.relname AS name, format_type(q.seqtypid, NULL) AS type,
       q.seqstart::text AS start, q.seqincrement::text AS increment, q.seqmin::text AS min, q.seqmax::text AS max,
       q.seqcache::text AS cache, q.seqcycle AS cycle, s.relacl IS NULL AS default_acl,
       coalesce((SELECT json_agg(json_build_object('grantee', CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee)::text END,
                                 'privilege', x.privilege_type, 'grantable', x.is_grantable, 'grantor', pg_get_userbyid(x.grantor)::text) ORDER BY x.ord)
                   FROM aclexplode(s.relacl) WITH ORDINALITY x(grantor, grantee, privilege_type, is_grantable, ord)), '[]') AS grants,
       pg_get_userbyid(s.relowner) AS owner,
       s.relpersistence AS persistence, obj_description(s.oid, 'pg_class') AS comment
  FROM pg_depend d
  JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
  JOIN pg_sequence q ON q.seqrelid = s.oid
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1
   AND d.deptype = 'i'
 ORDER BY a.attnum`;

/** In ACL order: re-granting in this order rebuilds the same aclitem array. */
export const GRANTS_SQL = `
SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END AS grantee,
       x.privilege_type AS privilege, x.is_grantable AS grantable, pg_get_userbyid(x.grantor) AS grantor
  FROM pg_class c, aclexplode(c.relacl) WITH ORDINALITY x(grantor, grantee, privilege_type, is_grantable, ord)
 WHERE c.oid = $1
 ORDER BY x.ord`;

export const TRIGGERS_SQL = `
SELECT t.tgname AS name, p.pronamespace = coalesce(to_regnamespace($2)::oid, 0) AS is_tool,
       pg_get_triggerdef(t.oid) AS definition, t.tgenabled AS enabled, t.tgconstraint <> 0 AS is_constraint
  FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE t.tgrelid = $1 AND NOT t.tgisinternal
 ORDER BY t.tgname`;

export const POLICIES_SQL = `
SELECT p.polname AS name, p.polpermissive AS permissive, p.polcmd AS cmd,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r)::text END FROM unnest(p.polroles) r ORDER BY 1) AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS using_expr, pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
  FROM pg_policy p
 WHERE p.polrelid = $1
 ORDER BY p.polname`;

export const COLUMN_GRANTS_SQL = `
SELECT a.attname::text AS column_name,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee)::text END AS grantee,
       x.privilege_type AS privilege, x.is_grantable AS grantable, pg_get_userbyid(x.grantor)::text AS grantor
  FROM pg_attribute a, aclexplode(a.attacl) WITH ORDINALITY x(grantor, grantee, privilege_type, is_grantable, ord)
 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
 ORDER BY a.attnum, x.ord`;

export const REPLICA_INDEX_SQL = `
SELECT ic.relname AS name FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
 WHERE i.indrelid = $1 AND i.indisreplident`;

/**
 * The cluster's identity, for binding a plan to its database. pg_control_system()
 * may be closed to the planning role: ask first (a call without the privilege
 * would fail the whole read-only transaction), then the binding falls back to
 * the database OID.
 */
export const CAN_READ_CONTROL_SQL = `SELECT has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE') AS ok`;
export const SYSTEM_IDENTIFIER_SQL = `SELECT system_identifier::text AS system_identifier FROM pg_control_system()`;
