/**
 * PostgreSQL refuses to run as root (initdb, pg_ctl and postgres alike). When we are root, the embedded servers
 * run as the OS user `postgres` (override with SHADOWPACK_PG_OS_USER), created with groupadd/useradd if missing,
 * and the directories they write are handed to it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface ServerUser {
  readonly uid: number;
  readonly gid: number;
  readonly name: string;
}

async function lookup(name: string): Promise<ServerUser | undefined> {
  try {
    const uid = Number.parseInt((await exec('id', ['-u', name])).stdout, 10);
    const gid = Number.parseInt((await exec('id', ['-g', name])).stdout, 10);
    return Number.isNaN(uid) || Number.isNaN(gid) ? undefined : { uid, gid, name };
  } catch {
    return undefined;
  }
}

async function findOrCreate(): Promise<ServerUser | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const name = process.env.SHADOWPACK_PG_OS_USER || 'postgres';
  let user = await lookup(name);
  if (!user) {
    await exec('groupadd', ['--system', name]).catch(() => undefined); // may exist already
    await exec('useradd', ['--system', '--no-create-home', '-g', name, '-s', '/bin/false', name]).catch(
      (err: Error) => {
        throw new Error(`Running as root, and could not create the OS user "${name}" for PostgreSQL: ${err.message}`);
      },
    );
    user = await lookup(name);
    if (!user) throw new Error(`Created OS user "${name}" but cannot look it up.`);
  }
  if (user.uid === 0) throw new Error(`OS user "${name}" has uid 0; PostgreSQL cannot run as root.`);
  return user;
}

let found: Promise<ServerUser | undefined> | undefined;

/** The OS user to run initdb, pg_ctl and postgres as: undefined when we are not root. */
export function serverUser(): Promise<ServerUser | undefined> {
  found ??= findOrCreate();
  found.catch(() => {
    found = undefined;
  });
  return found;
}

/** Hands `file` to the server user (a no-op when we are not root). */
export async function giveTo(file: string, user: ServerUser | undefined): Promise<void> {
  if (user) await fs.chown(file, user.uid, user.gid);
}

/** spawn/execFile options that run the child as the server user. */
export function runAs(user: ServerUser | undefined): { uid?: number; gid?: number } {
  return user ? { uid: user.uid, gid: user.gid } : {};
}
