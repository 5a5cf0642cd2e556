/** Typed catalog rows, as the queries in queries.ts return them. They never leave introspect/. */

export interface TableRow {
  schema: string;
  name: string;
  relkind: string;
  persistence: string;
  is_partition: boolean;
  has_children: boolean;
  is_child: boolean;
  is_typed: boolean;
  has_tablespace: boolean;
  default_acl: boolean;
  rls: boolean;
  rls_forced: boolean;
  replident: string;
  owner: string;
  comment: string | null;
  reloptions: string[];
  relpages: string;
  reltuples: number;
  total_bytes: string;
  table_bytes: string;
  index_bytes: string;
  toast_reloptions: string[];
  tablespace: string | null;
  bypass_rls: boolean;
  current_role: string;
  server_version_num: number;
  server_version: string;
  database: string;
  database_oid: number;
  scs: string;
}

export interface ColumnRow {
  name: string;
  type: string;
  collation: string | null;
  not_null: boolean;
  default_expr: string | null;
  identity: string;
  generated: string;
  custom_storage: boolean;
  storage: string;
  stattarget: number | null;
  options: string[];
  has_acl: boolean;
  comment: string | null;
  compression: string;
}

export interface IndexRow {
  name: string;
  definition: string;
  method: string;
  is_unique: boolean;
  is_primary: boolean;
  is_valid: boolean;
  is_clustered: boolean;
  is_replident: boolean;
  is_total: boolean;
  is_plain: boolean;
  key_columns: string[] | null;
  keys_not_null: boolean | null;
  constraint_name: string | null;
  tablespace: string | null;
  reloptions: string[];
  comment: string | null;
  is_immediate: boolean;
  prefix: string;
}

export interface ConstraintRow {
  name: string;
  type: string;
  definition: string;
  validated: boolean;
  self_reference: boolean;
  comment: string | null;
  is_local: boolean;
  ref_schema: string | null;
  ref_table: string | null;
  not_null_column: string | null;
}

export interface ReferencedByRow {
  schema: string;
  table_name: string;
  name: string;
  definition: string;
  validated: boolean;
  relkind: string;
  comment: string | null;
}

export interface OwnedSequenceRow {
  schema: string;
  name: string;
  column_name: string;
  deptype: string;
}
export interface ExtendedStatisticsRow {
  schema: string;
  name: string;
  owner: string;
  kinds: string[];
  columns: string;
  target: number | null;
  comment: string | null;
}
export interface IdentityRow {
  column_name: string;
  schema: string;
  name: string;
  type: string;
  start: string;
  increment: string;
  min: string;
  max: string;
  cache: string;
  cycle: boolean;
  default_acl: boolean;
  grants: GrantRow[];
  owner: string;
  persistence: string;
  comment: string | null;
}
export interface GrantRow {
  grantee: string;
  privilege: string;
  grantable: boolean;
  grantor: string;
}
export interface TriggerRow {
  name: string;
  is_tool: boolean;
  definition: string;
  enabled: string;
  is_constraint: boolean;
}
export interface PolicyRow {
  name: string;
  permissive: boolean;
  cmd: string;
  roles: string[];
  using_expr: string | null;
  check_expr: string | null;
}
export interface ColumnGrantRow {
  column_name: string;
  grantee: string;
  privilege: string;
  grantable: boolean;
  grantor: string;
}
