import Handlebars from 'handlebars';
import { ident, literal, qualified } from '../model/quote.js';
import { DOLLAR_HELPER, dollarMark, markDollarTags } from './dollar-tag.js';
import type { StageName } from './stages.js';

/** Template texts, read by the caller (the compiler itself never touches files). */
export interface TemplateSet {
  readonly stages: { readonly [K in StageName]: string };
  readonly partials: Readonly<Record<string, string>>;
  /** binding.sql: the one file written per environment. */
  readonly binding: string;
}

export type StageRenderer = (context: object) => string;

/**
 * An isolated Handlebars with these partials: no HTML escaping (it would corrupt SQL), strict (a
 * missing field throws), and only quoting helpers. Rebuild and move plans alike compile with it.
 */
export function sqlTemplates(partials: Readonly<Record<string, string>>): (text: string) => StageRenderer {
  const hb = Handlebars.create();
  hb.registerHelper('ident', (name: unknown) => ident(String(name)));
  hb.registerHelper('literal', (value: unknown) => literal(String(value)));
  hb.registerHelper('qualified', (schema: unknown, name: unknown) => qualified(String(schema), String(name)));
  hb.registerHelper(DOLLAR_HELPER, dollarMark);
  // `$sp$` in a template is the plan's dollar tag, chosen after rendering (see dollar-tag.ts).
  for (const [name, text] of Object.entries(partials)) hb.registerPartial(name, markDollarTags(text));
  return (text) => {
    const t = hb.compile(markDollarTags(text), { noEscape: true, strict: true });
    return (context) => t(context);
  };
}

/** The stage and binding templates of a rebuild plan, each compiled once (see sqlTemplates). */
export function makeRenderers(templates: TemplateSet): { readonly [K in StageName | 'binding']: StageRenderer } {
  const compileOne = sqlTemplates(templates.partials);
  const s = templates.stages;
  return {
    preflight: compileOne(s.preflight),
    setup: compileOne(s.setup),
    backfill: compileOne(s.backfill),
    build: compileOne(s.build),
    catchup: compileOne(s.catchup),
    verify: compileOne(s.verify),
    swap: compileOne(s.swap),
    cleanup: compileOne(s.cleanup),
    abort: compileOne(s.abort),
    revert: compileOne(s.revert),
    binding: compileOne(templates.binding),
  };
}

/** One blank line at most between blocks, a single newline at the end. */
export function tidy(sql: string): string {
  return sql
    .replace(/[ \t]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .replace(/^\n+/, '')
    .replace(/\n*$/, '\n');
}
