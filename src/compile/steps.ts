import { dollarTag, ident, literal, qualified } from '../model/quote.js';
import type { RunNames } from '../model/names.js';
import type { ConstraintModel, IndexModel, TableModel } from '../model/types.js';
import { identityRevertSteps, identitySwapSteps } from './identity-steps.js';
import type { DerivedTarget } from './transform/derive.js';
import { privilegeSteps } from './privilege-steps.js';
import { constraintComment, indexAndConstraintComments } from './comment-steps.js';

/** One commented SQL statement inside a stage script. */
export interface Step {
  readonly comment: string;
  readonly sql: string;
  /**
   * Build steps: a DO step's PL/pgSQL block (BEGIN … END), so a build item can hold it as a nested
   * block; and whether the step belongs to the item of the step before it (it needs that object).
   */
  readonly body?: string;
  readonly joinsPrevious?: boolean;
}

/** A DO step, with its block kept for build items. */
function doStep(comment: string, body: string): Step {
  const tag = dollarTag(body);
  return { comment, sql: `DO ${tag}\n${body}\n${tag};`, body };
}

/** Everything the step builders need: the model, the names and the quoted relations. */
export interface StepInput {
  readonly model: TableModel;
  readonly target: DerivedTarget;
  readonly names: RunNames;
  readonly src: string;
  readonly copy: string;
  readonly old: string;
  readonly func: { readonly reverseCapture: string; readonly truncate: string; readonly asOwner: string; readonly session: string; readonly ownerCheck: string };
}

const NOT_VALID = / NOT VALID$/;

function fkDefinition(definition: string): string {
  return `${definition.replace(NOT_VALID, '')} NOT VALID`;
}

/** A DO block that adds a constraint unless the copy has it; its dollar tag cannot occur in the definition. */
function addConstraintOnce(copy: string, name: string, definition: string): string {
  return [
    'BEGIN',
    `  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = ${literal(copy)}::regclass AND conname = ${literal(name)}) THEN`,
    `    ALTER TABLE ${copy} ADD CONSTRAINT ${ident(name)} ${definition};`,
    '  END IF;',
    'END',
  ].join('\n');
}

/**
 * A CHECK constraint added to the copy as the table's owner (see owner-functions.hbs): validating it
 * evaluates its expression over every row, and PostgreSQL does that as the current user.
 */
function addCheckAsOwner(copy: string, name: string, definition: string, asOwner: string): string {
  return [
    'BEGIN',
    `  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = ${literal(copy)}::regclass AND conname = ${literal(name)}) THEN`,
    `    PERFORM ${asOwner}(${literal(`ALTER TABLE ${copy} ADD CONSTRAINT ${ident(name)} ${definition}`)});`,
    '  END IF;',
    'END',
  ].join('\n');
}

/** An --alter constraint (always named, see apply-alter) runs once, so the build stage can be resumed. */
function onceOnCopy(copy: string, name: string, sql: string): string {
  return [
    'BEGIN',
    `  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = ${literal(copy)}::regclass AND conname = ${literal(name)}) THEN`,
    `    EXECUTE ${literal(sql)};`,
    '  END IF;',
    'END',
  ].join('\n');
}

function constraintOf(model: TableModel, index: IndexModel): ConstraintModel | undefined {
  return index.constraint === null ? undefined : model.constraints.find((c) => c.name === index.constraint);
}

