/**
 * Everything a run does that needs a privilege, as rows of (what, fix). `table` is the
 * table's oid, `role` the role that will run the plan, `toolSchema` the tool schema's
 * name, each a SQL expression: plan time and the preflight stage run the same text.
 * `USAGE` on a role means "has its privileges" (inherited), which is what owning a table takes.
 * Each statement of a run that needs a privilege is listed beside its check:
 * - setup creates the copy in the table's schema and hands it to the table's owner
 *   (which, for a non-superuser, needs the owner to have CREATE on that schema),
 *   creates the tool schema (or objects in it) and triggers on the table;
 * - the swap renames the table, re-points foreign keys on other tables (their owner),
 *   adds foreign keys to parents (REFERENCES) after locking them (LOCK TABLE needs
 *   UPDATE, DELETE or TRUNCATE), moves sequence ownership (the sequence's owner), re-creates
 *   the views and BEGIN ATOMIC routines over the table and moves its publication membership
 *   (their owners);
 * - the build creates the copy's extended statistics in their own schema (CREATE there) and hands
 *   them to their owner; the swap renames them (ownership);
 * Not listed: pg_read_all_stats. The old-snapshot waits read virtual transaction ids from
 * pg_locks and backend_xmin from pg_stat_activity, which every role can read; without it, other
 * roles' sessions are only named less fully (see templates/setup.sql.hbs).
 */
