import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import type { LockReport } from '../../src/run/events.js';
import { ROOT, type Exit } from './rebuild.js';

export interface Live {
  readonly events: Record<string, unknown>[];
  readonly done: Promise<Exit>;
  exited: boolean;
}

/** `shadowpack run --events`, with its events readable while it runs. */
export function runLive(plan: LoadedPlan, url: string, ...extra: string[]): Live {
  const p = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'run', '--plan', plan.dir, '--url', url, '--events', ...extra],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const events: Record<string, unknown>[] = [];
  let stdout = '';
  let stderr = '';
  let partial = '';
  p.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (l.startsWith('{')) events.push(JSON.parse(l) as Record<string, unknown>);
  });
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const live: Live = {
    events,
    exited: false,
    done: new Promise((res) =>
      p.on('close', (code, signal) => {
        live.exited = true;
        res({ code, signal, stdout, stderr });
      }),
    ),
  };
  return live;
}

/** Polls `probe` every 10 ms until it gives a value, the run exits, or `ms` pass. */
export async function until<T>(probe: () => Promise<T | null>, ms: number, live?: Live): Promise<T | null> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline && !live?.exited) {
    const v = await probe();
    if (v !== null) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  return null;
}

/** The lock reports among a run's events, in order. */
export function lockReports(live: Live): LockReport[] {
  return live.events.filter((e) => e['type'] === 'lock-report').map((e) => e['report'] as LockReport);
}
