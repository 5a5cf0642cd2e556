import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { ROOT, type Exit } from './rebuild.js';
import { waitFor } from './standby.js';

export interface LiveStage {
  readonly exit: Promise<Exit>;
  /** Resolves true once the output so far matches, false if the stage ended first. */
  seen(pattern: RegExp, timeoutMs?: number): Promise<boolean>;
}

/** A stage as a separate process whose output (psql's NOTICEs, the runner's progress) is read as it comes. */
export function liveStage(plan: LoadedPlan, url: string, stage: 'swap' | 'revert', via: 'runner' | 'psql'): LiveStage {
  const file = join(plan.dir, plan.manifest.stages.find((s) => s.name === stage)!.file);
  const p =
    via === 'psql'
      ? spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', file], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(
          process.execPath,
          ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'run', '--plan', plan.dir, '--url', url, '--stage', stage],
          { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
        );
  let stdout = '';
  let stderr = '';
  let ended = false;
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<Exit>((res) =>
    p.on('close', (code, signal) => {
      ended = true;
      res({ code, signal, stdout, stderr });
    }),
  );
  return {
    exit,
    seen: (pattern, timeoutMs = 30_000) =>
      waitFor(
        `${stage} output ${pattern}`,
        async () => (pattern.test(stdout + stderr) ? true : ended ? false : undefined),
        timeoutMs,
      ),
  };
}