export function missingPrivilegesSql(table: string, role: string, toolSchema: string): string {
  return `
WITH me AS (SELECT (${role})::name AS role),
t AS (SELECT c.oid, n.nspname, c.relname, pg_get_userbyid(c.relowner) AS owner
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ${table}),
children AS (SELECT DISTINCT c.oid, pg_get_userbyid(c.relowner) AS owner
               FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
              WHERE k.confrelid = ${table} AND k.contype = 'f' AND k.conrelid <> ${table}),
parents AS (SELECT k.confrelid AS oid, array_agg(DISTINCT a.attname ORDER BY a.attname) AS cols
              FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = ANY (k.confkey)
             WHERE k.conrelid = ${table} AND k.contype = 'f' AND k.confrelid <> ${table}
             GROUP BY k.confrelid),
sequences AS (SELECT s.oid, pg_get_userbyid(s.relowner) AS owner
                FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
               WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                 AND d.refobjid = ${table} AND d.deptype IN ('a', 'i')),
views AS (SELECT DISTINCT v.oid, pg_get_userbyid(v.relowner) AS owner
             FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class
            WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ${table}
              AND r.rulename = '_RETURN' AND v.relkind = 'v' AND v.oid <> ${table}),
routines AS (SELECT DISTINCT p.oid, pg_get_userbyid(p.proowner) AS owner
               FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
              WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ${table}
                AND p.prosqlbody IS NOT NULL),
statistics AS (SELECT s.stxname, sn.nspname, pg_get_userbyid(s.stxowner) AS owner
                 FROM pg_statistic_ext s JOIN pg_namespace sn ON sn.oid = s.stxnamespace WHERE s.stxrelid = ${table}),
publications AS (SELECT p.pubname, pg_get_userbyid(p.pubowner) AS owner
                   FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE r.prrelid = ${table}),
-- Looked up in pg_class, not with to_regclass: that raises "permission denied for schema" for a role
-- without USAGE on it, which may be exactly what is missing (the schema outlives runs: it keeps the history).
tool AS (SELECT to_regnamespace(${toolSchema}) AS ns,
                (SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = ${toolSchema} AND c.relname = 'runs') AS runs,
                (SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = ${toolSchema} AND c.relname = 'history') AS history),
lacking AS (
SELECT 1 AS ord, format('ownership of table %s (owned by %I)', t.oid::regclass, t.owner) AS what,
       format('GRANT %I TO %I;', t.owner, me.role) AS fix
  FROM t, me WHERE NOT pg_has_role(me.role, t.owner, 'USAGE')
UNION ALL
SELECT 2, format('USAGE on schema %I', t.nspname), format('GRANT USAGE ON SCHEMA %I TO %I;', t.nspname, me.role)
  FROM t, me WHERE NOT has_schema_privilege(me.role, t.nspname, 'USAGE')
UNION ALL
SELECT 3, format('CREATE on schema %I (the copy is created there)', t.nspname), format('GRANT CREATE ON SCHEMA %I TO %I;', t.nspname, me.role)
  FROM t, me WHERE NOT has_schema_privilege(me.role, t.nspname, 'CREATE')
UNION ALL
SELECT 4, format('CREATE on schema %I for the table''s owner %I (the copy is handed to it)', t.nspname, t.owner),
       format('GRANT CREATE ON SCHEMA %I TO %I;', t.nspname, t.owner)
  FROM t, me WHERE t.owner <> me.role AND NOT has_schema_privilege(t.owner, t.nspname, 'CREATE')
   -- ALTER TABLE … OWNER TO checks the new owner's CREATE only when a non-superuser runs it.
   AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = me.role)
UNION ALL
SELECT 5, format('CREATE on database %I (for schema %I)', current_database(), ${toolSchema}),
       format('GRANT CREATE ON DATABASE %I TO %I;', current_database(), me.role)
  FROM tool, me WHERE tool.ns IS NULL AND NOT has_database_privilege(me.role, current_database(), 'CREATE')
UNION ALL
SELECT 6, format('USAGE and CREATE on schema %I', ${toolSchema}), format('GRANT USAGE, CREATE ON SCHEMA %I TO %I;', ${toolSchema}, me.role)
  FROM tool, me WHERE tool.ns IS NOT NULL
   AND NOT (has_schema_privilege(me.role, tool.ns, 'USAGE') AND has_schema_privilege(me.role, tool.ns, 'CREATE'))
UNION ALL
SELECT 7, format('ownership of %s (shared by runs; the last cleanup drops it)', tool.runs),
       format('ALTER TABLE %s OWNER TO %I;', tool.runs, me.role)
  FROM tool, me, pg_class r WHERE r.oid = tool.runs AND NOT pg_has_role(me.role, r.relowner, 'USAGE')
UNION ALL
SELECT 7, format('SELECT, INSERT and UPDATE on %s (the history of runs, kept by cleanup)', tool.history),
       format('GRANT SELECT, INSERT, UPDATE ON %s TO %I;', tool.history, me.role)
  FROM tool, me WHERE tool.history IS NOT NULL
   AND NOT (has_table_privilege(me.role, tool.history, 'SELECT') AND has_table_privilege(me.role, tool.history, 'INSERT')
            AND has_table_privilege(me.role, tool.history, 'UPDATE'))
UNION ALL
SELECT 8, format('ownership of table %s (its foreign key into the table is re-pointed)', c.oid::regclass),
       format('GRANT %I TO %I;', c.owner, me.role)
  FROM children c, me WHERE NOT pg_has_role(me.role, c.owner, 'USAGE')
UNION ALL
SELECT 9, format('REFERENCES on %s (%s) (the foreign key is added again at the swap)', p.oid::regclass, array_to_string(p.cols, ', ')),
       format('GRANT REFERENCES (%s) ON TABLE %s TO %I;', (SELECT string_agg(quote_ident(x), ', ') FROM unnest(p.cols) x), p.oid::regclass, me.role)
  FROM parents p, me
 WHERE NOT has_table_privilege(me.role, p.oid, 'REFERENCES')
   AND NOT (SELECT bool_and(has_column_privilege(me.role, p.oid, x, 'REFERENCES')) FROM unnest(p.cols) x)
UNION ALL
SELECT 10, format('UPDATE, DELETE or TRUNCATE on %s (LOCK TABLE, so its foreign key is re-pointed without queueing)', p.oid::regclass),
       format('GRANT UPDATE ON TABLE %s TO %I;', p.oid::regclass, me.role)
  FROM parents p, me WHERE NOT has_table_privilege(me.role, p.oid, 'UPDATE, DELETE, TRUNCATE')
UNION ALL
SELECT 11, format('ownership of sequence %s (it moves to the rebuilt table)', s.oid::regclass),
       format('GRANT %I TO %I;', s.owner, me.role)
  FROM sequences s, me WHERE NOT pg_has_role(me.role, s.owner, 'USAGE')
UNION ALL
SELECT 11, format('ownership of extended statistics %I.%I (it is renamed at the swap)', s.nspname, s.stxname),
       format('GRANT %I TO %I;', s.owner, me.role)
  FROM statistics s, me WHERE NOT pg_has_role(me.role, s.owner, 'USAGE')
UNION ALL
SELECT 11, format('CREATE on schema %I (the copy''s extended statistics are created there)', s.nspname),
       format('GRANT CREATE ON SCHEMA %I TO %I;', s.nspname, me.role)
  FROM statistics s, me WHERE NOT has_schema_privilege(me.role, s.nspname, 'CREATE')
UNION ALL
SELECT 12, format('ownership of view %s (it is re-created over the rebuilt table at the swap)', v.oid::regclass),
       format('GRANT %I TO %I;', v.owner, me.role)
  FROM views v, me WHERE NOT pg_has_role(me.role, v.owner, 'USAGE')
UNION ALL
SELECT 12, format('ownership of %s (its BEGIN ATOMIC body is re-created over the rebuilt table)', f.oid::regprocedure),
       format('GRANT %I TO %I;', f.owner, me.role)
  FROM routines f, me WHERE NOT pg_has_role(me.role, f.owner, 'USAGE')
UNION ALL
SELECT 12, format('ownership of publication %I (the rebuilt table takes the table''s place in it)', p.pubname),
       format('GRANT %I TO %I;', p.owner, me.role)
  FROM publications p, me WHERE NOT pg_has_role(me.role, p.owner, 'USAGE'))
-- One statement may grant several things (a role owning the table and its sequence): list it once.
SELECT fix, string_agg(what, '; ' ORDER BY ord, what) AS what FROM lacking GROUP BY fix ORDER BY min(ord), fix`;
}
