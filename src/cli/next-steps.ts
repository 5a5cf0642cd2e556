import type { PlanManifest } from '../compile/compile.js';
import type { RunState } from '../run/state.js';
import { redact } from './connection.js';

/** A word for a POSIX shell: as it is when it is plain, else single-quoted. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_/.:=@%+,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The tail every printed command carries: the plan folder and, when the run was given --url, the
 * same URL (without its password, which the command line would show to ps and the shell history).
 */
function commandTail(dir: string, url: string | undefined): { tail: string; note: string | null } {
  if (url === undefined) return { tail: `--plan ${shellWord(dir)}`, note: null };
  const shown = redact(url);
  return {
    tail: `--plan ${shellWord(dir)} --url ${shellWord(shown)}`,
    note:
      shown === url
        ? null
        : 'the password is left out of these commands: give it through PGPASSWORD or ~/.pgpass, or put it back into --url',
  };
}

/**
 * What to do next after `run` stopped, as exact command lines (finding 30 of the newcomer review).
 * After the swap this is the revert window: the plan's default stop, so an operator can check the
 * rebuilt table and still go back (issue 18).
 */
export function nextStepLines(m: PlanManifest, state: RunState | null, dir: string, url: string | undefined): string[] {
  if (state === null) return [];
  const t = `${m.table.schema}.${m.table.name}`;
  const { tail, note } = commandTail(dir, url);
  const hash = `--expect-hash ${m.planHash}`;
  const lines: string[] = [];
  switch (state.stage) {
    case 'swap': {
      lines.push(`${t}: swapped; the revert window is open until cleanup`);
      lines.push(
        '  While it stays open every write to the table still writes a change-log entry (write overhead), and the revert backlog grows;',
      );
      lines.push('  close it once you are satisfied:');
      lines.push(`  check:   shadowpack verify ${tail}`);
      lines.push(
        m.transform?.reverse === null
          ? '  go back: not possible for this plan (revert is unavailable: see "What changes" in its README.md)'
          : `  go back: shadowpack run ${tail} --stage revert ${hash}`,
      );
      lines.push(
        `  finish:  shadowpack run ${tail} --until cleanup ${hash}   (drops the old table: no revert after this)`,
      );
      break;
    }
    case 'cleanup-started':
      lines.push(`${t}: cleanup was interrupted; the old table is gone or going, revert is no longer possible`);
      lines.push(`  finish:  shadowpack run ${tail} --until cleanup ${hash}`);
      break;
    case 'reverted':
    case 'aborting':
      lines.push(`${t}: going back stopped halfway (stage "${state.stage}")`);
      lines.push(`  finish going back: shadowpack run ${tail} --stage abort`);
      break;
    default:
      lines.push(`${t}: run is at stage "${state.stage}" (before the swap; nothing the application sees has changed)`);
      // Before catch-up the copy is still incomplete: a comparison would only list what is not copied yet.
      if (state.stage === 'catchup' || state.stage === 'verified') lines.push(`  check:   shadowpack verify ${tail}`);
      lines.push(`  go on:   shadowpack run ${tail} ${hash}   (stops after the swap, with the revert window open)`);
      lines.push(`  go back: shadowpack run ${tail} --stage abort`);
  }
  if (note !== null) lines.push(`  (${note})`);
  return lines;
}

/** The command as typed, for the plan's header: `shadowpack` and its words, any --url without its password. */
export function commandLineOf(argv: readonly string[]): string {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === '--url' && i + 1 < argv.length) {
      words.push(w, shellWord(redact(argv[++i]!)));
    } else if (w.startsWith('--url=')) {
      words.push(`--url=${shellWord(redact(w.slice('--url='.length)))}`);
    } else {
      words.push(shellWord(w));
    }
  }
  return ['shadowpack', ...words].join(' ');
}
