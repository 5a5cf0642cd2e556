import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TemplateSet } from '../compile/render.js';
import { ALL_STAGES, type StageName } from '../compile/stages.js';

/** templates/ sits two levels above this file both in src/planning and in dist/planning. */
export function templatesDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'templates');
}

export function loadTemplates(dir: string = templatesDir()): TemplateSet {
  const stages = {} as Record<StageName, string>;
  for (const s of ALL_STAGES) stages[s] = readFileSync(join(dir, `${s}.sql.hbs`), 'utf8');
  const partials: Record<string, string> = {};
  for (const f of readdirSync(join(dir, 'partials')).sort()) {
    if (f.endsWith('.hbs')) partials[f.slice(0, -'.hbs'.length)] = readFileSync(join(dir, 'partials', f), 'utf8');
  }
  return { stages, partials, binding: readFileSync(join(dir, 'binding.sql.hbs'), 'utf8') };
}
