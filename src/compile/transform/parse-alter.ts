import { deparseSync, parse, parseSync } from 'pgsql-parser';
import { UserError } from '../../model/errors.js';
import { runNames } from '../../model/names.js';
import type { TableModel } from '../../model/types.js';
import type { AlterAction } from './alter-actions.js';

/* The parse tree is JSON from libpg_query; these helpers read it without trusting its shape. */
type Node = Record<string, unknown>;
const obj = (v: unknown): Node => (typeof v === 'object' && v !== null ? (v as Node) : {});
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const list = (v: unknown): Node[] => (Array.isArray(v) ? v.map(obj) : []);

function refuse(text: string, why: string): never {
  throw new UserError('BAD_OPTION', `--alter ${JSON.stringify(text)}: ${why}`);
}

/** Deparses one statement acting on the copy. */
function statementOnCopy(kind: 'AlterTableStmt' | 'RenameStmt', body: Node, relation: Node): string {
  return deparseSync({ version: 0, stmts: [{ stmt: { [kind]: { ...body, relation } } }] } as never).trim() + ';';
}

/** Source positions in a parse tree: they differ between two spellings of the same action. */
const POSITION = new Set(['location', 'list_start', 'list_end', 'stmt_location', 'stmt_len']);

/** The tree without source positions, keys sorted, to compare two parses of the same action. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k]) => !POSITION.has(k))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, x]) => [k, canonical(x)]),
  );
}

/**
 * The deparsed statement is what runs, so it must mean what was asked: parsed again, its action must
 * equal the one the user wrote (the deparser has lost array brackets of "char"[], for one).
 */
function checkDeparsed(text: string, cmd: Node, sql: string): void {
  const again = list(obj(obj(list(obj(parseSync(sql))['stmts'])[0]?.['stmt'])['AlterTableStmt'])['cmds'])[0]?.[
    'AlterTableCmd'
  ];
  if (JSON.stringify(canonical(again)) !== JSON.stringify(canonical(cmd))) {
    refuse(
      text,
      `it would run as ${JSON.stringify(sql.replace(/\s+/g, ' '))}, which PostgreSQL reads differently; write it another way (e.g. another spelling of the type)`,
    );
  }
}

const SERIAL_TYPES = new Set(['serial', 'serial4', 'bigserial', 'serial8', 'smallserial', 'serial2']);

function constraintsOf(def: Node): Node[] {
  return list(def['constraints']).map((c) => obj(c['Constraint']));
}