/** Indexes first (constraint-backed ones through ADD CONSTRAINT), then CHECK constraints. */
export function buildSteps(input: StepInput): Step[] {
  const { model, names, copy, target } = input;
  const steps: Step[] = [];
  // Constraint-backed indexes have no TABLESPACE clause of their own in the definitions we carry.
  if (target.indexTablespace !== null) steps.push({ comment: `indexes go to tablespace ${target.indexTablespace}`, sql: `SET default_tablespace = ${literal(target.indexTablespace)};` });
  model.indexes.forEach((index, i) => {
    const tmp = names.copyIndex(i);
    // The target's constraints: a partitioned copy's primary key includes the partition column.
    const con = constraintOf(target.model, index);
    // An index's own tablespace, unless the plan moves every index (--index-tablespace).
    const space = target.indexTablespace === null ? index.tablespace : null;
    if (space !== null) steps.push({ comment: `index ${index.name} lives in tablespace ${space}`, sql: `SET default_tablespace = ${literal(space)};` });
    if (con) {
      steps.push(doStep(`${con.kind} ${con.name}, built as ${tmp} and renamed at the swap`, addConstraintOnce(copy, tmp, con.definition)));
      // pg_get_constraintdef leaves out the index's storage parameters.
      if (index.reloptions.length > 0) {
        steps.push({ comment: `${con.name}: the index's storage parameters`, sql: `ALTER INDEX ${qualified(model.schema, tmp)} SET (${reloptionList(index.reloptions)});`, joinsPrevious: true });
      }
    } else {
      steps.push({
        comment: `index ${index.name}, built as ${tmp} and renamed at the swap`,
        sql: `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${ident(tmp)} ON ${copy} USING ${ident(index.method)} ${index.body};`,
      });
    }
    if (space !== null) steps.push({ comment: 'back to the default tablespace', sql: "SET default_tablespace = '';" });
  });
  for (const con of model.constraints) {
    if (con.kind !== 'check') continue;
    steps.push(doStep(
      `check constraint ${con.name}${con.validated ? '' : ' (NOT VALID, as on the table)'}, added as the table's owner (its expression is the owner's code); locks: ACCESS EXCLUSIVE on the copy`,
      addCheckAsOwner(copy, con.name, con.definition, input.func.asOwner),
    ));
  }
  steps.push(...target.buildConstraints.map((s) => doStep(s.comment, onceOnCopy(copy, s.name, s.sql))));
  steps.push(...statisticsBuildSteps(input));
  if (target.indexTablespace !== null) steps.push({ comment: 'back to the default tablespace', sql: "SET default_tablespace = '';" });
  return steps;
}

export function reloptionList(options: readonly string[]): string {
  return options
    .map((o) => {
      const eq = o.indexOf('=');
      return `${o.slice(0, eq)} = ${literal(o.slice(eq + 1))}`;
    })
    .join(', ');
}

/** Reloptions of the copy during the run: the table's own, with autovacuum kept off. */
export function copyReloptions(model: TableModel): string {
  const own = model.reloptions.filter((o) => !/^autovacuum_enabled=/.test(o));
  const toast = model.toastReloptions.filter((o) => !/^autovacuum_enabled=/.test(o)).map((o) => `toast.${o}`);
  const list = reloptionList([...own, ...toast]);
  return `${list === '' ? '' : list + ', '}autovacuum_enabled = false, toast.autovacuum_enabled = false`;
}

function triggerSteps(input: StepInput, table: string): Step[] {
  const { names, func } = input;
  return [
    {
      comment: 'keep the old table in sync after the swap, so revert loses nothing',
      sql: `CREATE TRIGGER ${ident(names.reverseCaptureTrigger)}\n  AFTER INSERT OR UPDATE OR DELETE ON ${table}\n  FOR EACH ROW EXECUTE FUNCTION ${func.reverseCapture}();\nALTER TABLE ${table} ENABLE ALWAYS TRIGGER ${ident(names.reverseCaptureTrigger)};`,
    },
    {
      comment: 'TRUNCATE stays refused until cleanup',
      sql: `CREATE TRIGGER ${ident(names.truncateTrigger)}\n  BEFORE TRUNCATE ON ${table}\n  FOR EACH STATEMENT EXECUTE FUNCTION ${func.truncate}();\nALTER TABLE ${table} ENABLE ALWAYS TRIGGER ${ident(names.truncateTrigger)};`,
    },
  ];
}

const TRIGGER_STATE: { readonly [K in 'O' | 'D' | 'R' | 'A']: string } = { O: 'ENABLE', D: 'DISABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' };

/** Column settings the copy needs before the backfill writes a single row, for the columns `which` picks. */
export function copyColumnSteps(input: StepInput, which: (column: string) => boolean = () => true): Step[] {
  const { model, copy } = input;
  const steps: Step[] = [];
  for (const c of model.columns) {
    if (!which(c.name)) continue;
    const col = `${copy} ALTER COLUMN ${ident(c.name)}`;
    if (c.storage !== null) steps.push({ comment: `column ${c.name}: storage as on the table`, sql: `ALTER TABLE ${col} SET STORAGE ${c.storage};` });
    if (c.compression !== null) steps.push({ comment: `column ${c.name}: compression as on the table`, sql: `ALTER TABLE ${col} SET COMPRESSION ${c.compression};` });
    if (c.statistics !== null) steps.push({ comment: `column ${c.name}: statistics target as on the table`, sql: `ALTER TABLE ${col} SET STATISTICS ${c.statistics};` });
  }
  for (const o of model.columnOptions) {
    if (!which(o.column)) continue;
    steps.push({ comment: `column ${o.column}: planner options as on the table`, sql: `ALTER TABLE ${copy} ALTER COLUMN ${ident(o.column)} SET (${reloptionList(o.options)});` });
  }
  return steps;
}

