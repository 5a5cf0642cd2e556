import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { commonContext } from '../../src/compile/context.js';
import { resolveOptions, type PlanOptions } from '../../src/compile/options.js';
import { stagesToRender } from '../../src/compile/stage-inputs.js';
import { bindingInput, STAGE_FIELDS } from '../../src/compile/template-inputs.js';
import { deriveTarget } from '../../src/compile/transform/derive.js';
import { NO_TRANSFORM, resolveTransform, type TransformArgs } from '../../src/compile/transform/spec.js';
import type { EnvironmentFacts, TableModel } from '../../src/model/types.js';
import { loadTemplates, templatesDir } from '../../src/planning/templates.js';
import { checkTemplate, kindOfPath, usedFields, usedPaths, type DataUse } from '../helpers/template-kinds.js';

const ROOT = templatesDir();
/** Every template file, the cross-cluster ones (templates/move/) included, whoever adds them. */
function templateFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((f) => {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) return templateFiles(p);
      return f.endsWith('.hbs') ? [p] : [];
    });
}
const files = templateFiles(ROOT);
const partialNames = new Set(files.filter((f) => basename(dirname(f)) === 'partials').map((f) => basename(f, '.hbs')));
const checked = files.map((f) => checkTemplate(relative(ROOT, f), readFileSync(f, 'utf8'), partialNames));

/**
 * Data printed as it is (no kind suffix) must be a number or a boolean (or unset), or one of these
 * strings the tool itself makes, never from the catalog or the user.
 */
const GENERATED: Readonly<Record<string, RegExp>> = {
  'names.runId': /^[0-9a-f]+$/,
  runId: /^[0-9a-f]+$/,
  toolVersion: /^[\w.+-]+$/,
  'stage.name': /^[a-z]+$/,
  'stage.file': /^[\w.-]+$/,
  'verify.algorithm': /^[\w-]+$/,
  badRowSqlstate: /^[0-9A-Z]{5}$/,
  /** Two 32-bit keys as one bigint. */
  'advisory.settleKey': /^\d+$/,
};

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'compile');
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
interface TransformCase extends TransformArgs {
  readonly base?: string;
  readonly appendColumns?: readonly TableModel['columns'][number][];
}
/** Every fixture's stage inputs and binding input, as compile() renders them (the same loader as compile-golden). */
const fixtureInputs = readdirSync(FIXTURES)
  .filter((d) => existsSync(join(FIXTURES, d, 'model.json')) || existsSync(join(FIXTURES, d, 'transform.json')))
  .map((name) => {
    const t = join(FIXTURES, name, 'transform.json');
    const spec = existsSync(t) ? readJson<TransformCase>(t) : null;
    const base = readJson<TableModel>(join(FIXTURES, spec?.base ?? name, 'model.json'));
    const facts = readJson<EnvironmentFacts>(join(FIXTURES, spec?.base ?? name, 'facts.json'));
    const model = spec?.appendColumns ? { ...base, columns: [...base.columns, ...spec.appendColumns] } : base;
    const options = resolveOptions(
      existsSync(join(FIXTURES, name, 'options.json'))
        ? readJson<Partial<PlanOptions>>(join(FIXTURES, name, 'options.json'))
        : {},
    );
    const target = deriveTarget(model, spec ? resolveTransform(spec) : NO_TRANSFORM);
    const common = commonContext(model, target, options, '0.1.0');
    const stages = stagesToRender(common, target, options);
    const binding = {
      file: 'binding.sql',
      input: bindingInput('0.1.0', 'i1:0', common.tableDisplay, common.names.runId, facts),
    };
    return {
      name,
      stages,
      inputs: [...stages.map((s) => ({ file: s.info.file, input: s.input as unknown })), binding],
    };
  });

/** The rebuild's own templates: their values are checked in every fixture's inputs. */
const isRebuildTemplate = (template: string): boolean => !template.includes('/') || template.startsWith('partials/');

/**
 * Templates that print fields not yet named by kind (templates/move/, issue 15, written in
 * parallel with this test; it names fields `…Lit`, `q`, `…Fn`). Each still has findings, listed
 * by the test below; rename its fields by kind (see src/compile/template-inputs.ts) and remove it
 * from this list. A template not on it (a new one) must pass.
 */
const PENDING = new Set<string>([
  'move/partials/move-fingerprints-recorded.hbs',
  'move/partials/move-header.hbs',
  'move/partials/move-round.hbs',
  'move/preflight.target.sql.hbs',
  'move/setup.source.sql.hbs',
  'move/setup.target.sql.hbs',
]);

