/**
 * "Did you mean" for a mistyped command or flag (newcomer review finding 33): the closest known
 * name, when it is close enough to be a typo rather than another word.
 */

/** Edit distance with adjacent transpositions counted as one edit (tabel → table is 1). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name closest to `typed` (case-insensitive), or null when none is within a third of
 * its length (at least 1, at most 3 edits); ties go to the first in `known`.
 */
export function closest(typed: string, known: readonly string[]): string | null {
  const t = typed.toLowerCase();
  const limit = Math.min(3, Math.max(1, Math.floor(t.length / 3)));
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    const dist = editDistance(t, k.toLowerCase());
    if (dist < bestDistance) {
      best = k;
      bestDistance = dist;
    }
  }
  return best !== null && bestDistance <= limit ? best : null;
}

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
  const kept = names.filter((n) => !(/[A-Z]/.test(n) && names.includes(n.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()))));
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
