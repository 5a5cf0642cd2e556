import { describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { checkOutDir } from '../../src/planning/out-dir.js';
import { UserError } from '../../src/model/errors.js';

const said = (dir: string, force = false): string => {
  try {
    checkOutDir(dir, force);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).code).toBe('BAD_ARGUMENT');
    return (e as UserError).message;
  }
  return 'ok';
};

describe('--out is checked before anything connects or is written', () => {
  const root = mkdtempSync(join(tmpdir(), 'sp-out-'));
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');

  it('takes a new folder (also several levels deep), an empty one, or a plan folder with --force', () => {
    expect(said(join(root, 'new', 'deeper'))).toBe('ok');
    const empty = join(root, 'empty');
    mkdirSync(empty);
    expect(said(empty)).toBe('ok');
    const plan = join(root, 'plan');
    mkdirSync(plan);
    writeFileSync(join(plan, 'plan.json'), '{}');
    writeFileSync(join(plan, 'approved-by.txt'), 'bob');
    expect(said(plan)).toMatch(/already holds a plan; choose another --out or pass --force/);
    expect(said(plan, true)).toBe('ok');
  });

  it('refuses an empty path, a file, a path under a file, /proc and a folder of other files, in one line', () => {
    expect(said('')).toBe('--out "": empty; give the folder to write the plan into (it is created if missing)');
    expect(said(file)).toMatch(/a-file": is a file, not a folder/);
    expect(said(join(file, 'sub'))).toMatch(/a-file is a file, so no folder can be made under it$/);
    expect(said('/proc/x')).toMatch(/\/proc is a kernel file system; give a folder on a disk/);
    expect(said('/sys/fs/shadowpack')).toMatch(/\/sys\/fs is a kernel file system/);
    const notes = join(root, 'notes');
    mkdirSync(notes);
    writeFileSync(join(notes, 'notes.txt'), 'mine');
    expect(said(notes, true)).toMatch(/holds other files \(notes\.txt\) and no plan; give an empty or a new folder/);
  });

  it.skipIf(process.getuid?.() === 0)('refuses a folder this user cannot write to (root writes anywhere)', () => {
    const locked = join(root, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o500);
    expect(said(join(locked, 'plan'))).toMatch(/locked is not writable by this user/);
  });
});
