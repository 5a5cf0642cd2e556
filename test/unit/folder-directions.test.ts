/**
 * The folder directions of src/ (docs/development.md), read from every import and export-from of every file
 * (type-only and dynamic imports included: a type is a dependency too) with TypeScript's own scanner.
 *
 *   model ← introspect ← ┐
 *   model ← compile ← run ← planning ← batch ← index (the library's entry)
 *   cli: everything; dev (the demo's server and workload): nothing of src, used by cli only
 *
 * A new folder fails here until it is given its place.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');

type Part = 'model' | 'introspect' | 'compile' | 'run' | 'planning' | 'batch' | 'index' | 'cli' | 'dev' | 'version';

/** What each part may import from src, and why. */
const MAY_IMPORT: Readonly<Record<Part, { readonly from: readonly Part[]; readonly why: string }>> = {
  model: { from: [], why: 'the model (types, quoting, names, hash) is the leaf everything stands on' },
  version: { from: [], why: 'a constant' },
  introspect: { from: ['model'], why: 'the catalog reader maps rows into the model and knows nothing of plans' },
  compile: { from: ['model'], why: 'the compiler is pure: model and options in, plan out' },
  run: { from: ['model', 'compile'], why: 'the executor runs compiled plans; it never plans or parses flags' },
  planning: {
    from: ['model', 'introspect', 'compile', 'run', 'version'],
    why: 'planning gathers facts, compiles and writes the folder (and reads a run in progress)',
  },
  batch: {
    from: ['model', 'introspect', 'compile', 'run', 'planning', 'version'],
    why: 'a batch plans and runs many tables',
  },
  index: {
    from: ['model', 'introspect', 'compile', 'run', 'planning', 'batch', 'version'],
    why: 'the library entry exports the library, not the CLI or the demo',
  },
  dev: { from: [], why: 'a throw-away server and a demo workload need nothing of shadowpack' },
  cli: {
    from: ['model', 'introspect', 'compile', 'run', 'planning', 'batch', 'dev', 'version'],
    why: 'the CLI is the top',
  },
};

/** Packages (and node: modules) each part may import; anything not listed is refused. */
const NODE_IO = ['node:fs', 'node:fs/promises', 'node:path', 'node:url', 'node:os'];
const MAY_USE: Readonly<Record<Part, readonly string[]>> = {
  model: ['node:crypto'],
  version: [],
  introspect: ['pg'],
  // Pure: no pg, no file system, no processes.
  compile: ['node:crypto', 'handlebars', 'pgsql-parser'],
  // node:module: pg-module.ts loads pg through createRequire (pg's Cloudflare probe kept from loading undici).
  run: ['pg', ...NODE_IO, 'node:module'],
  planning: ['pg', ...NODE_IO],
  batch: ['pg', ...NODE_IO],
  index: [],
  dev: ['pg', ...NODE_IO, 'node:child_process', 'node:net', 'node:module', 'node:util'],
  // The only part that parses flags and starts psql.
  cli: ['pg', 'yargs', ...NODE_IO, 'node:child_process'],
};

/** Pure parts: no clock, no randomness, no process (time and environment come in through options). */
const PURE: readonly Part[] = ['model', 'introspect', 'compile'];
const IMPURE = /\bprocess\.|\bDate\.now\(|\bnew Date\(\)|\bMath\.random\(|\bperformance\.now\(/;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

function partOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length > 1 ? rel[0]! : rel[0]!.replace(/\.(ts|js)$/, '');
}

function packageOf(spec: string): string {
  if (spec.startsWith('node:')) return spec;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

interface Import {
  readonly file: string;
  readonly spec: string;
  /** The src part a relative import lands in, or the package of a bare one. */
  readonly target: { readonly part: string } | { readonly pkg: string };
}

function importsOf(file: string): Import[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map(({ fileName: spec }) => ({
    file: path.relative(SRC, file),
    spec,
    target: spec.startsWith('.') ? { part: partOf(path.resolve(path.dirname(file), spec)) } : { pkg: packageOf(spec) },
  }));
}

const FILES = filesUnder(SRC);
const IMPORTS = FILES.flatMap(importsOf);

describe('folder directions in src/', () => {
  it('reads the imports it is meant to judge (type-only, export-from and dynamic ones too)', () => {
    const seen = (file: string, spec: string): boolean => IMPORTS.some((i) => i.file === file && i.spec === spec);
    expect(FILES.length).toBeGreaterThan(50);
    expect(seen(path.join('cli', 'main.ts'), 'yargs')).toBe(true);
    expect(IMPORTS.some((i) => i.file === 'index.ts' && i.spec === './run/runner.js')).toBe(true); // export … from
    expect(IMPORTS.some((i) => i.file.startsWith('compile') && 'part' in i.target && i.target.part === 'model')).toBe(
      true,
    );
    expect(IMPORTS.some((i) => i.file.startsWith('cli') && 'part' in i.target && i.target.part === 'dev')).toBe(true); // the demo
    expect(seen(path.join('cli', 'main.ts'), './commands/bloat.js')).toBe(true); // await import(…)
  });

  it('gives every part of src a place', () => {
    const unknown = [...new Set(FILES.map(partOf))].filter((p) => !(p in MAY_IMPORT));
    expect(unknown, 'add the new folder to MAY_IMPORT and MAY_USE here and to docs/development.md').toEqual([]);
  });

  it('imports only along the directions', () => {
    const wrong = IMPORTS.flatMap((i) => {
      if (!('part' in i.target)) return [];
      const from = partOf(path.join(SRC, i.file)) as Part;
      const to = i.target.part;
      if (to === from) return [];
      const rule = MAY_IMPORT[from];
      return rule && !(rule.from as readonly string[]).includes(to)
        ? [
            `src/${i.file} imports ${i.spec} (${to}): ${from} may import only ${rule.from.join(', ') || 'nothing of src'}; ${rule.why}`,
          ]
        : [];
    });
    expect(wrong).toEqual([]);
  });

  it('uses only the packages its part may use (yargs in cli alone; no pg, fs or processes in compile)', () => {
    const wrong = IMPORTS.flatMap((i) => {
      if (!('pkg' in i.target)) return [];
      const from = partOf(path.join(SRC, i.file)) as Part;
      const allowed = MAY_USE[from] ?? [];
      return allowed.includes(i.target.pkg)
        ? []
        : [`src/${i.file} imports ${i.spec}: ${from} may use only ${allowed.join(', ') || 'no package'}`];
    });
    expect(wrong).toEqual([]);
  });

  it('keeps the pure parts free of the clock, randomness and process', () => {
    const wrong = FILES.filter((f) => PURE.includes(partOf(f) as Part))
      .flatMap((f) =>
        readFileSync(f, 'utf8')
          .split('\n')
          .map((line, n) => ({ f, line, n })),
      )
      .filter(({ line }) => IMPURE.test(line.replace(/\/\/.*$/, '')))
      .map(({ f, line, n }) => `src/${path.relative(SRC, f)}:${n + 1}: ${line.trim()}`);
    expect(wrong).toEqual([]);
  });
});
