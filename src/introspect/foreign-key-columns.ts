import type { ClientBase } from 'pg';
import { qualified } from '../model/quote.js';

/** One column of a foreign key, with its type as format_type prints it. */
export interface ForeignKeyColumn {
  readonly name: string;
  readonly type: string;
}

/** One query: the columns of one foreign key, in key order. */
const FOREIGN_KEY_COLUMNS_SQL = `
SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_catalog.pg_constraint con
  CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
 WHERE con.conrelid = $1::regclass AND con.conname = $2 AND con.contype = 'f'
 ORDER BY k.ord`;

/**
 * The columns of a foreign key on `schema.table`: what --with-referencing
 * converts on a table that references the one being widened.
 */
export async function foreignKeyColumns(
  client: ClientBase,
  schema: string,
  table: string,
  constraint: string,
): Promise<ForeignKeyColumn[]> {
  const r = await client.query<ForeignKeyColumn>(FOREIGN_KEY_COLUMNS_SQL, [qualified(schema, table), constraint]);
  return r.rows.map((x) => ({ name: x.name, type: x.type }));
}
