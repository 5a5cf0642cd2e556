import { createRequire } from 'node:module';

/**
 * The pg driver, loaded without the cost of its Cloudflare probe. When its module loads, pg asks
 * whether it runs in a Cloudflare Worker; where there is no global `navigator` (Node 20) it finds
 * out by constructing a fetch `Response`, and the first use of `Response` loads Node's whole fetch
 * implementation (undici): 30-40 ms of the start of every command that connects, measured on this
 * project's 2-core machine, for a class nothing here uses (issue 14). While pg loads, `Response` reads
 * as undefined, so pg takes its Node.js branch, the one it takes anyway, and the global is put back
 * exactly as it was. The only module that imports pg's values: everything else imports its types.
 */
function load(): typeof import('pg') {
  const require = createRequire(import.meta.url);
  const original = Object.getOwnPropertyDescriptor(globalThis, 'Response');
  const probed = typeof (globalThis as { navigator?: unknown }).navigator !== 'object';
  if (original === undefined || original.configurable !== true || !probed) return require('pg') as typeof import('pg');
  Object.defineProperty(globalThis, 'Response', { value: undefined, configurable: true, writable: true });
  try {
    return require('pg') as typeof import('pg');
  } finally {
    Object.defineProperty(globalThis, 'Response', original);
  }
}

export const pg = load();
