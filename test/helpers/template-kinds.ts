import Handlebars from 'handlebars';

/**
 * A static check of one Handlebars template: every value it prints must be safe where it lands.
 *
 * A field's name says what it holds, by its suffix (the nearest one, from the leaf up, so
 * `funcIdent.capture` is an Ident and `forwardSql.unavailableText` a Text; an item of
 * `{{#each partitionTablesIdent}}` is an Ident):
 * - `…Sql`: SQL text (a statement or a fragment), printed only in code;
 * - `…Ident`: a quoted name (or a list of them), only in code;
 * - `…Literal`: a quoted literal (or a list of them), only in code;
 * - `…InLiteral`: text with its quotes doubled, only inside a '…' literal;
 * - `…Text`: comment-safe text (control characters escaped), only in a `--` comment.
 * A field without a suffix is data: it is printed anywhere only when its values are numbers,
 * booleans or ids the tool generates (the caller checks the values; see `dataUses`).
 * The quoting helpers (ident, literal, qualified) print in code; their arguments may be anything.
 * A partial's hash argument must have the kind its name says (or be text written in the template).
 */

export type Kind = 'Sql' | 'Ident' | 'Literal' | 'InLiteral' | 'Text' | 'Data';
/** Where a printed value lands in the SQL the template makes. */
export type Position = 'code' | 'comment' | 'string' | 'quoted name';

/** Longest first: `…InLiteral` also ends in `Literal`. */
const SUFFIXES: readonly Exclude<Kind, 'Data'>[] = ['InLiteral', 'Literal', 'Ident', 'Text', 'Sql'];

const ALLOWED: { readonly [K in Kind]: readonly Position[] } = {
  Sql: ['code'],
  Ident: ['code'],
  Literal: ['code'],
  InLiteral: ['string'],
  Text: ['comment'],
  Data: ['code', 'comment', 'string', 'quoted name'],
};

/** The registered quoting helpers and the kind of what each prints. */
export const QUOTING_HELPERS: Readonly<Record<string, Kind>> = {
  ident: 'Ident',
  literal: 'Literal',
  qualified: 'Ident',
};
const BLOCK_HELPERS = new Set(['if', 'unless', 'each', 'with']);

/** The kind a single name says: `sql` itself, or its suffix. */
export function kindOfName(name: string): Exclude<Kind, 'Data'> | undefined {
  if (name === 'sql') return 'Sql';
  if (name === 'text') return 'Text';
  return SUFFIXES.find((s) => name.length > s.length && name.endsWith(s));
}

/** The nearest suffix from the leaf up; none: data. */
export function kindOfPath(parts: readonly string[]): Kind {
  for (let i = parts.length - 1; i >= 0; i--) {
    const k = kindOfName(parts[i]!);
    if (k !== undefined) return k;
  }
  return 'Data';
}

export interface Finding {
  readonly template: string;
  readonly line: number;
  readonly problem: string;
}

/** A data field printed as it is: `path` under the items of each `{{#each}}` in `scopes`. */
export interface DataUse {
  readonly template: string;
  readonly line: number;
  /** The collections entered, outermost first, each as a path from the one before. */
  readonly scopes: readonly string[];
  readonly path: string;
  readonly position: Position;
}

export interface CheckResult {
  readonly template: string;
  readonly findings: readonly Finding[];
  readonly dataUses: readonly DataUse[];
}

interface Lexer {
  state: 'code' | 'comment' | 'block comment' | 'string' | 'escape string' | 'quoted name';
}

/** Advances the SQL lexer over template text (printed values leave it where it was). */
function lex(lexer: Lexer, text: string): void {
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    const next = text[i + 1];
    switch (lexer.state) {
      case 'code':
        if (c === '-' && next === '-') {
          lexer.state = 'comment';
          i++;
        } else if (c === '/' && next === '*') {
          lexer.state = 'block comment';
          i++;
        } else if (c === "'")
          lexer.state = /[eE]/.test(text[i - 1] ?? '') && !/\w/.test(text[i - 2] ?? '') ? 'escape string' : 'string';
        else if (c === '"') lexer.state = 'quoted name';
        break;
      case 'comment':
        if (c === '\n') lexer.state = 'code';
        break;
      case 'block comment':
        if (c === '*' && next === '/') {
          lexer.state = 'code';
          i++;
        }
        break;
      case 'string':
        if (c === "'") {
          if (next === "'") i++;
          else lexer.state = 'code';
        }
        break;
      case 'escape string':
        if (c === '\\') i++;
        else if (c === "'") {
          if (next === "'") i++;
          else lexer.state = 'code';
        }
        break;
      case 'quoted name':
        if (c === '"') {
          if (next === '"') i++;
          else lexer.state = 'code';
        }
        break;
    }
  }
}