function policySql(model: TableModel, table: string): Step[] {
  const steps: Step[] = [];
  if (model.rowSecurity) steps.push({ comment: 'row-level security, as on the table', sql: `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY;` });
  if (model.forceRowSecurity) steps.push({ comment: 'row-level security applies to the owner too, as on the table', sql: `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY;` });
  for (const p of model.policies) {
    const roles = p.roles.map((r) => (r === 'PUBLIC' ? 'PUBLIC' : ident(r))).join(', ');
    let sql = `CREATE POLICY ${ident(p.name)} ON ${table} AS ${p.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${p.command} TO ${roles}`;
    if (p.using !== null) sql += ` USING (${p.using})`;
    if (p.withCheck !== null) sql += ` WITH CHECK (${p.withCheck})`;
    steps.push({ comment: `policy ${p.name}`, sql: `${sql};` });
  }
  return steps;
}

/**
 * Extended statistics on the copy, under a run name in their own schema, before the build's ANALYZE
 * computes them. Creating one reads no rows and evaluates nothing. IF NOT EXISTS: the stage resumes.
 */
function statisticsBuildSteps(input: StepInput): Step[] {
  const { model, names, copy } = input;
  return model.extendedStatistics.flatMap((st, i) => {
    const onCopy = qualified(st.schema, names.copyStatistics(i));
    const kinds = st.kinds.length > 0 ? ` (${st.kinds.join(', ')})` : '';
    const steps: Step[] = [{ comment: `extended statistics ${st.schema}.${st.name}, on the copy for now`, sql: `CREATE STATISTICS IF NOT EXISTS ${onCopy}${kinds} ON ${st.columns} FROM ${copy};` }];
    steps.push({ comment: `extended statistics ${st.name}: owner as on the table (the runner created it)`, sql: `ALTER STATISTICS ${onCopy} OWNER TO ${ident(st.owner)};`, joinsPrevious: true });
    if (st.target !== null) steps.push({ comment: `extended statistics ${st.name}: statistics target as on the table`, sql: `ALTER STATISTICS ${onCopy} SET STATISTICS ${st.target};`, joinsPrevious: true });
    return steps;
  });
}

/** The swap's (or, backwards, the revert's) renames of extended statistics objects. */
function statisticsRenames(model: TableModel, aside: (i: number) => string, back: (i: number) => string, verb: { readonly aside: string; readonly back: string }): Step[] {
  const steps: Step[] = [];
  model.extendedStatistics.forEach((st, i) => {
    steps.push({ comment: `${verb.aside} extended statistics ${st.name} steps aside`, sql: `ALTER STATISTICS ${qualified(st.schema, st.name)} RENAME TO ${ident(aside(i))};` });
  });
  model.extendedStatistics.forEach((st, i) => {
    steps.push({ comment: `${verb.back} extended statistics ${st.name} gets its name back`, sql: `ALTER STATISTICS ${qualified(st.schema, back(i))} RENAME TO ${ident(st.name)};` });
  });
  return steps;
}

