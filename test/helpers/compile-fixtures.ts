import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveOptions, type PlanOptions } from '../../src/compile/options.js';
import { resolveTransform, type TransformArgs, type TransformSpec } from '../../src/compile/transform/spec.js';
import type { EnvironmentFacts, TableModel } from '../../src/model/types.js';

/** The compiler's golden cases: fixtures/compile/<case>/ (model.json or transform.json, facts, options, expected/). */
export const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'compile');

export const cases = readdirSync(FIXTURES, { withFileTypes: true })
  .filter(
    (d) =>
      d.isDirectory() &&
      (existsSync(join(FIXTURES, d.name, 'model.json')) || existsSync(join(FIXTURES, d.name, 'transform.json'))),
  )
  .map((d) => d.name)
  .sort();

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

export interface Case {
  readonly model: TableModel;
  readonly facts: EnvironmentFacts;
  /** From an optional transform.json: the plan's transformation flags. */
  readonly transform?: TransformSpec;
  /** Plan options of the case (options.json), defaults when absent. */
  readonly options: PlanOptions;
}

/**
 * A transform case names the case whose model it transforms (`base`), so it follows that
 * fixture as the model grows; `appendColumns` adds columns the transformation needs.
 */
interface TransformCase extends TransformArgs {
  readonly base?: string;
  readonly appendColumns?: readonly TableModel['columns'][number][];
}

export const load = (name: string): Case => {
  const t = join(FIXTURES, name, 'transform.json');
  const spec = existsSync(t) ? readJson<TransformCase>(t) : null;
  const from = spec?.base ?? name;
  const model = readJson<TableModel>(join(FIXTURES, from, 'model.json'));
  return {
    model: spec?.appendColumns ? { ...model, columns: [...model.columns, ...spec.appendColumns] } : model,
    facts: readJson<EnvironmentFacts>(join(FIXTURES, from, 'facts.json')),
    options: resolveOptions(
      existsSync(join(FIXTURES, name, 'options.json'))
        ? readJson<Partial<PlanOptions>>(join(FIXTURES, name, 'options.json'))
        : {},
    ),
    ...(spec ? { transform: resolveTransform(spec) } : {}),
  };
};
