import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseConninfo } from '../../src/run/conninfo.js';
import {
  DEFAULT_CONNECT_TIMEOUT_SECONDS,
  passwordFromFile,
  resolveConnection,
} from '../../src/run/connection-config.js';
import { UserError } from '../../src/model/errors.js';

const thrown = (fn: () => unknown): UserError => {
  try {
    fn();
  } catch (e) {
    return e as UserError;
  }
  throw new Error('did not throw');
};

describe('connection strings, the libpq way', () => {
  it('reads keyword/value strings: spaces around =, quotes, escapes', () => {
    expect(
      parseConninfo(`host=db1 port = 5433 dbname='my db' user=dba password='it\\'s \\\\ ok' sslmode=require`),
    ).toEqual({
      host: 'db1',
      port: '5433',
      dbname: 'my db',
      user: 'dba',
      password: "it's \\ ok",
      sslmode: 'require',
    });
    expect(parseConninfo('')).toEqual({});
  });

  it('reads URLs: percent-encoding, a socket folder as host, IPv6, keywords as parameters', () => {
    expect(parseConninfo('postgresql://dba:p%40ss@db1:6543/shop?sslmode=verify-full&connect_timeout=5')).toEqual({
      user: 'dba',
      password: 'p@ss',
      host: 'db1',
      port: '6543',
      dbname: 'shop',
      sslmode: 'verify-full',
      connect_timeout: '5',
    });
    expect(parseConninfo('postgres://%2Fvar%2Frun%2Fpostgresql/shop')).toEqual({
      host: '/var/run/postgresql',
      dbname: 'shop',
    });
    expect(parseConninfo('postgresql://[::1]:5432/x')).toEqual({ host: '::1', port: '5432', dbname: 'x' });
  });

  it('refuses what it would otherwise ignore or misread, by name', () => {
    expect(thrown(() => parseConninfo('host=a service=prod')).message).toMatch(
      /connection option "service" is not supported/,
    );
    expect(thrown(() => parseConninfo('host=a secret')).message).toMatch(
      /^the connection string has a word without "=value" at character 8;/,
    );
    expect(thrown(() => parseConninfo("password='open")).message).toMatch(/unterminated quoted value for "password"/);
    expect(thrown(() => parseConninfo('postgresql://a,b/x')).message).toMatch(/several hosts/);
    expect(thrown(() => resolveConnection('host=a sslmode=on', {})).message).toMatch(
      /sslmode on: give one of disable, allow, prefer, require, verify-ca, verify-full/,
    );
  });

  it('takes each setting from the string, else PG* variables, else libpq defaults; a connect timeout by default', () => {
    const c = resolveConnection('host=db1 dbname=shop', {
      PGPORT: '6000',
      PGUSER: 'dba',
      PGDATABASE: 'other',
      PGCONNECT_TIMEOUT: '3',
    });
    expect(c).toMatchObject({ host: 'db1', port: 6000, user: 'dba', database: 'shop', connectionTimeoutMillis: 3000 });
    expect(resolveConnection('host=db1 user=u', {}).connectionTimeoutMillis).toBe(
      DEFAULT_CONNECT_TIMEOUT_SECONDS * 1000,
    );
    expect(resolveConnection('host=db1 user=u connect_timeout=0', {}).connectionTimeoutMillis).toBeUndefined();
    expect(resolveConnection('host=db1 user=u', {}).database).toBe('u');
    expect(resolveConnection('host=db1 user=u', { PGPASSWORD: 'pw' }).password).toBe('pw');
  });

  it('gives sslmode its libpq meaning (node-postgres would read require as verify-full)', () => {
    const ssl = (mode: string) => resolveConnection(`host=db1 user=u sslmode=${mode}`, {}).ssl;
    expect(ssl('disable')).toBe(false);
    expect(ssl('allow')).toBe(false);
    expect(ssl('prefer')).toMatchObject({ rejectUnauthorized: false });
    expect(resolveConnection('host=db1 user=u', {}).sslFallback).toBe(true);
    expect(ssl('require')).toMatchObject({ rejectUnauthorized: false });
    expect(ssl('verify-ca')).toMatchObject({ rejectUnauthorized: true });
    expect(typeof (ssl('verify-ca') as { checkServerIdentity?: unknown }).checkServerIdentity).toBe('function');
    expect(ssl('verify-full')).toEqual({ rejectUnauthorized: true });
    // Unix sockets never use TLS.
    expect(resolveConnection('host=/var/run/postgresql user=u sslmode=require', {}).ssl).toBe(false);
  });

  it('reads the password file as libpq does, and says where a password is needed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-pgpass-'));
    const file = join(dir, 'pgpass');
    writeFileSync(file, '# comment\nother:5432:*:dba:nope\ndb1:5432:*:dba:pa\\:ss\n*:*:*:*:fallback\n', {
      mode: 0o600,
    });
    const t = { host: 'db1', port: 5432, database: 'shop', user: 'dba' };
    expect(passwordFromFile(file, t)).toBe('pa:ss');
    expect(passwordFromFile(file, { ...t, host: 'db2' })).toBe('fallback');
    chmodSync(file, 0o644);
    expect(thrown(() => passwordFromFile(file, t)).message).toMatch(
      /readable by group or others, so it is ignored.*chmod 0600/,
    );
    expect(thrown(() => passwordFromFile(join(dir, 'none'), t)).message).toBe(
      `the server asks for a password for user dba: set PGPASSWORD, put a line db1:5432:shop:dba:PASSWORD in ${join(dir, 'none')} (mode 0600), or add password=… to the connection string`,
    );
  });
});