/** Statements run under the swap lock, after the last apply. */
export function swapSteps(input: StepInput): Step[] {
  const { model, target, names, src, copy, old } = input;
  const steps: Step[] = [
    { comment: 'the old table steps aside (kept, in sync, until cleanup)', sql: `ALTER TABLE ${src} RENAME TO ${ident(names.oldTable)};` },
    { comment: 'the copy takes the table\'s name', sql: `ALTER TABLE ${copy} RENAME TO ${ident(model.name)};` },
  ];
  model.indexes.forEach((index, i) => {
    steps.push({ comment: `old index ${index.name} steps aside`, sql: `ALTER INDEX ${qualified(model.schema, index.name)} RENAME TO ${ident(names.oldIndex(i))};` });
  });
  model.indexes.forEach((index, i) => {
    steps.push({ comment: `index ${index.name} gets its name back`, sql: `ALTER INDEX ${qualified(model.schema, names.copyIndex(i))} RENAME TO ${ident(index.name)};` });
    if (index.clustered) steps.push({ comment: `${index.name} stays the clustered index`, sql: `ALTER TABLE ${src} CLUSTER ON ${ident(index.name)};` });
  });
  steps.push(...statisticsRenames(model, names.oldStatistics, names.copyStatistics, { aside: 'old', back: 'rebuilt' }));
  const ri = model.replicaIdentity;
  if (ri.kind !== 'default') {
    const what = ri.kind === 'index' && ri.index !== null ? `USING INDEX ${ident(ri.index)}` : ri.kind.toUpperCase();
    steps.push({ comment: 'replica identity, as on the table', sql: `ALTER TABLE ${src} REPLICA IDENTITY ${what};` });
  }
  // The rebuilt table's identities take the target's shape (a widened key's sequence is bigint).
  steps.push(...identitySwapSteps({ ...input, model: target.model }));
  for (const seq of model.ownedSequences) {
    steps.push({ comment: `sequence ${seq.name} now belongs to the rebuilt table; its value continues`, sql: `ALTER SEQUENCE ${qualified(seq.schema, seq.name)} OWNED BY ${src}.${ident(seq.column)};` });
  }
  for (const r of target.sequences) {
    steps.push({ comment: `sequence ${r.sequence.name} becomes ${r.to} like its column (its maximum widens with it)`, sql: `ALTER SEQUENCE ${qualified(r.sequence.schema, r.sequence.name)} AS ${r.to};` });
  }
  if (target.partitioning === null) {
    steps.push({ comment: 'autovacuum back on, the table\'s own storage parameters back', sql: `ALTER TABLE ${src} RESET (autovacuum_enabled, toast.autovacuum_enabled);` });
  } else {
    // A partitioned table has no storage of its own: autovacuum was kept off on each partition.
    for (const p of target.partitioning.partitions) {
      steps.push({ comment: `partition ${p.name}: autovacuum back on`, sql: `ALTER TABLE ${qualified(model.schema, p.name)} RESET (autovacuum_enabled, toast.autovacuum_enabled);` });
    }
  }
  const reloptions = [...target.model.reloptions, ...target.model.toastReloptions.map((o) => `toast.${o}`)];
  if (reloptions.length > 0) steps.push({ comment: 'the table\'s storage parameters', sql: `ALTER TABLE ${src} SET (${reloptionList(reloptions)});` });
  steps.push(...policySql(model, src));
  for (const t of model.triggers) {
    steps.push({ comment: `trigger ${t.name}, created only now so it never fired for the tool's copying`, sql: `${t.definition};` });
    if (t.enabled !== 'O') steps.push({ comment: `trigger ${t.name} keeps its state`, sql: `ALTER TABLE ${src} ${TRIGGER_STATE[t.enabled]} TRIGGER ${ident(t.name)};` });
    if (t.enabled !== 'D') steps.push({ comment: `trigger ${t.name} must not fire for the writes that keep the old table in sync`, sql: `ALTER TABLE ${old} DISABLE TRIGGER ${ident(t.name)};` });
  }
  if (model.comment !== null) steps.push({ comment: 'table comment', sql: `COMMENT ON TABLE ${src} IS ${literal(model.comment)};` });
  for (const c of model.columnComments) steps.push({ comment: `comment on column ${c.column}`, sql: `COMMENT ON COLUMN ${src}.${ident(c.column)} IS ${literal(c.comment)};` });
  steps.push(...indexAndConstraintComments(model, src));
  for (const con of model.constraints) {
    if (con.kind !== 'foreign-key') continue;
    steps.push({ comment: `foreign key ${con.name} moves to the rebuilt table (validated after commit)`, sql: `ALTER TABLE ${old} DROP CONSTRAINT ${ident(con.name)};\nALTER TABLE ${src} ADD CONSTRAINT ${ident(con.name)} ${fkDefinition(con.definition)};${constraintComment(con, src)}` });
  }
  for (const fk of model.referencedBy) {
    const child = qualified(fk.tableSchema, fk.tableName);
    steps.push({ comment: `foreign key ${fk.name} on ${fk.tableSchema}.${fk.tableName} now references the rebuilt table`, sql: `ALTER TABLE ${child} DROP CONSTRAINT ${ident(fk.name)};\nALTER TABLE ${child} ADD CONSTRAINT ${ident(fk.name)} ${fkDefinition(fk.definition)};${constraintComment(fk, child)}` });
  }
  steps.push({ comment: 'the old table no longer needs capturing', sql: `DROP TRIGGER ${ident(names.captureTrigger)} ON ${old};\nDROP TRIGGER ${ident(names.truncateTrigger)} ON ${old};` });
  steps.push(...triggerSteps(input, src));
  // A statement trigger on a partitioned table does not fire for TRUNCATE of one partition by name.
  for (const p of target.partitioning?.partitions ?? []) {
    const part = qualified(model.schema, p.name);
    steps.push({
      comment: `TRUNCATE of partition ${p.name} stays refused until cleanup too`,
      sql: `CREATE TRIGGER ${ident(names.truncateTrigger)}\n  BEFORE TRUNCATE ON ${part}\n  FOR EACH STATEMENT EXECUTE FUNCTION ${input.func.truncate}();\nALTER TABLE ${part} ENABLE ALWAYS TRIGGER ${ident(names.truncateTrigger)};`,
    });
  }
  // Last, so that nothing above runs with privileges the application's roles should not see.
  steps.push(...privilegeSteps(input));
  return steps;
}