function action(text: string, cmd: Node, relation: Node, stmt: Node): AlterAction {
  const sub = str(cmd['subtype']);
  const column = str(cmd['name']);
  const sql = statementOnCopy('AlterTableStmt', { ...stmt, cmds: [{ AlterTableCmd: cmd }] }, relation);
  checkDeparsed(text, cmd, sql);
  const def = obj(cmd['def']);
  const need = (c: string | null): string => c ?? refuse(text, 'names no column');
  switch (sub) {
    case 'AT_AlterColumnType': {
      const cd = obj(def['ColumnDef']);
      if (cd['collClause'] !== undefined)
        refuse(
          text,
          'COLLATE in a type change is not supported; change the type, then the collation in another rebuild',
        );
      const using = cd['raw_default'] === undefined ? null : deparseSync(cd['raw_default'] as never);
      return {
        kind: 'alter-type',
        column: need(column),
        type: deparseSync({ TypeName: cd['typeName'] } as never),
        using,
        sql,
      };
    }
    case 'AT_AddColumn': {
      const cd = obj(def['ColumnDef']);
      const typeNames = list(obj(cd['typeName'])['names']).map((n) => str(obj(n['String'])['sval']));
      if (typeNames.length === 1 && SERIAL_TYPES.has(typeNames[0] ?? '')) {
        refuse(
          text,
          `a ${typeNames[0]} column would get a sequence named after the copy, with no default the plan could show; create the sequence first and add the column with DEFAULT nextval('the_sequence')`,
        );
      }
      let dflt: string | null = null;
      let generated: string | null = null;
      let notNull = false;
      for (const c of constraintsOf(cd)) {
        const t = str(c['contype']);
        if (t === 'CONSTR_DEFAULT') dflt = deparseSync(c['raw_expr'] as never);
        else if (t === 'CONSTR_GENERATED') generated = deparseSync(c['raw_expr'] as never);
        else if (t === 'CONSTR_NOTNULL') notNull = true;
        else if (t === 'CONSTR_NULL' || t === 'CONSTR_CHECK') continue;
        else
          refuse(
            text,
            `a ${String(t).replace('CONSTR_', '').toLowerCase()} constraint inside ADD COLUMN is not supported; add the column, then the constraint as its own --alter "ADD CONSTRAINT …"`,
          );
      }
      const name = str(cd['colname']) ?? refuse(text, 'names no column');
      return {
        kind: 'add-column',
        column: name,
        type: deparseSync({ TypeName: cd['typeName'] } as never),
        default: dflt,
        generated,
        notNull,
        sql,
      };
    }
    case 'AT_DropColumn':
      return { kind: 'drop-column', column: need(column), sql };
    case 'AT_SetNotNull':
      return { kind: 'set-not-null', column: need(column), sql };
    case 'AT_DropNotNull':
      return { kind: 'drop-not-null', column: need(column), sql };
    case 'AT_ColumnDefault':
      return {
        kind: 'set-default',
        column: need(column),
        default: cmd['def'] === undefined ? null : deparseSync(cmd['def'] as never),
        sql,
      };
    case 'AT_AddConstraint': {
      const c = obj(def['Constraint']);
      const name = str(c['conname']);
      switch (str(c['contype'])) {
        case 'CONSTR_CHECK':
          return { kind: 'add-check', name, sql };
        case 'CONSTR_UNIQUE':
          return { kind: 'add-index-constraint', name, constraint: 'unique', sql };
        case 'CONSTR_EXCLUSION':
          return { kind: 'add-index-constraint', name, constraint: 'exclusion', sql };
        case 'CONSTR_PRIMARY':
          refuse(text, 'the table already has a row key; a new primary key is not supported');
        case 'CONSTR_FOREIGN':
          refuse(
            text,
            'adding a foreign key is not supported here; add it after the swap with NOT VALID, then VALIDATE',
          );
        default:
          refuse(text, `constraint type ${String(c['contype'])} is not supported`);
      }
    }
    default:
      return refuse(
        text,
        `the action ${String(sub).replace(/^AT_/, '')} cannot be mapped onto a rebuild (supported: ALTER COLUMN … TYPE [USING], ADD COLUMN, DROP COLUMN, RENAME COLUMN, SET/DROP NOT NULL, SET/DROP DEFAULT, ADD CONSTRAINT CHECK/UNIQUE/EXCLUDE)`,
      );
  }
}

/**
 * Parses each `--alter` text with PostgreSQL's own parser, as the actions of
 * `ALTER TABLE <the table> …`, and returns them one by one, each deparsed as
 * a statement on the copy. Anything but ALTER TABLE actions (a second
 * statement, a comment hiding the rest) is refused.
 */
export async function parseAlterActions(texts: readonly string[], model: TableModel): Promise<AlterAction[]> {
  const names = runNames(model.schema, model.name);
  const relation = { schemaname: model.schema, relname: names.copyTable, inh: true, relpersistence: 'p' };
  const out: AlterAction[] = [];
  for (const text of texts) {
    if (text.trim() === '') refuse(text, 'is empty');
    let tree: Node;
    try {
      tree = obj(await parse(`ALTER TABLE shadowpack_target ${text}`));
    } catch (e) {
      refuse(text, `does not parse as an ALTER TABLE action: ${(e as Error).message}`);
    }
    const stmts = list(tree['stmts']);
    if (stmts.length !== 1) refuse(text, 'must be the actions of one ALTER TABLE, without ";"');
    const stmt = obj(stmts[0]!['stmt']);
    const rename = obj(stmt['RenameStmt']);
    if (stmt['RenameStmt'] !== undefined) {
      if (str(rename['renameType']) !== 'OBJECT_COLUMN') refuse(text, 'only RENAME COLUMN can be mapped');
      const from = str(rename['subname']) ?? refuse(text, 'names no column');
      const to = str(rename['newname']) ?? refuse(text, 'names no new column name');
      out.push({ kind: 'rename-column', column: from, to, sql: statementOnCopy('RenameStmt', rename, relation) });
      continue;
    }
    const alter = obj(stmt['AlterTableStmt']);
    if (stmt['AlterTableStmt'] === undefined || str(alter['objtype']) !== 'OBJECT_TABLE')
      refuse(text, 'is not an ALTER TABLE action');
    for (const c of list(alter['cmds'])) out.push(action(text, obj(c['AlterTableCmd']), relation, alter));
  }
  return out;
}
