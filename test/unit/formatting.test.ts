/**
 * Every TypeScript file is formatted as prettier formats it (.prettierrc.json), so a diff shows what changed
 * and never how someone's editor wraps lines. Fix a failure with `npm run format`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as prettier from 'prettier';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FOLDERS = ['src', 'test', 'bench'];

function tsFiles(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

describe('formatting', () => {
  it('every .ts file in src, test and bench is as prettier writes it', async () => {
    const files = FOLDERS.flatMap((f) => tsFiles(path.join(ROOT, f)));
    expect(files.length).toBeGreaterThan(100);
    const options = await prettier.resolveConfig(path.join(ROOT, 'src/index.ts'));
    expect(options, '.prettierrc.json not found').not.toBeNull();
    const unformatted: string[] = [];
    for (const file of files) {
      const ok = await prettier.check(readFileSync(file, 'utf8'), { ...options, filepath: file });
      if (!ok) unformatted.push(path.relative(ROOT, file));
    }
    expect(unformatted, `not formatted; run \`npm run format\``).toEqual([]);
  });

  it('notices a file that is not formatted', async () => {
    const options = await prettier.resolveConfig(path.join(ROOT, 'src/index.ts'));
    expect(await prettier.check('const a = {b:1}\n', { ...options, filepath: 'x.ts' })).toBe(false);
    expect(await prettier.check('const a = { b: 1 };\n', { ...options, filepath: 'x.ts' })).toBe(true);
  });
});
