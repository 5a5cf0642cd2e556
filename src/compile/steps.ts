import { dollarTag, ident, literal, qualified } from '../model/quote.js';
import type { ConstraintModel, IndexModel, TableModel } from '../model/types.js';
import { identityRevertSteps, identitySwapSteps } from './identity-steps.js';
import { privilegeSteps } from './privilege-steps.js';
import { constraintComment, indexAndConstraintComments } from './comment-steps.js';
import {
  accessExclusive,
  lockList,
  share,
  shareRowExclusive,
  shareUpdateExclusive,
  type RelationLock,
  type Step,
  type StepKind,
} from './step.js';
import type { StepInput } from './step-input.js';

/** A DO step, with its block kept for build items. */
function doStep(kind: StepKind, comment: string, body: string, locks: readonly RelationLock[]): Step {
  const tag = dollarTag(body);
  return { kind, comment, sql: `DO ${tag}\n${body}\n${tag};`, locks, body };
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
 * A primary key or unique constraint made from the index built for it by another item. That item's
 * session may still be building it (the ACCESS EXCLUSIVE lock waits for its SHARE lock) or may have
 * died before committing (then no index exists, and the item's retry in another session may not have
 * come yet): under the lock, build it here if it is missing, then attach it.
 */
function attachIndexOnce(copy: string, index: string, definition: string, createSql: string): string {
  return [
    'BEGIN',
    `  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = ${literal(copy)}::regclass AND conname = ${literal(index)}) THEN`,
    `    LOCK TABLE ${copy} IN ACCESS EXCLUSIVE MODE;`,
    `    IF NOT EXISTS (SELECT FROM pg_class WHERE relname = ${literal(index)} AND relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = ${literal(copy)}::regclass)) THEN`,
    `      EXECUTE ${literal(createSql)};`,
    '    END IF;',
    `    ALTER TABLE ${copy} ADD CONSTRAINT ${ident(index)} ${definition};`,
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

/**
 * A primary key or unique constraint whose index can be built first and attached with ADD
 * CONSTRAINT … USING INDEX: the copy is not partitioned (USING INDEX is refused there), the
 * constraint is not deferrable, and the plan's transformations left it as on the table (the source
 * index's columns are then the copy's). Its index body (columns, INCLUDE, NULLS NOT DISTINCT, WITH)
 * is the source index's, as pg_get_indexdef gives it.
 */
function indexFirst(model: TableModel, index: IndexModel, con: ConstraintModel, partitioned: boolean): boolean {
  if (partitioned || (con.kind !== 'primary-key' && con.kind !== 'unique')) return false;
  if (/\bDEFERRABLE\b/.test(con.definition) || index.method !== 'btree' || !index.unique) return false;
  return model.constraints.some((c) => c.name === con.name && c.definition === con.definition);
}

/** Indexes first (constraint-backed ones through ADD CONSTRAINT), then CHECK constraints. */
export function buildSteps(input: StepInput): Step[] {
  const { model, names, copy, target } = input;
  const steps: Step[] = [];
  const attach: Step[] = [];
  // Constraint-backed indexes have no TABLESPACE clause of their own in the definitions we carry.
  if (target.indexTablespace !== null)
    steps.push(tablespaceSetting(`indexes go to tablespace ${target.indexTablespace}`, target.indexTablespace));
  model.indexes.forEach((index, i) => {
    const tmp = names.copyIndex(i);
    // The target's constraints: a partitioned copy's primary key includes the partition column.
    const con = constraintOf(target.model, index);
    // An index's own tablespace, unless the plan moves every index (--index-tablespace).
    const space = target.indexTablespace === null ? index.tablespace : null;
    if (space !== null) steps.push(tablespaceSetting(`index ${index.name} lives in tablespace ${space}`, space));
    if (con && indexFirst(model, index, con, target.partitioning !== null)) {
      // Built as a plain unique index (SHARE on the copy: sessions of this stage build several at
      // once), and made the constraint at the end (ADD CONSTRAINT … USING INDEX takes ACCESS
      // EXCLUSIVE, which would wait for, and hold up, the other sessions' builds).
      const createIndex = `CREATE UNIQUE INDEX IF NOT EXISTS ${ident(tmp)} ON ${copy} USING ${ident(index.method)} ${index.body};`;
      steps.push({
        kind: 'create-index',
        comment: `index of ${con.kind} ${con.name}, built as ${tmp} and made the constraint after every index is built`,
        sql: createIndex,
        locks: [share(copy)],
      });
      attach.push(
        doStep(
          'add-constraint',
          `${con.kind} ${con.name} from its index ${tmp}, renamed at the swap`,
          attachIndexOnce(
            copy,
            tmp,
            `${con.kind === 'primary-key' ? 'PRIMARY KEY' : 'UNIQUE'} USING INDEX ${ident(tmp)}`,
            createIndex,
          ),
          [accessExclusive(copy)],
        ),
      );
    } else if (con) {
      steps.push(
        doStep(
          'add-constraint',
          `${con.kind} ${con.name}, built as ${tmp} and renamed at the swap`,
          addConstraintOnce(copy, tmp, con.definition),
          [accessExclusive(copy)],
        ),
      );
      // pg_get_constraintdef leaves out the index's storage parameters.
      if (index.reloptions.length > 0) {
        const onCopy = qualified(model.schema, tmp);
        steps.push({
          kind: 'storage-parameters',
          comment: `${con.name}: the index's storage parameters`,
          sql: `ALTER INDEX ${onCopy} SET (${reloptionList(index.reloptions)});`,
          locks: [accessExclusive(onCopy)],
          joinsPrevious: true,
        });
      }
    } else {
      steps.push({
        kind: 'create-index',
        comment: `index ${index.name}, built as ${tmp} and renamed at the swap`,
        sql: `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${ident(tmp)} ON ${copy} USING ${ident(index.method)} ${index.body};`,
        locks: [share(copy)],
      });
    }
    if (space !== null) steps.push(tablespaceSetting('back to the default tablespace', ''));
  });
  steps.push(...attach);
  for (const con of model.constraints) {
    if (con.kind !== 'check') continue;
    steps.push(
      doStep(
        'add-constraint',
        `check constraint ${con.name}${con.validated ? '' : ' (NOT VALID, as on the table)'}, added as the table's owner (its expression is the owner's code)`,
        addCheckAsOwner(copy, con.name, con.definition, input.func.asOwner),
        [accessExclusive(copy)],
      ),
    );
  }
  steps.push(
    ...target.buildConstraints.map((s) =>
      doStep('add-constraint', s.comment, onceOnCopy(copy, s.name, s.sql), s.locks),
    ),
  );
  steps.push(...statisticsBuildSteps(input));
  if (target.indexTablespace !== null) steps.push(tablespaceSetting('back to the default tablespace', ''));
  return steps;
}

function tablespaceSetting(comment: string, space: string): Step {
  return { kind: 'session-setting', comment, sql: `SET default_tablespace = ${literal(space)};`, locks: [] };
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
      kind: 'create-trigger',
      comment: 'keep the old table in sync after the swap, so revert loses nothing',
      locks: [shareRowExclusive(table)],
      sql: `CREATE TRIGGER ${ident(names.reverseCaptureTrigger)}\n  AFTER INSERT OR UPDATE OR DELETE ON ${table}\n  FOR EACH ROW EXECUTE FUNCTION ${func.reverseCapture}();\nALTER TABLE ${table} ENABLE ALWAYS TRIGGER ${ident(names.reverseCaptureTrigger)};`,
    },
    {
      kind: 'create-trigger',
      comment: 'TRUNCATE stays refused until cleanup',
      locks: [shareRowExclusive(table)],
      sql: `CREATE TRIGGER ${ident(names.truncateTrigger)}\n  BEFORE TRUNCATE ON ${table}\n  FOR EACH STATEMENT EXECUTE FUNCTION ${func.truncate}();\nALTER TABLE ${table} ENABLE ALWAYS TRIGGER ${ident(names.truncateTrigger)};`,
    },
  ];
}

const TRIGGER_STATE: { readonly [K in 'O' | 'D' | 'R' | 'A']: string } = {
  O: 'ENABLE',
  D: 'DISABLE',
  R: 'ENABLE REPLICA',
  A: 'ENABLE ALWAYS',
};

/** Column settings the copy needs before the backfill writes a single row, for the columns `which` picks. */
export function copyColumnSteps(input: StepInput, which: (column: string) => boolean = () => true): Step[] {
  return columnSettingSteps(input.model, input.copy, which);
}

/**
 * The table's column settings (storage, compression, statistics target, planner options) on `copy`, a table with
 * the same columns: the rebuild's copy, or a move's table on the target.
 */
export function columnSettingSteps(
  model: TableModel,
  copy: string,
  which: (column: string) => boolean = () => true,
): Step[] {
  const steps: Step[] = [];
  for (const c of model.columns) {
    if (!which(c.name)) continue;
    const col = `${copy} ALTER COLUMN ${ident(c.name)}`;
    if (c.storage !== null)
      steps.push({
        kind: 'column-storage',
        comment: `column ${c.name}: storage as on the table`,
        sql: `ALTER TABLE ${col} SET STORAGE ${c.storage};`,
        locks: [accessExclusive(copy)],
      });
    if (c.compression !== null)
      steps.push({
        kind: 'column-storage',
        comment: `column ${c.name}: compression as on the table`,
        sql: `ALTER TABLE ${col} SET COMPRESSION ${c.compression};`,
        locks: [accessExclusive(copy)],
      });
    if (c.statistics !== null)
      steps.push({
        kind: 'column-statistics',
        comment: `column ${c.name}: statistics target as on the table`,
        sql: `ALTER TABLE ${col} SET STATISTICS ${c.statistics};`,
        locks: [shareUpdateExclusive(copy)],
      });
  }
  for (const o of model.columnOptions) {
    if (!which(o.column)) continue;
    steps.push({
      kind: 'column-statistics',
      comment: `column ${o.column}: planner options as on the table`,
      sql: `ALTER TABLE ${copy} ALTER COLUMN ${ident(o.column)} SET (${reloptionList(o.options)});`,
      locks: [shareUpdateExclusive(copy)],
    });
  }
  return steps;
}

function policySql(model: TableModel, table: string): Step[] {
  const steps: Step[] = [];
  if (model.rowSecurity)
    steps.push({
      kind: 'row-security',
      comment: 'row-level security, as on the table',
      sql: `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY;`,
      locks: [accessExclusive(table)],
    });
  if (model.forceRowSecurity)
    steps.push({
      kind: 'row-security',
      comment: 'row-level security applies to the owner too, as on the table',
      sql: `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY;`,
      locks: [accessExclusive(table)],
    });
  for (const p of model.policies) {
    const roles = p.roles.map((r) => (r === 'PUBLIC' ? 'PUBLIC' : ident(r))).join(', ');
    let sql = `CREATE POLICY ${ident(p.name)} ON ${table} AS ${p.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${p.command} TO ${roles}`;
    if (p.using !== null) sql += ` USING (${p.using})`;
    if (p.withCheck !== null) sql += ` WITH CHECK (${p.withCheck})`;
    steps.push({ kind: 'row-security', comment: `policy ${p.name}`, sql: `${sql};`, locks: [accessExclusive(table)] });
  }
  return steps;
}

/**
 * Extended statistics on the copy, under a run name in their own schema, before the build's ANALYZE
 * computes them. Creating one reads no rows and evaluates nothing. IF NOT EXISTS: the stage resumes.
 */
function statisticsBuildSteps(input: StepInput): Step[] {
  const { names } = input;
  return statisticsSteps(input.model, input.copy, (st, i) => qualified(st.schema, names.copyStatistics(i)));
}

/**
 * The table's extended statistics on `copy` (owner and target too), each under the name `nameOf` gives: a run
 * name on the rebuild's copy, the statistics' own on a move's target.
 */
export function statisticsSteps(
  model: TableModel,
  copy: string,
  nameOf: (st: TableModel['extendedStatistics'][number], i: number) => string,
): Step[] {
  return model.extendedStatistics.flatMap((st, i) => {
    const onCopy = nameOf(st, i);
    const kinds = st.kinds.length > 0 ? ` (${st.kinds.join(', ')})` : '';
    const steps: Step[] = [
      {
        kind: 'create-statistics',
        comment: `extended statistics ${st.schema}.${st.name}, on the copy for now`,
        sql: `CREATE STATISTICS IF NOT EXISTS ${onCopy}${kinds} ON ${st.columns} FROM ${copy};`,
        locks: [shareUpdateExclusive(copy)],
      },
    ];
    steps.push({
      kind: 'alter-statistics',
      comment: `extended statistics ${st.name}: owner as on the table (the runner created it)`,
      sql: `ALTER STATISTICS ${onCopy} OWNER TO ${ident(st.owner)};`,
      locks: [],
      joinsPrevious: true,
    });
    if (st.target !== null)
      steps.push({
        kind: 'alter-statistics',
        comment: `extended statistics ${st.name}: statistics target as on the table`,
        sql: `ALTER STATISTICS ${onCopy} SET STATISTICS ${st.target};`,
        locks: [],
        joinsPrevious: true,
      });
    return steps;
  });
}

/** The swap's (or, backwards, the revert's) renames of extended statistics objects. */
function statisticsRenames(
  model: TableModel,
  aside: (i: number) => string,
  back: (i: number) => string,
  verb: { readonly aside: string; readonly back: string },
): Step[] {
  const steps: Step[] = [];
  model.extendedStatistics.forEach((st, i) => {
    steps.push({
      kind: 'alter-statistics',
      comment: `${verb.aside} extended statistics ${st.name} steps aside`,
      sql: `ALTER STATISTICS ${qualified(st.schema, st.name)} RENAME TO ${ident(aside(i))};`,
      locks: [],
    });
  });
  model.extendedStatistics.forEach((st, i) => {
    steps.push({
      kind: 'alter-statistics',
      comment: `${verb.back} extended statistics ${st.name} gets its name back`,
      sql: `ALTER STATISTICS ${qualified(st.schema, back(i))} RENAME TO ${ident(st.name)};`,
      locks: [],
    });
  });
  return steps;
}

function renameIndex(comment: string, index: string, to: string): Step {
  return {
    kind: 'rename-index',
    comment,
    sql: `ALTER INDEX ${index} RENAME TO ${ident(to)};`,
    locks: [shareUpdateExclusive(index)],
  };
}

function alterSequence(comment: string, sequence: string, change: string): Step {
  return {
    kind: 'alter-sequence',
    comment,
    sql: `ALTER SEQUENCE ${sequence} ${change};`,
    locks: [shareRowExclusive(sequence)],
  };
}

function autovacuumReset(comment: string, table: string): Step {
  return {
    kind: 'autovacuum-reset',
    comment,
    sql: `ALTER TABLE ${table} RESET (autovacuum_enabled, toast.autovacuum_enabled);`,
    locks: [shareUpdateExclusive(table)],
  };
}

function triggerState(comment: string, table: string, state: string, trigger: string): Step {
  return {
    kind: 'trigger-state',
    comment,
    sql: `ALTER TABLE ${table} ${state} TRIGGER ${ident(trigger)};`,
    locks: [shareRowExclusive(table)],
  };
}

/** The table a foreign key of the table references, quoted; null when it references the table itself. */
function parentOf(model: TableModel, con: ConstraintModel): string | null {
  const ref = con.references;
  if (ref === null || (ref.schema === model.schema && ref.name === model.name)) return null;
  return qualified(ref.schema, ref.name);
}

/**
 * A foreign key dropped from `from` and added NOT VALID on `to`, with its comment. Dropping it drops
 * its triggers on both tables: ACCESS EXCLUSIVE on the table it is on and on the one it referenced
 * (`before`); adding it takes SHARE ROW EXCLUSIVE on `to` and on the table it references (`after`).
 */
function moveForeignKey(
  comment: string,
  fk: { readonly name: string; readonly definition: string; readonly comment: string | null },
  on: { readonly from: string; readonly to: string; readonly before: string; readonly after: string },
): Step {
  return {
    kind: 'move-foreign-key',
    comment,
    sql: `ALTER TABLE ${on.from} DROP CONSTRAINT ${ident(fk.name)};\nALTER TABLE ${on.to} ADD CONSTRAINT ${ident(fk.name)} ${fkDefinition(fk.definition)};${constraintComment(fk, on.to)}`,
    locks: lockList(
      accessExclusive(on.from),
      accessExclusive(on.before),
      shareRowExclusive(on.to),
      shareRowExclusive(on.after),
    ),
  };
}

/**
 * After the renames of the swap (`away`: the old table) or of revert (`away`: the rebuilt one): the
 * table's own foreign keys move from `away` to the table that now has the name, and those of other
 * tables are re-pointed at it. `says`: what happens to each, in the step's comment.
 */
function foreignKeyMoves(
  input: StepInput,
  away: string,
  says: { readonly own: string; readonly child: string },
): Step[] {
  const { model, src } = input;
  const steps: Step[] = [];
  for (const con of model.constraints) {
    if (con.kind !== 'foreign-key') continue;
    const parent = parentOf(model, con);
    steps.push(
      moveForeignKey(`foreign key ${con.name} ${says.own}`, con, {
        from: away,
        to: src,
        before: parent ?? away,
        after: parent ?? src,
      }),
    );
  }
  for (const fk of model.referencedBy) {
    const child = qualified(fk.tableSchema, fk.tableName);
    steps.push(
      moveForeignKey(`foreign key ${fk.name} on ${fk.tableSchema}.${fk.tableName} ${says.child}`, fk, {
        from: child,
        to: child,
        before: away,
        after: src,
      }),
    );
  }
  return steps;
}

/** Statements run under the swap lock, after the last apply. */
export function swapSteps(input: StepInput): Step[] {
  const { model, target, names, src, copy, old } = input;
  const steps: Step[] = [
    {
      kind: 'rename-table',
      comment: 'the old table steps aside (kept, in sync, until cleanup)',
      sql: `ALTER TABLE ${src} RENAME TO ${ident(names.oldTable)};`,
      locks: [accessExclusive(src)],
    },
    {
      kind: 'rename-table',
      comment: "the copy takes the table's name",
      sql: `ALTER TABLE ${copy} RENAME TO ${ident(model.name)};`,
      locks: [accessExclusive(copy)],
    },
  ];
  model.indexes.forEach((index, i) => {
    steps.push(
      renameIndex(`old index ${index.name} steps aside`, qualified(model.schema, index.name), names.oldIndex(i)),
    );
  });
  model.indexes.forEach((index, i) => {
    steps.push(
      renameIndex(`index ${index.name} gets its name back`, qualified(model.schema, names.copyIndex(i)), index.name),
    );
    if (index.clustered) {
      steps.push({
        kind: 'cluster-on',
        comment: `${index.name} stays the clustered index`,
        sql: `ALTER TABLE ${src} CLUSTER ON ${ident(index.name)};`,
        locks: [shareUpdateExclusive(src), shareUpdateExclusive(qualified(model.schema, index.name))],
      });
    }
  });
  steps.push(...statisticsRenames(model, names.oldStatistics, names.copyStatistics, { aside: 'old', back: 'rebuilt' }));
  const ri = model.replicaIdentity;
  if (ri.kind !== 'default') {
    const what = ri.kind === 'index' && ri.index !== null ? `USING INDEX ${ident(ri.index)}` : ri.kind.toUpperCase();
    steps.push({
      kind: 'replica-identity',
      comment: 'replica identity, as on the table',
      sql: `ALTER TABLE ${src} REPLICA IDENTITY ${what};`,
      locks: [accessExclusive(src)],
    });
  }
  // The rebuilt table's identities take the target's shape (a widened key's sequence is bigint).
  steps.push(...identitySwapSteps({ ...input, model: target.model }));
  for (const seq of model.ownedSequences) {
    steps.push(
      alterSequence(
        `sequence ${seq.name} now belongs to the rebuilt table; its value continues`,
        qualified(seq.schema, seq.name),
        `OWNED BY ${src}.${ident(seq.column)}`,
      ),
    );
  }
  for (const r of target.sequences) {
    steps.push(
      alterSequence(
        `sequence ${r.sequence.name} becomes ${r.to} like its column (its maximum widens with it)`,
        qualified(r.sequence.schema, r.sequence.name),
        `AS ${r.to}`,
      ),
    );
  }
  if (target.partitioning === null) {
    steps.push(autovacuumReset("autovacuum back on, the table's own storage parameters back", src));
  } else {
    // A partitioned table has no storage of its own: autovacuum was kept off on each partition.
    for (const p of target.partitioning.partitions) {
      steps.push(autovacuumReset(`partition ${p.name}: autovacuum back on`, qualified(model.schema, p.name)));
    }
  }
  const reloptions = [...target.model.reloptions, ...target.model.toastReloptions.map((o) => `toast.${o}`)];
  if (reloptions.length > 0)
    steps.push({
      kind: 'storage-parameters',
      comment: "the table's storage parameters",
      sql: `ALTER TABLE ${src} SET (${reloptionList(reloptions)});`,
      locks: [accessExclusive(src)],
    });
  steps.push(...policySql(model, src));
  for (const t of model.triggers) {
    // Its definition names the table, which is the rebuilt one by now.
    steps.push({
      kind: 'create-trigger',
      comment: `trigger ${t.name}, created only now so it never fired for the tool's copying`,
      sql: `${t.definition};`,
      locks: [shareRowExclusive(src)],
    });
    if (t.enabled !== 'O')
      steps.push(triggerState(`trigger ${t.name} keeps its state`, src, TRIGGER_STATE[t.enabled], t.name));
    if (t.enabled !== 'D')
      steps.push(
        triggerState(
          `trigger ${t.name} must not fire for the writes that keep the old table in sync`,
          old,
          'DISABLE',
          t.name,
        ),
      );
  }
  if (model.comment !== null)
    steps.push({
      kind: 'comment',
      comment: 'table comment',
      sql: `COMMENT ON TABLE ${src} IS ${literal(model.comment)};`,
      locks: [shareUpdateExclusive(src)],
    });
  for (const c of model.columnComments)
    steps.push({
      kind: 'comment',
      comment: `comment on column ${c.column}`,
      sql: `COMMENT ON COLUMN ${src}.${ident(c.column)} IS ${literal(c.comment)};`,
      locks: [shareUpdateExclusive(src)],
    });
  steps.push(...indexAndConstraintComments(model, src));
  steps.push(
    ...foreignKeyMoves(input, old, {
      own: 'moves to the rebuilt table (validated after commit)',
      child: 'now references the rebuilt table',
    }),
  );
  steps.push({
    kind: 'drop-triggers',
    comment: 'the old table no longer needs capturing',
    sql: `DROP TRIGGER ${ident(names.captureTrigger)} ON ${old};\nDROP TRIGGER ${ident(names.truncateTrigger)} ON ${old};`,
    locks: [accessExclusive(old)],
  });
  steps.push(...triggerSteps(input, src));
  // A statement trigger on a partitioned table does not fire for TRUNCATE of one partition by name.
  for (const p of target.partitioning?.partitions ?? []) {
    const part = qualified(model.schema, p.name);
    steps.push({
      kind: 'create-trigger',
      comment: `TRUNCATE of partition ${p.name} stays refused until cleanup too`,
      locks: [shareRowExclusive(part)],
      sql: `CREATE TRIGGER ${ident(names.truncateTrigger)}\n  BEFORE TRUNCATE ON ${part}\n  FOR EACH STATEMENT EXECUTE FUNCTION ${input.func.truncate}();\nALTER TABLE ${part} ENABLE ALWAYS TRIGGER ${ident(names.truncateTrigger)};`,
    });
  }
  // Last, so that nothing above runs with privileges the application's roles should not see.
  steps.push(...privilegeSteps(input));
  return steps;
}

/** Statements run under the revert lock: the swap, backwards. */
export function revertSteps(input: StepInput): Step[] {
  const { model, names, src, copy, old } = input;
  const steps: Step[] = [
    {
      kind: 'rename-table',
      comment: 'the rebuilt table steps aside (dropped at the end of this stage)',
      sql: `ALTER TABLE ${src} RENAME TO ${ident(names.copyTable)};`,
      locks: [accessExclusive(src)],
    },
    {
      kind: 'rename-table',
      comment: 'the original table gets its name back',
      sql: `ALTER TABLE ${old} RENAME TO ${ident(model.name)};`,
      locks: [accessExclusive(old)],
    },
  ];
  model.indexes.forEach((index, i) => {
    steps.push(
      renameIndex(`rebuilt index ${index.name} steps aside`, qualified(model.schema, index.name), names.copyIndex(i)),
    );
  });
  model.indexes.forEach((index, i) => {
    steps.push(
      renameIndex(
        `original index ${index.name} gets its name back`,
        qualified(model.schema, names.oldIndex(i)),
        index.name,
      ),
    );
  });
  steps.push(
    ...statisticsRenames(model, names.copyStatistics, names.oldStatistics, { aside: 'rebuilt', back: 'original' }),
  );
  for (const t of model.triggers) {
    if (t.enabled !== 'D')
      steps.push(triggerState(`trigger ${t.name} fires again as before`, src, TRIGGER_STATE[t.enabled], t.name));
  }
  steps.push(...identityRevertSteps(input));
  for (const seq of model.ownedSequences) {
    steps.push(
      alterSequence(
        `sequence ${seq.name} belongs to the original table again`,
        qualified(seq.schema, seq.name),
        `OWNED BY ${src}.${ident(seq.column)}`,
      ),
    );
  }
  for (const r of input.target.sequences) {
    steps.push(
      alterSequence(
        `sequence ${r.sequence.name} is ${r.from} again (fails, and nothing is reverted, if it went past the ${r.from} range)`,
        qualified(r.sequence.schema, r.sequence.name),
        `AS ${r.from}`,
      ),
    );
  }
  steps.push(
    ...foreignKeyMoves(input, copy, {
      own: 'moves back to the original table',
      child: 'references the original table again',
    }),
  );
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
      steps.push({
        kind: 'validate-foreign-key',
        comment: `validate foreign key ${con.name} as the table's owner (blocks no writer)`,
        sql: validateAsOwner(input, src, con.name),
        locks: [shareUpdateExclusive(src)],
      });
    }
  }
  for (const fk of model.referencedBy) {
    if (fk.validated) {
      const child = qualified(fk.tableSchema, fk.tableName);
      steps.push({
        kind: 'validate-foreign-key',
        comment: `validate foreign key ${fk.name} on ${fk.tableSchema}.${fk.tableName} as that table's owner (blocks no writer)`,
        sql: validateAsOwner(input, child, fk.name),
        locks: [shareUpdateExclusive(child)],
      });
    }
  }
  return steps;
}

/** Tables whose foreign keys the swap re-points: children (into the table) and parents (out of it). */
export function relatedTables(model: TableModel): { children: string[]; parents: string[] } {
  const children = [...new Set(model.referencedBy.map((f) => qualified(f.tableSchema, f.tableName)))].sort();
  const parents = [
    ...new Set(
      model.constraints
        .filter((c) => c.kind === 'foreign-key' && c.references)
        .map((c) => qualified(c.references!.schema, c.references!.name)),
    ),
  ].sort();
  return { children, parents };
}
