import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { compile } from '../../src/compile/compile.js';
import { resolveOptions, type PlanOptions } from '../../src/compile/options.js';
import { introspect } from '../../src/introspect/introspect.js';
import { writePlanDir, readPlanDir } from '../../src/planning/plan-dir.js';
import { loadTemplates } from '../../src/planning/templates.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { signatureSql } from '../../src/model/signature.js';
import { literal, qualified } from '../../src/model/quote.js';
import { withClient } from './db.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');

/** Plans a table into a fresh temporary folder, as `shadowpack plan` would. */
export async function planTable(
  url: string,
  schema: string,
  table: string,
  options: Partial<PlanOptions> = {},
): Promise<LoadedPlan> {
  const dir = mkdtempSync(join(tmpdir(), 'sp-plan-'));
  await withClient(url, async (c) => {
    const t = await introspect(c, schema, table);
    const plan = compile({
      model: t.model,
      facts: t.facts,
      options: resolveOptions(options),
      templates: loadTemplates(),
      toolVersion: '0.1.0',
    });
    writePlanDir(dir, plan, false);
  });
  return readPlanDir(dir);
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The CLI from source, as a separate process (so it can be killed). */
export function cli(
  args: string[],
  opts: { killAfterMs?: number; killWhen?: { stderr: RegExp; delayMs: number } } = {},
): Promise<Exit> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    let armed = false;
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (opts.killWhen && !armed && opts.killWhen.stderr.test(stderr)) {
        armed = true;
        setTimeout(() => p.kill('SIGKILL'), opts.killWhen.delayMs);
      }
    });
    const timer = opts.killAfterMs === undefined ? null : setTimeout(() => p.kill('SIGKILL'), opts.killAfterMs);
    p.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      res({ code, signal, stdout, stderr });
    });
  });
}

/** `psql -X -v ON_ERROR_STOP=1 -f file`, the supported way to run a stage by hand. */
export function psql(url: string, file: string): Promise<Exit> {
  return new Promise((res) => {
    const p = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
}

/** The catalog signature shadowpack itself checks, plus the names users see. */
export async function catalogSnapshot(
  c: pg.ClientBase,
  schema: string,
  table: string,
): Promise<{ signature: string; indexes: string[]; constraints: string[] }> {
  await c.query('SET search_path = pg_catalog');
  const sig = (await c.query<{ s: string }>(`SELECT ${signatureSql(schema, table, 'shadowpack')} AS s`)).rows[0]!.s;
  const rel = `${literal(qualified(schema, table))}::regclass`;
  const indexes = (
    await c.query<{ n: string }>(
      `SELECT indexrelid::regclass::text AS n FROM pg_index WHERE indrelid = ${rel} ORDER BY 1`,
    )
  ).rows.map((r) => r.n);
  const constraints = (
    await c.query<{ n: string }>(
      `SELECT conname || ':' || convalidated AS n FROM pg_constraint WHERE conrelid = ${rel} ORDER BY 1`,
    )
  ).rows.map((r) => r.n);
  await c.query('RESET search_path');
  return { signature: sig, indexes, constraints };
}

/**
 * Objects a run leaves behind: anything named like ours, or the tool schema holding anything but
 * shadowpack.history. The history is kept on purpose (one row per run, outliving cleanup and abort:
 * which plan ran, how it ended, when, by whom), and the schema with it; a run leaves nothing else.
 */
export async function leftovers(c: pg.ClientBase): Promise<string[]> {
  const r = await c.query<{ o: string }>(`
    SELECT 'schema ' || n.nspname AS o FROM pg_namespace n WHERE n.nspname = 'shadowpack'
       AND (EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname <> 'history')
            OR EXISTS (SELECT FROM pg_proc p WHERE p.pronamespace = n.oid)
            OR EXISTS (SELECT FROM pg_type t WHERE t.typnamespace = n.oid AND t.typname NOT IN ('history', '_history')))
    UNION ALL SELECT 'relation ' || oid::regclass::text FROM pg_class WHERE relname LIKE '\\_sp\\_%'
    UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE '\\_sp\\_%'
    UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proname ~ '^(capture|rcapture|truncate|apply|rapply|backfill|catchup|rcatchup|guard|wait)_[0-9a-f]{12}$'`);
  return r.rows.map((x) => x.o);
}