/** Statements run under the revert lock: the swap, backwards. */
export function revertSteps(input: StepInput): Step[] {
  const { model, names, src, copy } = input;
  const steps: Step[] = [
    { comment: 'the rebuilt table steps aside (dropped at the end of this stage)', sql: `ALTER TABLE ${src} RENAME TO ${ident(names.copyTable)};` },
    { comment: 'the original table gets its name back', sql: `ALTER TABLE ${qualified(model.schema, names.oldTable)} RENAME TO ${ident(model.name)};` },
  ];
  model.indexes.forEach((index, i) => {
    steps.push({ comment: `rebuilt index ${index.name} steps aside`, sql: `ALTER INDEX ${qualified(model.schema, index.name)} RENAME TO ${ident(names.copyIndex(i))};` });
  });
  model.indexes.forEach((index, i) => {
    steps.push({ comment: `original index ${index.name} gets its name back`, sql: `ALTER INDEX ${qualified(model.schema, names.oldIndex(i))} RENAME TO ${ident(index.name)};` });
  });
  steps.push(...statisticsRenames(model, names.copyStatistics, names.oldStatistics, { aside: 'rebuilt', back: 'original' }));
  for (const t of model.triggers) {
    if (t.enabled !== 'D') steps.push({ comment: `trigger ${t.name} fires again as before`, sql: `ALTER TABLE ${src} ${TRIGGER_STATE[t.enabled]} TRIGGER ${ident(t.name)};` });
  }
  steps.push(...identityRevertSteps(input));
  for (const seq of model.ownedSequences) {
    steps.push({ comment: `sequence ${seq.name} belongs to the original table again`, sql: `ALTER SEQUENCE ${qualified(seq.schema, seq.name)} OWNED BY ${src}.${ident(seq.column)};` });
  }
  for (const r of input.target.sequences) {
    steps.push({ comment: `sequence ${r.sequence.name} is ${r.from} again (fails, and nothing is reverted, if it went past the ${r.from} range)`, sql: `ALTER SEQUENCE ${qualified(r.sequence.schema, r.sequence.name)} AS ${r.from};` });
  }
  for (const con of model.constraints) {
    if (con.kind !== 'foreign-key') continue;
    steps.push({ comment: `foreign key ${con.name} moves back to the original table`, sql: `ALTER TABLE ${copy} DROP CONSTRAINT ${ident(con.name)};\nALTER TABLE ${src} ADD CONSTRAINT ${ident(con.name)} ${fkDefinition(con.definition)};${constraintComment(con, src)}` });
  }
  for (const fk of model.referencedBy) {
    const child = qualified(fk.tableSchema, fk.tableName);
    steps.push({ comment: `foreign key ${fk.name} on ${fk.tableSchema}.${fk.tableName} references the original table again`, sql: `ALTER TABLE ${child} DROP CONSTRAINT ${ident(fk.name)};\nALTER TABLE ${child} ADD CONSTRAINT ${ident(fk.name)} ${fkDefinition(fk.definition)};${constraintComment(fk, child)}` });
  }
  return steps;
}

