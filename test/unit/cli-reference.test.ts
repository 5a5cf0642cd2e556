/**
 * docs/cli.md is generated from the commands' own --help, so the reference cannot drift from the CLI.
 * Rewrite it after changing a command or a flag: `npm run docs:cli` (like goldens:update).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';

const COMMANDS = ['bloat', 'plan', 'run', 'status', 'control', 'verify', 'show', 'diff', 'demo'] as const;
const FILE = new URL('../../docs/cli.md', import.meta.url);

/** What `shadowpack <args>` prints (yargs writes help through console.log, at 80 columns off a terminal). */
async function helpOf(args: string[]): Promise<string> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  try {
    const code = await main(args, { out: (l) => lines.push(l), err: (t) => lines.push(t) });
    expect(code, `shadowpack ${args.join(' ')}`).toBe(0);
  } finally {
    spy.mockRestore();
  }
  return lines.join('\n').trimEnd();
}

async function reference(): Promise<string> {
  const parts = [
    '# CLI reference',
    '',
    'Generated from `shadowpack <command> --help` by `npm run docs:cli`; `test/unit/cli-reference.test.ts` fails when it is',
    'out of date. How to use the commands together: [usage.md](usage.md); exit codes and JSON: [scripting.md](scripting.md).',
    '',
    '```text',
    await helpOf(['--help']),
    '```',
  ];
  for (const command of COMMANDS) {
    parts.push('', `## shadowpack ${command}`, '', '```text', await helpOf([command, '--help']), '```');
  }
  return parts.join('\n') + '\n';
}

describe('docs/cli.md', () => {
  afterEach(() => vi.restoreAllMocks());

  it('is what the commands print for --help', async () => {
    const text = await reference();
    if (process.env['UPDATE_DOCS'] === '1') writeFileSync(FILE, text);
    expect(readFileSync(FILE, 'utf8'), 'docs/cli.md is out of date: run `npm run docs:cli`').toBe(text);
  });
});
