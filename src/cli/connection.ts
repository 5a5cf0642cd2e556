import { resolveConnection, type ConnectionConfig } from '../run/connection-config.js';

/**
 * libpq conventions (docs/connections.md): --url, else DATABASE_URL (each a URL or a keyword/value
 * string), else the PG* variables and ~/.pgpass.
 */
export function connectionConfig(url: string | undefined): ConnectionConfig {
  return resolveConnection(url ?? process.env['DATABASE_URL']);
}

/** For messages: the URL without its password. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    // A keyword/value string, or a URL WHATWG cannot read.
    return url.replace(/\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/gi, 'password=***').replace(/:[^:@/]*@/, ':***@');
  }
}

/** Connection strings may carry passwords; never print them. */
export function redactSecrets(message: string): string {
  return message
    .replace(/postgres(?:ql)?:\/\/[^\s]+/g, (u) => redact(u))
    .replace(/\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/gi, 'password=***');
}
