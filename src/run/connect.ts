import pg from 'pg';
import type { ClientConfig } from 'pg';
import { UserError } from '../model/errors.js';

/**
 * A connected client, or one clear line saying how to fix the connection.
 * Server-side disconnects later surface on the query that hits them, not as
 * an unhandled 'error' event.
 */
export async function connectClient(config: ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (e) {
    throw new UserError('CONNECTION_FAILED', `cannot connect to PostgreSQL: ${(e as Error).message}; give --url or set DATABASE_URL / PG* variables`, {}, { cause: e });
  }
  return client;
}