function positionOf(lexer: Lexer): Position {
  switch (lexer.state) {
    case 'code':
      return 'code';
    case 'comment':
    case 'block comment':
      return 'comment';
    case 'string':
    case 'escape string':
      return 'string';
    case 'quoted name':
      return 'quoted name';
  }
}

interface Scope {
  /** The collection's path parts, from the stage input (for kinds) and as written (for data). */
  readonly parts: readonly string[];
  readonly written: string;
}

/**
 * Checks one template. `partials`: the names a `{{> name}}` may use. Partial files are checked on
 * their own, starting in code.
 */
export function checkTemplate(name: string, text: string, partials: ReadonlySet<string>): CheckResult {
  const findings: Finding[] = [];
  const dataUses: DataUse[] = [];
  const find = (node: hbs.AST.Node, problem: string): void => {
    findings.push({ template: name, line: node.loc?.start.line ?? 0, problem });
  };

  /** The kind of a path where it is written, inside the given {{#each}} scopes. */
  const pathKind = (p: hbs.AST.PathExpression, scopes: readonly Scope[]): { kind: Kind; scopes: readonly Scope[] } => {
    if (p.data) {
      // @index, @last, @first: numbers and booleans; @root.x: from the top.
      if (p.original.startsWith('@root.')) return { kind: kindOfPath(p.parts), scopes: [] };
      return { kind: 'Data', scopes };
    }
    const visible = scopes.slice(0, Math.max(0, scopes.length - p.depth));
    const inherited = visible.flatMap((s) => s.parts);
    return { kind: kindOfPath([...inherited, ...p.parts]), scopes: visible };
  };

  const printed = (node: hbs.AST.Node, what: string, kind: Kind, lexer: Lexer): Position => {
    const position = positionOf(lexer);
    if (!ALLOWED[kind].includes(position)) {
      const allowed = ALLOWED[kind].join(' or ');
      find(
        node,
        `${what} is ${kind === 'Data' ? 'data' : `a …${kind} field`}, printed in ${position === 'code' ? 'SQL code' : `a ${position}`}; it may only be printed in ${allowed}` +
          (position === 'comment'
            ? ' (comments take …Text fields: pass commentText() text)'
            : position === 'string'
              ? ' (inside a literal only …InLiteral fields, or build the whole literal with {{{literal x}}})'
              : ' (SQL code takes …Sql, …Ident, …Literal fields or a quoting helper)'),
      );
    }
    return position;
  };

  const checkArgs = (node: hbs.AST.Node, params: readonly hbs.AST.Expression[]): void => {
    for (const a of params) {
      if (a.type === 'SubExpression')
        find(node, `a sub-expression as a helper argument: templates hold text, compute it in compile/`);
    }
  };

  const walk = (node: hbs.AST.Node | null | undefined, scopes: readonly Scope[], lexer: Lexer): void => {
    if (node === undefined || node === null) return;
    switch (node.type) {
      case 'Program':
        for (const st of (node as hbs.AST.Program).body) walk(st, scopes, lexer);
        return;
      case 'ContentStatement':
        // The text as written (value may have lost a standalone line's newline). Typed wrongly upstream.
        lex(lexer, (node as hbs.AST.ContentStatement).original as unknown as string);
        return;
      case 'CommentStatement':
        return;
      case 'MustacheStatement': {
        const m = node as hbs.AST.MustacheStatement;
        if (m.path.type !== 'PathExpression') {
          find(m, `a literal in a mustache: write the text in the template`);
          return;
        }
        const p = m.path as hbs.AST.PathExpression;
        const hasArgs = m.params.length > 0 || (m.hash !== undefined && m.hash.pairs.length > 0);
        if (hasArgs || p.original in QUOTING_HELPERS) {
          checkArgs(m, m.params);
          if (p.original === 'lookup') {
            const key = m.params[1];
            if (m.params.length !== 2 || key?.type !== 'StringLiteral') {
              find(m, `lookup takes an object and a field name written in the template`);
              return;
            }
            printed(
              m,
              `lookup "${(key as hbs.AST.StringLiteral).value}"`,
              kindOfName((key as hbs.AST.StringLiteral).value) ?? 'Data',
              lexer,
            );
            return;
          }
          const kind = QUOTING_HELPERS[p.original];
          if (kind === undefined) {
            find(
              m,
              `helper "${p.original}" is not a quoting helper (only ${Object.keys(QUOTING_HELPERS).join(', ')} are registered)`,
            );
            return;
          }
          printed(m, `{{${p.original} …}}`, kind, lexer);
          return;
        }
        const { kind, scopes: visible } = pathKind(p, scopes);
        const position = printed(m, `"${p.original}"`, kind, lexer);
        if (kind === 'Data' && !p.data) {
          dataUses.push({
            template: name,
            line: m.loc?.start.line ?? 0,
            scopes: visible.map((s) => s.written),
            path: p.parts.join('.'),
            position,
          });
        }
        return;
      }
      case 'BlockStatement': {
        const b = node as hbs.AST.BlockStatement;
        const helper = b.path.type === 'PathExpression' ? (b.path as hbs.AST.PathExpression).original : '';
        if (!BLOCK_HELPERS.has(helper)) {
          find(b, `block helper "${helper}" is not allowed (only ${[...BLOCK_HELPERS].join(', ')})`);
          return;
        }
        checkArgs(b, b.params);
        if (b.program.blockParams !== undefined && b.program.blockParams.length > 0)
          find(b, `block parameters (as |x|) are not allowed`);
        let inner = scopes;
        if (helper === 'each' || helper === 'with') {
          const arg = b.params[0];
          if (arg?.type !== 'PathExpression') {
            find(b, `{{#${helper}}} over something other than a field`);
            return;
          }
          const p = arg as hbs.AST.PathExpression;
          const visible = scopes.slice(0, Math.max(0, scopes.length - p.depth));
          inner = [...visible, { parts: p.parts, written: p.parts.join('.') }];
        }
        const start = lexer.state;
        walk(b.program, inner, lexer);
        const after = lexer.state;
        lexer.state = start;
        walk(b.inverse, scopes, lexer);
        if (b.inverse !== undefined && lexer.state !== after)
          find(b, `the two branches of {{#${helper}}} end in different places (${after}, ${lexer.state})`);
        lexer.state = after;
        return;
      }
      case 'PartialStatement':
      case 'PartialBlockStatement': {
        const ps = node as hbs.AST.PartialStatement | hbs.AST.PartialBlockStatement;
        const partialName = ps.name.type === 'PathExpression' ? (ps.name as hbs.AST.PathExpression).original : '';
        if (partialName !== '@partial-block' && !partials.has(partialName))
          find(ps, `partial "${partialName}" does not exist`);
        if (ps.params.length > 0) find(ps, `a partial with a context argument: pass named arguments (key=value)`);
        for (const pair of ps.hash?.pairs ?? []) {
          const want: Kind = kindOfName(pair.key) ?? 'Data';
          const v = pair.value;
          if (v.type === 'StringLiteral') {
            // Text written in the template: trusted, but it must still fit where its kind goes.
            const text = (v as hbs.AST.StringLiteral).value;
            if (
              (want === 'InLiteral' && /'(?!')/.test(text.replaceAll("''", ''))) ||
              (want === 'Text' && /[\n\r]/.test(text))
            ) {
              find(ps, `argument ${pair.key} of partial "${partialName}" is text that does not fit a …${want}`);
            }
            continue;
          }
          if (v.type === 'NumberLiteral' || v.type === 'BooleanLiteral') continue;
          if (v.type !== 'PathExpression') {
            find(ps, `argument ${pair.key} of partial "${partialName}": only a field or text written in the template`);
            continue;
          }
          const got = pathKind(v as hbs.AST.PathExpression, scopes).kind;
          if (got !== want)
            find(
              ps,
              `argument ${pair.key} of partial "${partialName}" is ${want === 'Data' ? 'data' : `a …${want}`} but gets "${(v as hbs.AST.PathExpression).original}", ${got === 'Data' ? 'data' : `a …${got}`}`,
            );
        }
        if (ps.type === 'PartialBlockStatement') walk((ps as hbs.AST.PartialBlockStatement).program, scopes, lexer);
        return;
      }
      default:
        find(node, `${node.type} is not allowed in a template`);
    }
  };

  walk(Handlebars.parse(text), [], { state: 'code' });
  return { template: name, findings, dataUses };
}

