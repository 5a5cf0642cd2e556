/**
 * "Did you mean" for a mistyped command or flag (newcomer review finding 33): the closest known
 * name, when it is close enough to be a typo rather than another word.
 */
import { closest } from '../model/edit-distance.js';

/** The commands, for a mistyped first word. */
export const COMMANDS = ['bloat', 'plan', 'run', 'status', 'control', 'verify', 'show', 'diff', 'demo'] as const;

/**
 * yargs' usage message made helpful: an unknown --bogus-flag is listed once, as typed (yargs
 * lists bogus-flag and bogusFlag), and each unknown name gets the closest command (when it is the
 * first word) or flag of the command, if one is close.
 */
export function usageMessage(msg: string, argv: readonly string[], knownFlags: readonly string[]): string {
  const m = /^(Unknown arguments?): (.*)$/.exec(msg);
  if (!m) return msg;
  const names = m[2]!.split(', ');
  const kept = names.filter(
    (n) => !(/[A-Z]/.test(n) && names.includes(n.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()))),
  );
  // A mistyped command: its flags are unknown too at the top level, so name only the command.
  const first = argv[0];
  if (first !== undefined && !first.startsWith('-') && kept.includes(first)) {
    const c = closest(first, COMMANDS);
    return `Unknown command: ${first}; ${c !== null ? `did you mean "shadowpack ${c}"?` : `the commands are ${COMMANDS.join(', ')}`}`;
  }
  const flags = knownFlags.filter((f) => !/[A-Z]/.test(f) && f.length > 1);
  const hints = kept.flatMap((n) => {
    const f = closest(n, flags);
    return f !== null ? [`did you mean --${f} for --${n}?`] : [];
  });
  return `${kept.length === 1 ? 'Unknown argument' : 'Unknown arguments'}: ${kept.join(', ')}${hints.length > 0 ? `; ${hints.join('; ')}` : ''}`;
}
