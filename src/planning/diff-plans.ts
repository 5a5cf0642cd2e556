import type { PlanManifest } from '../compile/compile.js';
import { describeModelDiff } from '../compile/model-diff.js';
import { withOptionDefaults } from '../compile/options.js';
import { unifiedDiff } from '../compile/text-diff.js';

/** One plan to compare: where it came from, its manifest and its files. */
export interface PlanSide {
  readonly label: string;
  readonly manifest: PlanManifest;
  readonly files: ReadonlyMap<string, string>;
}

export interface DiffResult {
  readonly identical: boolean;
  /** What "A" and "B" in the lines below stand for: each side's folder (or "live") and plan hash. */
  readonly a: { readonly label: string; readonly planHash: string };
  readonly b: { readonly label: string; readonly planHash: string };
  readonly model: readonly string[];
  readonly options: readonly string[];
  readonly environment: readonly string[];
  readonly scripts: readonly { readonly file: string; readonly diff: string }[];
}

/** The keys of two flat records whose values differ, as "key: x in A, y in B", sorted. */
function changedFields(a: object, b: object): string[] {
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return Object.keys({ ...ra, ...rb })
    .sort()
    .filter((k) => ra[k] !== rb[k])
    .map((k) => `${k}: ${String(ra[k])} in A, ${String(rb[k])} in B`);
}

/** Compares two plans: SQL first decides; models, options and environment explain. */
export function diffPlans(a: PlanSide, b: PlanSide): DiffResult {
  const files = [...new Set([...a.manifest.stages.map((s) => s.file), ...b.manifest.stages.map((s) => s.file)])].sort();
  const scripts = files
    .filter((f) => a.files.get(f) !== b.files.get(f))
    .map((f) => ({
      file: f,
      diff: unifiedDiff(a.files.get(f) ?? '', b.files.get(f) ?? '', `${a.label}/${f}`, `${b.label}/${f}`),
    }));
  const options = changedFields(withOptionDefaults(a.manifest.options), withOptionDefaults(b.manifest.options)).map(
    (k) => `option ${k}`,
  );
  const environment = changedFields(a.manifest.environment, b.manifest.environment);
  // binding.sql names the database on purpose: it is the environment, never a SQL difference.
  const bindingA = a.manifest.binding;
  const bindingB = b.manifest.binding;
  if (bindingA?.sha256 !== bindingB?.sha256) {
    environment.push(
      `${bindingA?.file ?? bindingB?.file ?? 'binding.sql'}: written for each database (sha256 ${bindingA?.sha256 ?? 'none'} in A, ${bindingB?.sha256 ?? 'none'} in B)`,
    );
  }
  // Who planned, when, through which host: outside the plan hash, shown so a difference in hashes has its reason.
  if (a.manifest.provenance !== undefined || b.manifest.provenance !== undefined) {
    environment.push(
      ...changedFields(a.manifest.provenance ?? {}, b.manifest.provenance ?? {}).map((line) => `provenance ${line}`),
    );
  }
  if (a.manifest.tool.version !== b.manifest.tool.version)
    options.unshift(`shadowpack ${a.manifest.tool.version} in A, ${b.manifest.tool.version} in B`);
  return {
    identical: scripts.length === 0,
    a: { label: a.label, planHash: a.manifest.planHash },
    b: { label: b.label, planHash: b.manifest.planHash },
    model: describeModelDiff(a.manifest.model, b.manifest.model),
    options,
    environment,
    scripts,
  };
}
