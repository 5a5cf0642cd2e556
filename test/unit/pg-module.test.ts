/**
 * Loading the driver must not load Node's fetch implementation (pg's Cloudflare probe constructs a
 * Response on Node 20: 30-40 ms of every connecting command's start, issue 14), and must leave the
 * global Response as it was for anyone who uses it later.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

function probe(module: string): { undici: boolean; response: string; client: string } {
  const script = `
    const m = await import(${JSON.stringify(join(ROOT, module))});
    const undici = process.moduleLoadList.some((n) => n.includes('undici'));
    const response = typeof Response;
    const client = typeof (m.pg ?? m.default).Client;
    process.stdout.write(JSON.stringify({ undici, response, client }));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return JSON.parse(out) as { undici: boolean; response: string; client: string };
}

describe('the pg driver module', () => {
  it('loads pg without loading undici, and gives Response back', () => {
    expect(probe('src/run/pg-module.ts')).toEqual({ undici: false, response: 'function', client: 'function' });
  });

  it('is needed: pg imported directly loads undici where Node has no navigator (Node 20)', () => {
    const direct = probe('node_modules/pg/lib/index.js');
    expect(direct.client).toBe('function');
    expect(direct.undici).toBe(typeof (globalThis as { navigator?: unknown }).navigator !== 'object');
  });
});
