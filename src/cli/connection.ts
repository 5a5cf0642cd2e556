import type { ClientConfig } from 'pg';

/**
 * libpq conventions: --url, else DATABASE_URL, else PGHOST/PGPORT/PGUSER/
 * PGDATABASE/PGPASSWORD and ~/.pgpass, which node-postgres reads itself.
 */
export function connectionConfig(url: string | undefined): ClientConfig {
  const u = url ?? process.env['DATABASE_URL'];
  return u ? { connectionString: u } : {};
}

/** For messages: the URL without its password. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

/** Connection strings may carry passwords; never print them. */
export function redactSecrets(message: string): string {
  return message
    .replace(/postgres(?:ql)?:\/\/[^\s]+/g, (u) => redact(u))
    .replace(/\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/gi, 'password=***');
}
