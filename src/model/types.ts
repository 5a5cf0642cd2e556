/**
 * The table model: everything a rebuild needs to know about one table, read
 * from the catalog by `introspect/` and consumed by the pure compiler.
 * JSON-serialisable; `normalise()` sorts everything but column order.
 */

/** One column, in attnum order (dropped columns excluded). */
export interface ColumnModel {
  readonly name: string;
  /** format_type(atttypid, atttypmod), qualified when outside pg_catalog. */
  readonly type: string;
  /** Collation name, qualified, or null when it is the type's default. */
  readonly collation: string | null;
  readonly notNull: boolean;
  /** Name of the NOT NULL constraint (PostgreSQL 18 names them), or null. */
  readonly notNullName: string | null;
  /** pg_get_expr of the default, or null. */
  readonly default: string | null;
  /** '' (none), 'a' (ALWAYS) or 'd' (BY DEFAULT). */
  readonly identity: '' | 'a' | 'd';
  /** Generation expression of a STORED generated column, or null. */
  readonly generated: string | null;
  /** SET STORAGE, when it differs from the type's default: PLAIN, EXTERNAL, MAIN or EXTENDED. */
  readonly storage: string | null;
  /** SET STATISTICS target, when one is set. */
  readonly statistics: number | null;
  /** SET COMPRESSION method (pglz, lz4), when one is set. */
  readonly compression: string | null;
}

/** The key used to identify rows in the change log. */
export interface RowKeyModel {
  readonly source: 'primary-key' | 'unique-index';
  /** Name of the index that enforces it. */
  readonly indexName: string;
  readonly columns: readonly string[];
}

/** An extended statistics object (CREATE STATISTICS) defined on the table. */
export interface ExtendedStatisticsModel {
  /** Its own schema, which need not be the table's. */
  readonly schema: string;
  readonly name: string;
  readonly owner: string;
  /** The kinds asked for, in PostgreSQL's order; empty for a statistic on one expression (kinds cannot be named then). */
  readonly kinds: readonly ('ndistinct' | 'dependencies' | 'mcv')[];
  /** Columns and expressions, as pg_get_statisticsobjdef_columns gives them. */
  readonly columns: string;
  /** ALTER STATISTICS … SET STATISTICS target, when one is set. */
  readonly target: number | null;
  readonly comment: string | null;
}

export interface IndexModel {
  readonly name: string;
  /** Everything after `USING <am> `: columns, INCLUDE, WITH, WHERE. */
  readonly body: string;
  readonly method: string;
  readonly unique: boolean;
  /** Name of the constraint the index backs (PK, UNIQUE, EXCLUDE), or null. */
  readonly constraint: string | null;
  readonly clustered: boolean;
  readonly comment: string | null;
  /** Tablespace name, or null for the database's default. */
  readonly tablespace: string | null;
  /** The index's storage parameters (also in `body`; needed apart for constraint-backed indexes). */
  readonly reloptions: readonly string[];
}

export type ConstraintKind = 'primary-key' | 'unique' | 'check' | 'exclusion' | 'foreign-key';

/** A constraint defined on the table itself. */
export interface ConstraintModel {
  readonly name: string;
  readonly kind: ConstraintKind;
  /** pg_get_constraintdef, fully qualified. */
  readonly definition: string;
  readonly validated: boolean;
  /** For foreign keys: the referenced table. */
  readonly references: { readonly schema: string; readonly name: string } | null;
  readonly comment: string | null;
}

/** A foreign key on another table that references this one. */
export interface ReferencingForeignKeyModel {
  readonly name: string;
  readonly tableSchema: string;
  readonly tableName: string;
  /** pg_get_constraintdef; its REFERENCES clause names this table. */
  readonly definition: string;
  readonly validated: boolean;
  readonly comment: string | null;
}

/** A sequence owned by one of the table's columns (serial). */
export interface OwnedSequenceModel {
  readonly schema: string;
  readonly name: string;
  readonly column: string;
}

/**
 * A sequence's parameters, as CREATE SEQUENCE takes them. Numbers are kept as text: bounds can
 * exceed JavaScript's safe integers.
 */
export interface SequenceParameters {
  /** Sequence data type: smallint, integer or bigint. */
  readonly type: string;
  readonly start: string;
  readonly increment: string;
  readonly min: string;
  readonly max: string;
  readonly cache: string;
  readonly cycle: boolean;
}

/**
 * An identity column's sequence. The copy has no identity while it is filled;
 * the swap adds it with these parameters and continues from the old value.
 */
export interface IdentityModel extends SequenceParameters {
  readonly column: string;
  readonly schema: string;
  readonly name: string;
  readonly comment: string | null;
  /** The sequence's ACL is NULL (owner only); else `grants` holds it, in ACL order. */
  readonly defaultAcl: boolean;
  readonly grants: readonly GrantModel[];
}

/** One privilege in an ACL (from aclexplode), always granted by the owner (others are refused). */
export interface GrantModel {
  readonly grantee: string;
  readonly privilege: string;
  readonly grantable: boolean;
}

/** A user trigger, carried to the rebuilt table at the swap with its enabled state. */
export interface TriggerModel {
  readonly name: string;
  /** pg_get_triggerdef: CREATE TRIGGER … ON <the table> … */
  readonly definition: string;
  /** O (origin/enabled), D (disabled), R (replica), A (always). */
  readonly enabled: 'O' | 'D' | 'R' | 'A';
}

/** A row-level security policy. */
export interface PolicyModel {
  readonly name: string;
  readonly permissive: boolean;
  /** SELECT, INSERT, UPDATE, DELETE or ALL. */
  readonly command: string;
  /** Role names, or PUBLIC. */
  readonly roles: readonly string[];
  readonly using: string | null;
  readonly withCheck: string | null;
}

