/**
 * What a move carries to the target beyond rows (issue 15): plan refuses a sequence shared with a table outside
 * the group unless --split-shared-sequences, which the review then names. Source PostgreSQL 14 -> the suite's 17.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { withClient } from '../helpers/db.js';
import {
  freshMovePair,
  MOVE_SOURCE_MISSING,
  startMoveServers,
  type MovePair,
  type MoveServers,
} from '../helpers/move-servers.js';

let servers: MoveServers;
let pair: MovePair;
let root: string;

beforeAll(async () => {
  servers = await startMoveServers();
  pair = await freshMovePair(servers, 'move_fidelity');
  await withClient(pair.source.url, (c) =>
    c.query(`
      CREATE SCHEMA app;
      CREATE SEQUENCE app.ids;
      CREATE TABLE app.moved (id bigint PRIMARY KEY DEFAULT nextval('app.ids'), v text);
      CREATE TABLE app.stays (id bigint PRIMARY KEY DEFAULT nextval('app.ids'), v text);
      INSERT INTO app.moved (v) SELECT 'm' || g FROM generate_series(1, 5) g;
      INSERT INTO app.stays (v) SELECT 's' || g FROM generate_series(1, 5) g;`),
  );
  await withClient(pair.target.url, (c) => c.query('CREATE SCHEMA app'));
  root = mkdtempSync(join(tmpdir(), 'sp-move-fidelity-'));
}, 120_000);

afterAll(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
  await pair?.drop();
  await servers?.stop();
});

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await main(args, { out: (line) => (out += line + '\n'), err: (text) => (out += text) });
  return { code, out };
}

const planArgs = (table: string, out: string, ...more: string[]): string[] => [
  'plan',
  '--url',
  pair.source.url,
  '--target-url',
  pair.target.url,
  '--table',
  table,
  '--out',
  out,
  ...more,
];

describe.skipIf(MOVE_SOURCE_MISSING !== undefined)('move fidelity, source 14 -> target 17', () => {
  it('refuses a sequence shared with a table outside the group in one line, unless --split-shared-sequences', async () => {
    const refused = await cli(planArgs('app.moved', join(root, 'shared-refused')));
    expect(refused.code).toBe(2);
    expect(refused.out.trim().split('\n')).toHaveLength(1);
    expect(refused.out).toMatch(
      /sequence app\.ids also feeds app\.stays \(a column default\), outside the group: .*add --table app\.stays to move it too, or --split-shared-sequences/,
    );
    const dir = join(root, 'shared-split');
    const split = await cli(planArgs('app.moved', dir, '--split-shared-sequences'));
    expect(split.code, split.out).toBe(0);
    const manifest = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as {
      options: { splitSharedSequences?: boolean };
      stages: { file: string; hazards: string[] }[];
    };
    expect(manifest.options.splitSharedSequences).toBe(true);
    expect(manifest.stages.find((s) => s.file === '07-cutover.target.sql')!.hazards).toContain('SEQUENCE_SHARED');
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(readme).toMatch(/SEQUENCE_SHARED: --split-shared-sequences: .*a value can appear in both clusters/);
    expect(readme).toContain('`app.ids` (default; app.moved.id); also used outside the group by app.stays');
    // Both tables in the group: nothing is shared outside it, nothing to accept.
    const both = await cli([...planArgs('app.moved', join(root, 'shared-both')), '--table', 'app.stays']);
    expect(both.code, both.out).toBe(0);
  });
});
