import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OPTIONS } from '../../src/compile/options.js';

// The option defaults are written once in src/compile/options.ts; `--help` derives
// from it, and this keeps the one prose copy (docs/usage.md) from drifting.
const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

describe('docs/usage.md plan options', () => {
  const text = readFileSync(new URL('../../docs/usage.md', import.meta.url), 'utf8');
  const stated = [...text.matchAll(/`--([a-z-]+)` \((\d+)/g)].map((m) => [m[1]!, Number(m[2])] as const);

  it('states some defaults', () => {
    expect(stated.length).toBeGreaterThan(8);
  });

  it.each(stated)('--%s defaults to %d as options.ts says', (flag, value) => {
    const key = camel(flag) as keyof typeof DEFAULT_OPTIONS;
    expect(key in DEFAULT_OPTIONS, `${flag} is not a plan option`).toBe(true);
    expect(DEFAULT_OPTIONS[key]).toBe(value);
  });
});