/**
 * The paths of the stage input a template reads (every path that reaches the top), through the
 * partials it renders; a partial's named arguments are its own, not the stage's.
 */
export function usedPaths(text: string, partials: Readonly<Record<string, string>>): Set<string> {
  const used = new Set<string>();
  const seen = new Set<string>();
  const visit = (source: string, locals: ReadonlySet<string>, key: string): void => {
    if (seen.has(key)) return;
    seen.add(key);
    const path = (p: hbs.AST.Expression, depth: number): void => {
      if (p.type === 'SubExpression') {
        const s = p as hbs.AST.SubExpression;
        s.params.forEach((x) => path(x, depth));
        return;
      }
      if (p.type !== 'PathExpression') return;
      const e = p as hbs.AST.PathExpression;
      if (e.data) {
        const parts = e.parts[0] === 'root' ? e.parts.slice(1) : e.parts;
        if (e.original.startsWith('@root.') && parts.length > 0) used.add(parts.join('.'));
        return;
      }
      const head = e.parts[0];
      if (head !== undefined && e.depth >= depth && !locals.has(head)) used.add(e.parts.join('.'));
    };
    const walk = (node: hbs.AST.Node | null | undefined, depth: number): void => {
      if (node === undefined || node === null) return;
      switch (node.type) {
        case 'Program':
          for (const st of (node as hbs.AST.Program).body) walk(st, depth);
          return;
        case 'MustacheStatement': {
          const m = node as hbs.AST.MustacheStatement;
          const helper =
            m.params.length > 0 ||
            (m.hash?.pairs.length ?? 0) > 0 ||
            (m.path as hbs.AST.PathExpression).original in QUOTING_HELPERS;
          if (!helper) path(m.path, depth);
          m.params.forEach((x) => path(x, depth));
          return;
        }
        case 'BlockStatement': {
          const b = node as hbs.AST.BlockStatement;
          b.params.forEach((x) => path(x, depth));
          const helper = (b.path as hbs.AST.PathExpression).original;
          walk(b.program, helper === 'each' || helper === 'with' ? depth + 1 : depth);
          walk(b.inverse, depth);
          return;
        }
        case 'PartialStatement':
        case 'PartialBlockStatement': {
          const ps = node as hbs.AST.PartialStatement | hbs.AST.PartialBlockStatement;
          const name = (ps.name as hbs.AST.PathExpression).original;
          const pairs = ps.hash?.pairs ?? [];
          pairs.forEach((pair) => path(pair.value, depth));
          if (ps.type === 'PartialBlockStatement') walk((ps as hbs.AST.PartialBlockStatement).program, depth);
          const body = partials[name];
          // A partial called inside {{#each}} reads the item's fields: not the stage's.
          if (body !== undefined && depth === 0)
            visit(
              body,
              new Set([...locals, ...pairs.map((p) => p.key)]),
              `${name}(${[...locals, ...pairs.map((p) => p.key)].sort().join(',')})`,
            );
          return;
        }
        default:
          return;
      }
    };
    walk(Handlebars.parse(source), 0);
  };
  visit(text, new Set(), '(stage)');
  return used;
}

/** The stage input's fields a template reads: the first part of each of its paths. */
export function usedFields(text: string, partials: Readonly<Record<string, string>>): Set<string> {
  return new Set([...usedPaths(text, partials)].map((p) => p.split('.')[0]!));
}
