import { chownSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { parseTableName } from '../../src/introspect/introspect.js';
import { ROOT } from './rebuild.js';

/** A fixture of fixtures/carried: its SQL and the table it is about (its first line, `-- table: schema.table`). */
export interface CarriedFixture {
  readonly sql: string;
  readonly schema: string;
  readonly table: string;
}

export function loadCarriedFixture(name: string): CarriedFixture {
  const sql = readFileSync(join(ROOT, 'fixtures', 'carried', `${name}.sql`), 'utf8');
  const first = /^-- table: (.+)$/m.exec(sql);
  if (!first) throw new Error(`fixtures/carried/${name}.sql: the first line must be "-- table: schema.table"`);
  const { schema, table } = parseTableName(first[1]!.trim());
  return { sql, schema, table };
}

/**
 * Creates a tablespace in a fresh directory beside the server's data
 * directory, owned by the server's OS user (the embedded server runs as
 * another user when the tests run as root). Same host only.
 */
export async function createTablespace(c: pg.ClientBase, name: string): Promise<void> {
  const dataDir = (await c.query<{ d: string }>("SELECT current_setting('data_directory') AS d")).rows[0]!.d;
  const dir = join(dirname(dataDir), `sp-space-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir);
  const owner = statSync(dataDir);
  chownSync(dir, owner.uid, owner.gid);
  await c.query(`CREATE TABLESPACE "${name.replaceAll('"', '""')}" LOCATION '${dir.replaceAll("'", "''")}'`);
}
