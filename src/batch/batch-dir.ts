import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '../compile/plan-hash.js';
import { UserError } from '../model/errors.js';
import { readManifestJson, readPlanDir, SUMS_FILE, sumsText, writePlanDir } from '../planning/plan-dir.js';
import { checkPlanIntegrity, type LoadedPlan } from '../run/plan-check.js';
import { BATCH_FORMAT_VERSION, batchHashOf, type BatchManifest, type BatchTable } from './manifest.js';
import type { BatchPlan } from './plan-batch.js';

/** True when DIR/plan.json is a batch's (it has `"kind": "batch"`), false for a single plan or none. */
export function isBatchDir(dir: string): boolean {
  const path = join(dir, 'plan.json');
  if (!existsSync(path)) return false;
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { kind?: unknown }).kind === 'batch';
  } catch {
    return false;
  }
}

/**
 * Writes one plan folder per table, then the batch's plan.json, README.md and a SHA256SUMS over
 * every file of the batch (paths relative to DIR, so `sha256sum -c SHA256SUMS` checks them all).
 */
export function writeBatchDir(dir: string, batch: BatchPlan, force: boolean): void {
  if (existsSync(join(dir, 'plan.json')) && !force) {
    throw new UserError(
      'BAD_ARGUMENT',
      `${dir} already holds a plan; choose another --out or pass --force to replace it`,
    );
  }
  mkdirSync(dir, { recursive: true });
  const all = new Map<string, string>();
  for (const t of batch.manifest.tables) {
    const plan = batch.plans.get(t.dir)!;
    writePlanDir(join(dir, t.dir), plan, force);
    for (const [name, text] of plan.files) all.set(`${t.dir}/${name}`, text);
    all.set(`${t.dir}/plan.json`, readFileSync(join(dir, t.dir, 'plan.json'), 'utf8'));
  }
  const manifest = JSON.stringify(batch.manifest, null, 2) + '\n';
  writeFileSync(join(dir, 'README.md'), batch.readme);
  writeFileSync(join(dir, 'plan.json'), manifest);
  all.set('README.md', batch.readme);
  all.set('plan.json', manifest);
  writeFileSync(join(dir, SUMS_FILE), sumsText(all));
}

export interface LoadedBatch {
  readonly dir: string;
  readonly manifest: BatchManifest;
  readonly readme: string | null;
}

/** Reads DIR/plan.json of a batch; checks its own hash and README (the folders are checked when loaded). */
export function readBatchDir(dir: string): LoadedBatch {
  const { path, manifest } = readManifestJson<BatchManifest>(dir, 'batch');
  if (manifest.kind !== 'batch' || manifest.formatVersion !== BATCH_FORMAT_VERSION || !Array.isArray(manifest.tables)) {
    throw new UserError(
      'PLAN_INVALID',
      `${path} is not a shadowpack batch of format ${BATCH_FORMAT_VERSION}; make it again with this version`,
    );
  }
  const readmePath = join(dir, 'README.md');
  const readme = existsSync(readmePath) ? readFileSync(readmePath, 'utf8') : null;
  return { dir, manifest, readme };
}

/**
 * Refuses a batch whose plan.json or README.md was edited, or (with `expectHash`) that is not the
 * approved one. Nothing runs before this passes.
 */
export function checkBatchIntegrity(batch: LoadedBatch, expectHash?: string): void {
  const { batchHash, ...rest } = batch.manifest;
  const path = join(batch.dir, 'plan.json');
  if (batchHashOf(rest) !== batchHash)
    throw new UserError(
      'PLAN_TAMPERED',
      `${path} was edited after planning (its batch hash does not match its content); make the batch again`,
    );
  if (batch.readme === null || sha256(batch.readme) !== batch.manifest.readmeSha256) {
    throw new UserError(
      'PLAN_TAMPERED',
      `${join(batch.dir, 'README.md')} is missing or differs from the one planned; make the batch again`,
    );
  }
  if (expectHash !== undefined && expectHash !== batchHash) {
    throw new UserError(
      'PLAN_HASH_MISMATCH',
      `the batch in ${batch.dir} has hash ${batchHash}, not the approved ${expectHash}; run the approved batch`,
    );
  }
}

/**
 * A table's plan folder, checked to be the one the batch recorded, every file of it (as the
 * runner checks one plan): a batch run checks all its folders before it starts the first table.
 */
export function readBatchTable(batch: LoadedBatch, t: BatchTable): LoadedPlan {
  const plan = readPlanDir(join(batch.dir, t.dir));
  if (plan.manifest.planHash !== t.planHash) {
    throw new UserError(
      'PLAN_TAMPERED',
      `${join(batch.dir, t.dir)} holds plan ${plan.manifest.planHash}, not ${t.planHash} as the batch recorded; make the batch again`,
    );
  }
  checkPlanIntegrity(plan, t.planHash);
  return plan;
}
