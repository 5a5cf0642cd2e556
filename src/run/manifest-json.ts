import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../model/errors.js';

/**
 * DIR/plan.json parsed, of a plan or a batch (`what` names it in the fix); the caller checks its shape.
 */
export function readManifestJson<T>(
  dir: string,
  what: 'plan' | 'batch',
): { readonly path: string; readonly manifest: T } {
  const path = join(dir, 'plan.json');
  if (!existsSync(path))
    throw new UserError(
      'PLAN_INVALID',
      `${dir} holds no plan.json; give the folder written by "shadowpack plan --out"`,
    );
  try {
    return { path, manifest: JSON.parse(readFileSync(path, 'utf8')) as T };
  } catch (e) {
    throw new UserError('PLAN_INVALID', `${path} is not valid JSON (${(e as Error).message}); make the ${what} again`);
  }
}