/** The values at a path under the items of each collection in `scopes` (undefined where missing). */
function valuesAt(root: unknown, scopes: readonly string[], path: string): unknown[] {
  const at = (v: unknown, p: string): unknown =>
    p
      .split('.')
      .reduce<unknown>(
        (o, k) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined),
        v,
      );
  let items: unknown[] = [root];
  for (const s of scopes)
    items = items.flatMap((i) => {
      const c = at(i, s);
      return Array.isArray(c) ? c : c === undefined || c === null ? [] : [c];
    });
  return items.map((i) => (path === '' ? i : at(i, path)));
}

/**
 * Outside the rebuild's templates (whose values the fixtures show) data is printed as it is only
 * from the plan's options or as a tool-made id; anything else needs a kind suffix.
 */
function staticDataFindings(
  c: ReturnType<typeof checkTemplate>,
): { template: string; line: number; problem: string }[] {
  return c.dataUses
    .filter(
      (u) =>
        !isRebuildTemplate(u.template) &&
        !(u.scopes.length === 0 && (u.path.startsWith('options.') || GENERATED[u.path] !== undefined)),
    )
    .map((u) => ({
      template: u.template,
      line: u.line,
      problem: `"${[...u.scopes, u.path].join('.')}" has no kind suffix and is printed as it is in ${u.position === 'code' ? 'SQL code' : `a ${u.position}`}: name it …Sql, …Ident, …Literal, …InLiteral or …Text by what it holds (only options.* and tool-made ids may be printed as data here)`,
    }));
}

const describeFindings = (list: readonly { template: string; line: number; problem: string }[]): string[] =>
  list.map((f) => `templates/${f.template}:${f.line}: ${f.problem}`);

describe('the template checker (test/helpers/template-kinds.ts)', () => {
  const check = (text: string, partials: readonly string[] = []): string[] =>
    checkTemplate('t.hbs', text, new Set(partials)).findings.map((f) => f.problem);

  it('reads the kind from the nearest suffix, leaf first', () => {
    expect(kindOfPath(['funcIdent', 'capture'])).toBe('Ident');
    expect(kindOfPath(['forwardSql', 'unavailableText'])).toBe('Text');
    expect(kindOfPath(['keyInLiteral'])).toBe('InLiteral');
    expect(kindOfPath(['options', 'batchPages'])).toBe('Data');
    expect(kindOfPath(['steps', 'sql'])).toBe('Sql');
  });

  it('passes each kind where it is safe', () => {
    expect(
      check(
        [
          '-- {{{tableText}}}: {{options.batchPages}} pages',
          'DROP TABLE {{{copyIdent}}};',
          '{{{oldTableDependentsCheckSql}}}',
          "SELECT {{{literal tableText}}}, {{{stateLiteral}}}, 'key ({{{keyInLiteral}}})', {{{ident names.captureTrigger}}};",
          "RAISE NOTICE 'it''s -- not a comment: {{{keyInLiteral}}}';",
          '{{#each partitionTablesIdent}}',
          'DROP TABLE {{{this}}}; -- {{@index}}',
          '{{/each}}',
          '{{#each steps}}',
          '-- {{{commentText}}}',
          '{{{sql}}}',
          '{{/each}}',
          '{{> p fnIdent=funcIdent.capture phaseInLiteral="catchup" steps=swapSteps}}',
        ].join('\n'),
        ['p'],
      ),
    ).toEqual([]);
  });

  it('fails SQL text inside a quoted literal', () => {
    expect(check("RAISE NOTICE 'x {{{signatureSql}}}';")).toEqual([
      expect.stringContaining('a …Sql field, printed in a string'),
    ]);
  });

  it('fails comment text in code, and names or literals in a comment', () => {
    expect(check('SELECT {{{tableText}}};\n-- {{{copyIdent}}}\n-- {{{literal x}}}')).toEqual([
      expect.stringContaining('a …Text field, printed in SQL code'),
      expect.stringContaining('a …Ident field, printed in a comment'),
      expect.stringContaining('a …Literal field, printed in a comment'),
    ]);
  });

  it('tells a comment from a literal that holds --', () => {
    expect(check("SELECT '--', {{{tableText}}};")).toEqual([
      expect.stringContaining('a …Text field, printed in SQL code'),
    ]);
  });

  it('fails a helper that does not quote, and a sub-expression', () => {
    expect(check('{{{concat a b}}}')).toEqual([expect.stringContaining('"concat" is not a quoting helper')]);
    expect(check('{{{literal (concat a b)}}}')).toEqual([expect.stringContaining('sub-expression')]);
  });

  it('fails a partial argument of another kind, and an unknown partial', () => {
    expect(check('{{> p fnIdent=tableText}}', ['p'])).toEqual([
      expect.stringContaining('argument fnIdent of partial "p" is a …Ident but gets "tableText", a …Text'),
    ]);
    expect(check('{{> missing}}')).toEqual([expect.stringContaining('partial "missing" does not exist')]);
    expect(check('{{> p hintInLiteral="it\'\'s fine" noteText="one line"}}', ['p'])).toEqual([]);
    expect(check('{{> p hintInLiteral="it\'s not"}}', ['p'])).toEqual([
      expect.stringContaining('argument hintInLiteral of partial "p" is text that does not fit a …InLiteral'),
    ]);
  });

  it('reports printed data, for its values to be checked', () => {
    const r = checkTemplate(
      't.hbs',
      "-- {{options.batchPages}}\n{{#each buildItems}}SELECT {{key}};{{/each}}\nSELECT '{{model.name}}';",
      new Set(),
    );
    expect(r.findings).toEqual([]);
    expect(r.dataUses.map((u: DataUse) => [u.scopes, u.path, u.position])).toEqual([
      [[], 'options.batchPages', 'comment'],
      [['buildItems'], 'key', 'code'],
      [[], 'model.name', 'string'],
    ]);
  });
});

