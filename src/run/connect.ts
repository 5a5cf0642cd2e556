import pg from 'pg';
import type { ClientConfig } from 'pg';
import { UserError } from '../model/errors.js';

/**
 * A connected client, or one clear line saying how to fix the connection.
 * Server-side disconnects later surface on the query that hits them, not as
 * an unhandled 'error' event.
 */
export async function connectClient(config: ClientConfig): Promise<pg.Client> {
  let client: pg.Client;
  try {
    client = new pg.Client(config);
  } catch (e) {
    // Said without the URL: it may carry a password.
    throw new UserError('CONNECTION_FAILED', `the connection URL does not parse (${(e as Error).message}); write it as postgresql://user@host:port/database (percent-encode special characters; a password may go after user: or in PGPASSWORD)`, {}, { cause: e });
  }
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    throw new UserError('CONNECTION_FAILED', `cannot connect to PostgreSQL: ${(e as Error).message}; give --url or set DATABASE_URL / PG* variables`, {}, { cause: e });
  }
  return client;
}