export interface ColumnGrantModel {
  readonly column: string;
  readonly grantee: string;
  readonly privilege: string;
  readonly grantable: boolean;
}

/**
 * A view that reads the table directly. A rename swap would leave it reading
 * the old table, so the swap re-creates it (CREATE OR REPLACE keeps its OID,
 * owner, grants, comments and column defaults) over the rebuilt one.
 */
export interface DependentViewModel {
  readonly schema: string;
  readonly name: string;
  readonly owner: string;
  /** reloptions (security_barrier, check_option, security_invoker): CREATE OR REPLACE resets what it does not restate. */
  readonly options: readonly string[];
  /** pg_get_viewdef under search_path = pg_catalog, without the final semicolon. */
  readonly definition: string;
  /** Longest chain of views from the table to this one: views are re-created in this order. */
  readonly depth: number;
}

/** A function or procedure with a SQL-standard body (BEGIN ATOMIC) that reads the table. */
export interface DependentFunctionModel {
  readonly schema: string;
  readonly name: string;
  /** pg_get_function_identity_arguments, to name it unambiguously. */
  readonly arguments: string;
  readonly kind: 'function' | 'procedure';
  readonly owner: string;
  /** pg_get_functiondef: CREATE OR REPLACE … BEGIN ATOMIC … END, without a final semicolon. */
  readonly definition: string;
}

/** The table's explicit membership in one publication (FOR TABLE). */
export interface PublicationMembershipModel {
  readonly name: string;
  readonly owner: string;
  /** Column list (PostgreSQL 15+), in column order, or null for all columns. */
  readonly columns: readonly string[] | null;
  /** Row filter (PostgreSQL 15+), or null. */
  readonly rowFilter: string | null;
}

/** Objects outside the table that a rename swap must re-point at the rebuilt table. */
export interface DependentsModel {
  readonly views: readonly DependentViewModel[];
  readonly functions: readonly DependentFunctionModel[];
  readonly publications: readonly PublicationMembershipModel[];
}

/** Facts about the environment: never part of the fingerprint or the SQL. */
export interface EnvironmentFacts {
  readonly serverVersionNum: number;
  readonly serverVersion: string;
  readonly relpages: number;
  readonly reltuples: number;
  readonly totalBytes: number;
  readonly tableBytes: number;
  readonly indexBytes: number;
  readonly database: string;
  /** OID of the database in pg_database; the binding falls back to it. */
  readonly databaseOid: number;
  /** pg_control_system().system_identifier as text, or null when the planning role may not read it. */
  readonly systemIdentifier: string | null;
  /**
   * OID of the table when planned. A rebuild gives the table a new OID, so a plan made after a
   * finished run has a new plan id even when nothing else changed (see planIdOf). Absent in plans
   * made before plan ids existed.
   */
  readonly tableOid?: number;
}

/**
 * Where the rebuilt copy lives. Only `local` (same database, rename swap)
 * exists today; a remote target (postgres_fdw, cut-over) will be another arm.
 */
export type CopyTarget = { readonly kind: 'local' };

export interface TableModel {
  readonly schema: string;
  readonly name: string;
  readonly owner: string;
  readonly comment: string | null;
  readonly reloptions: readonly string[];
  /** Storage parameters of the TOAST table, without the `toast.` prefix. */
  readonly toastReloptions: readonly string[];
  /** Tablespace name, or null for the database's default. */
  readonly tablespace: string | null;
  readonly columns: readonly ColumnModel[];
  /** Attribute options (n_distinct, n_distinct_inherited) of the columns that have them. */
  readonly columnOptions: readonly { readonly column: string; readonly options: readonly string[] }[];
  readonly key: RowKeyModel;
  readonly indexes: readonly IndexModel[];
  readonly constraints: readonly ConstraintModel[];
  readonly referencedBy: readonly ReferencingForeignKeyModel[];
  readonly ownedSequences: readonly OwnedSequenceModel[];
  /** CREATE STATISTICS objects on the table, carried like indexes. */
  readonly extendedStatistics: readonly ExtendedStatisticsModel[];
  /** Identity columns' sequences, in column order. */
  readonly identities: readonly IdentityModel[];
  /** relacl is NULL: the owner holds every privilege, nobody else any, and `grants` is empty. */
  readonly defaultAcl: boolean;
  /** The table's ACL in its own order (the owner's entries too): re-granted in this order, it comes back identical. */
  readonly grants: readonly GrantModel[];
  readonly columnComments: readonly { readonly column: string; readonly comment: string }[];
  /** Column ACLs, by column order, each in ACL order. */
  readonly columnGrants: readonly ColumnGrantModel[];
  readonly triggers: readonly TriggerModel[];
  /** REPLICA IDENTITY: DEFAULT, NOTHING, FULL, or USING INDEX (index named). */
  readonly replicaIdentity: { readonly kind: 'default' | 'nothing' | 'full' | 'index'; readonly index: string | null };
  /** ENABLE ROW LEVEL SECURITY (FORCE is refused: it would filter the tool's own reads and writes). */
  readonly rowSecurity: boolean;
  /** FORCE ROW LEVEL SECURITY (planned only for a role that bypasses row-level security). */
  readonly forceRowSecurity: boolean;
  readonly policies: readonly PolicyModel[];
  /** Views, BEGIN ATOMIC functions and publications re-pointed at the swap and at revert. */
  readonly dependents: DependentsModel;
  /** md5 of the catalog signature query (see templates/partials/signature.hbs). */
  readonly fingerprint: string;
}

/** What introspection returns: the model plus environment facts. */
export interface IntrospectedTable {
  readonly model: TableModel;
  readonly facts: EnvironmentFacts;
}
