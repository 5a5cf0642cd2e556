import { accessSync, constants, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../model/errors.js';

/** Kernel file systems: nothing there holds files, and Node's recursive mkdir spins forever on /proc. */
const PSEUDO = ['/proc', '/sys', '/dev'];

/** The files a plan folder may hold besides those plan writes (an approver's notes are not among them). */
function isPlanFile(name: string): boolean {
  return (
    name === 'plan.json' ||
    name === 'README.md' ||
    name === 'SHA256SUMS' ||
    name === 'binding.sql' ||
    /^\d\d[a-z]?-[a-z]+\.sql$/.test(name)
  );
}

/**
 * Checks --out before anything connects or is written, one line each: empty, a file, under a
 * file, in a kernel file system, not writable, or a folder holding files that are not a plan's.
 */
export function checkOutDir(dir: string, force: boolean): void {
  const bad = (why: string) => new UserError('BAD_ARGUMENT', `--out ${JSON.stringify(dir)}: ${why}`);
  if (dir.trim() === '') throw bad('empty; give the folder to write the plan into (it is created if missing)');
  const full = resolve(dir);
  // The deepest part of the path that exists: the folder itself, or where it would be created.
  let existing = full;
  while (!existsSync(existing)) existing = dirname(existing);
  let real: string;
  try {
    real = realpathSync(existing);
  } catch (e) {
    throw bad(`cannot read ${existing} (${(e as Error).message})`);
  }
  if (PSEUDO.some((p) => real === p || real.startsWith(p + '/')))
    throw bad(`${real} is a kernel file system; give a folder on a disk`);
  if (!statSync(existing).isDirectory()) {
    throw bad(
      existing === full
        ? 'is a file, not a folder; give a folder (it is created if missing)'
        : `${existing} is a file, so no folder can be made under it`,
    );
  }
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch {
    throw bad(`${existing} is not writable by this user; give a folder you can write to`);
  }
  if (existing === full) {
    const others = readdirSync(full).filter((f) => !isPlanFile(f));
    const hasPlan = existsSync(join(full, 'plan.json'));
    if (!hasPlan && others.length > 0) {
      throw bad(
        `holds other files (${others.slice(0, 3).join(', ')}${others.length > 3 ? ', …' : ''}) and no plan; give an empty or a new folder, so the plan is not mixed with them`,
      );
    }
    if (hasPlan && !force) throw bad('already holds a plan; choose another --out or pass --force to replace it');
  }
}
