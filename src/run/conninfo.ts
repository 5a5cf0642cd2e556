import { UserError } from '../model/errors.js';

/**
 * The libpq keywords shadowpack understands (docs/connections.md). Anything else libpq knows
 * (service, target_session_attrs, several hosts …) is refused by name rather than ignored
 * (CONNECTION_FAILED, like every other problem with the connection string).
 */
export const CONNINFO_KEYWORDS = [
  'host',
  'hostaddr',
  'port',
  'dbname',
  'user',
  'password',
  'passfile',
  'connect_timeout',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'application_name',
  'options',
] as const;
export type ConninfoKeyword = (typeof CONNINFO_KEYWORDS)[number];
export type Conninfo = Partial<Record<ConninfoKeyword, string>>;

const KNOWN = new Set<string>(CONNINFO_KEYWORDS);

/** Parses a libpq connection string: a URL (postgresql://…) or keyword/value pairs (host=… dbname=…). */
export function parseConninfo(text: string): Conninfo {
  return /^postgres(ql)?:\/\//i.test(text.trim()) ? parseUrl(text.trim()) : parseKeywordValue(text);
}

function set(into: Record<string, string>, key: string, value: string): void {
  if (!KNOWN.has(key)) {
    throw new UserError(
      'CONNECTION_FAILED',
      `connection option "${key}" is not supported by shadowpack; use ${CONNINFO_KEYWORDS.join(', ')}`,
    );
  }
  into[key] = value;
}

/** `host=db1 port=5432 dbname='my db' password='it''s'`: libpq's rules (quotes, \\ escapes, spaces around =). */
function parseKeywordValue(text: string): Conninfo {
  const out: Record<string, string> = {};
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  for (;;) {
    skipSpace();
    if (i >= text.length) break;
    const keyStart = i;
    while (i < text.length && text[i] !== '=' && !/\s/.test(text[i]!)) i++;
    const key = text.slice(keyStart, i);
    skipSpace();
    if (text[i] !== '=') {
      // The word itself is not echoed: in a mistyped string it may be a piece of a password.
      throw new UserError(
        'CONNECTION_FAILED',
        `the connection string has a word without "=value" at character ${keyStart + 1}; write keyword=value pairs (host=… port=… dbname=… user=…, quoting a value with spaces as '…') or a URL postgresql://user@host:port/dbname`,
      );
    }
    i++;
    skipSpace();
    let value = '';
    if (text[i] === "'") {
      i++;
      for (;;) {
        if (i >= text.length)
          throw new UserError(
            'CONNECTION_FAILED',
            `the connection string has an unterminated quoted value for "${key}"`,
          );
        const c = text[i]!;
        if (c === '\\' && i + 1 < text.length) {
          value += text[i + 1];
          i += 2;
        } else if (c === "'") {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
    } else {
      while (i < text.length && !/\s/.test(text[i]!)) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
    }
    set(out, key, value);
  }
  return out;
}

/** postgresql://user:password@host:port/dbname?keyword=value… (percent-encoded; host may be a socket folder). */
function parseUrl(text: string): Conninfo {
  const m = /^postgres(?:ql)?:\/\/([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/i.exec(text);
  const bad = () =>
    new UserError(
      'CONNECTION_FAILED',
      'the connection URL does not parse; write it as postgresql://user@host:port/dbname (percent-encode special characters; a password may go after user: or in PGPASSWORD)',
    );
  if (!m) throw bad();
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw bad();
    }
  };
  const out: Record<string, string> = {};
  let hostPort = m[1]!;
  const at = hostPort.lastIndexOf('@');
  if (at >= 0) {
    const userInfo = hostPort.slice(0, at);
    hostPort = hostPort.slice(at + 1);
    const colon = userInfo.indexOf(':');
    const user = colon >= 0 ? userInfo.slice(0, colon) : userInfo;
    if (user) out['user'] = decode(user);
    if (colon >= 0) out['password'] = decode(userInfo.slice(colon + 1));
  }
  if (hostPort.includes(','))
    throw new UserError(
      'CONNECTION_FAILED',
      'several hosts in one connection string are not supported by shadowpack; give the primary',
    );
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(hostPort);
  if (!hp) throw bad();
  const host = decode(hp[1]!.replace(/^\[(.*)\]$/, '$1'));
  if (host) out['host'] = host;
  if (hp[2]) out['port'] = hp[2];
  if (m[2]) out['dbname'] = decode(m[2]);
  for (const pair of (m[3] ?? '').split('&').filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    if (eq < 0) throw bad();
    set(out, decode(pair.slice(0, eq)), decode(pair.slice(eq + 1).replace(/\+/g, ' ')));
  }
  return out;
}