/**
 * Issue 19: VALIDATE CONSTRAINT plans a query over the table and the one its foreign key references,
 * and planning constant-folds their index expressions and predicates (an IMMUTABLE function called
 * with constants runs right then): code of those tables' owners, which would run as the role running
 * the stage. When that is a superuser other than the constrained table's owner, the VALIDATE runs as
 * that owner instead, as if it validated its own foreign key (a referenced table's folded expressions
 * then run as it, as they would in PostgreSQL), through a SECURITY DEFINER function it owns in a
 * schema made for this one transaction (no grants: nobody can name the function to change it), with
 * the same checks as the owner functions after the call (owner-functions.hbs). Otherwise, or once the
 * run's functions are gone (abort of leftovers), as the runner, as before. A constraint already valid
 * is left alone: nothing is planned.
 */
function validateAsOwner(input: StepInput, table: string, name: string): string {
  const { names, func } = input;
  const schema = ident(`shadowpack_validate_${names.runId}`);
  const validate = `ALTER TABLE ${table} VALIDATE CONSTRAINT ${ident(name)};`;
  const inner = `BEGIN ${validate} END`;
  const innerTag = dollarTag(inner, 'f');
  const body = [
    'DECLARE',
    '  fk_owner name;',
    '  before text[];',
    'BEGIN',
    `  IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = ${literal(table)}::regclass AND conname = ${literal(name)} AND convalidated) THEN`,
    '    RETURN;',
    '  END IF;',
    `  SELECT pg_get_userbyid(relowner) INTO fk_owner FROM pg_class WHERE oid = ${literal(table)}::regclass;`,
    // Under FORCE ROW LEVEL SECURITY on either table the owner's policies would apply to its
    // validation, which then fails (row_security is off in the tool's sessions): validated as the
    // runner, as such a table is copied (owner-functions.hbs).
    `  IF fk_owner = current_user OR NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR to_regprocedure(${literal(`${func.session}()`)}) IS NULL`,
    `     OR EXISTS (SELECT FROM pg_constraint k JOIN pg_class r ON r.oid IN (k.conrelid, k.confrelid) WHERE k.conrelid = ${literal(table)}::regclass AND k.conname = ${literal(name)} AND r.relforcerowsecurity) THEN`,
    `    ${validate}`,
    '    RETURN;',
    '  END IF;',
    `  CREATE SCHEMA ${schema};`,
    `  CREATE FUNCTION ${schema}.validate() RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS ${innerTag}${inner}${innerTag};`,
    `  EXECUTE format('ALTER FUNCTION %s.validate() OWNER TO %I', ${literal(schema)}, fk_owner);`,
    `  before := ${func.session}();`,
    `  PERFORM ${schema}.validate();`,
    `  PERFORM ${func.ownerCheck}(before, ${func.session}());`,
    `  DROP SCHEMA ${schema} CASCADE;`,
    'END',
  ].join('\n');
  const tag = dollarTag(body);
  return `DO ${tag}\n${body}\n${tag};`;
}

/** After the swap (or revert) commits: validate re-pointed foreign keys, one per transaction, as their table's owner. */
export function validateSteps(input: StepInput): Step[] {
  const { model, src } = input;
  const steps: Step[] = [];
  for (const con of model.constraints) {
    if (con.kind === 'foreign-key' && con.validated) {
      steps.push({ comment: `validate foreign key ${con.name} as the table's owner (blocks no writer)`, sql: validateAsOwner(input, src, con.name) });
    }
  }
  for (const fk of model.referencedBy) {
    if (fk.validated) {
      steps.push({ comment: `validate foreign key ${fk.name} on ${fk.tableSchema}.${fk.tableName} as that table's owner (blocks no writer)`, sql: validateAsOwner(input, qualified(fk.tableSchema, fk.tableName), fk.name) });
    }
  }
  return steps;
}

/** Tables whose foreign keys the swap re-points: children (into the table) and parents (out of it). */
export function relatedTables(model: TableModel): { children: string[]; parents: string[] } {
  const children = [...new Set(model.referencedBy.map((f) => qualified(f.tableSchema, f.tableName)))].sort();
  const parents = [
    ...new Set(model.constraints.filter((c) => c.kind === 'foreign-key' && c.references).map((c) => qualified(c.references!.schema, c.references!.name))),
  ].sort();
  return { children, parents };
}