describe('every template prints each field only where its kind is safe', () => {
  it('finds the templates and the printed fields', () => {
    expect(files.length).toBeGreaterThan(25);
    expect(checked.flatMap((c) => c.dataUses).length).toBeGreaterThan(30);
  });

  it('has no finding (name a field by what it holds: …Sql, …Ident, …Literal, …InLiteral or …Text; see src/compile/template-inputs.ts)', () => {
    expect(
      describeFindings(
        checked.filter((c) => !PENDING.has(c.template)).flatMap((c) => [...c.findings, ...staticDataFindings(c)]),
      ),
    ).toEqual([]);
  });

  it('lists on PENDING only templates that still have findings (remove one once it passes)', () => {
    const passing = checked
      .filter((c) => PENDING.has(c.template) && c.findings.length === 0 && staticDataFindings(c).length === 0)
      .map((c) => c.template);
    const gone = [...PENDING].filter((p) => !checked.some((c) => c.template === p));
    expect([...passing, ...gone]).toEqual([]);
  });

  it('prints data as it is only when it is a number, a boolean, or a string the tool makes', () => {
    const unsafe: string[] = [];
    for (const use of checked.flatMap((c) => c.dataUses).filter((u) => isRebuildTemplate(u.template))) {
      const key = [...use.scopes, use.path].join('.');
      const pattern = use.scopes.length === 0 ? GENERATED[use.path] : undefined;
      let given = false;
      for (const { name, inputs } of fixtureInputs) {
        for (const { file, input } of inputs) {
          for (const v of valuesAt(input, use.scopes, use.path)) {
            given ||= v !== undefined;
            const safe =
              v === undefined ||
              v === null ||
              typeof v === 'number' ||
              typeof v === 'boolean' ||
              (typeof v === 'string' && pattern !== undefined && pattern.test(v));
            if (!safe)
              unsafe.push(
                `templates/${use.template}:${use.line}: "${key}" is ${JSON.stringify(v)} in ${name}/${file}: give it a kind suffix, or pass it to a quoting helper`,
              );
          }
        }
      }
      if (!given)
        unsafe.push(
          `templates/${use.template}:${use.line}: "${key}" is in no fixture's input, so its values go unchecked`,
        );
    }
    expect([...new Set(unsafe)]).toEqual([]);
  });
});

describe('each stage gets only what its template reads', () => {
  const t = loadTemplates();

  it.each(Object.keys(STAGE_FIELDS))(
    '%s: STAGE_FIELDS lists exactly the fields its template and partials read',
    (stage) => {
      const fields = STAGE_FIELDS[stage as keyof typeof STAGE_FIELDS];
      expect([...new Set(fields)].sort()).toEqual(
        [...usedFields(t.stages[stage as keyof typeof STAGE_FIELDS], t.partials)].sort(),
      );
    },
  );

  it('every path a template reads is there in every fixture (a quoting helper would print a missing one as "undefined")', () => {
    const missing: string[] = [];
    for (const { name, stages } of fixtureInputs) {
      for (const s of stages) {
        for (const path of usedPaths(t.stages[s.name], t.partials)) {
          if (valuesAt(s.input, [], path)[0] === undefined) missing.push(`${name}/${s.info.file}: ${path}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });
});
