import { planHashOf, sha256 } from './plan-hash.js';
import { canonicalJson, modelHash } from '../model/normalise.js';
import { UserError } from '../model/errors.js';
import type { CopyTarget, EnvironmentFacts, TableModel } from '../model/types.js';
import { commonContext } from './context.js';
import { stagesToRender } from './stage-inputs.js';
import { bindingInput } from './template-inputs.js';
import type { PlanOptions } from './options.js';
import { makeRenderers, tidy, type TemplateSet } from './render.js';
import { planDollarTag, withDollarTag } from './dollar-tag.js';
import type { HazardCode, StageInfo, StageLock } from './stages.js';
import { renderReview } from './review.js';
import { headerText, type PlanProvenance } from './provenance.js';
import { splitSql } from '../model/split-sql.js';
import { deriveTarget } from './transform/derive.js';
import { NO_TRANSFORM, type TransformSpec } from './transform/spec.js';
import { transformManifest, type TransformManifest } from './transform/manifest.js';

export const PLAN_FORMAT_VERSION = 1;

/** Included by every stage script with `\ir`; the only file that differs between environments. */
export const BINDING_FILE = 'binding.sql';

export interface PlanStage extends StageInfo {
  readonly sha256: string;
  /**
   * Swap and revert: the statements their locked transaction runs, each capped by the swap's
   * statement_timeout; the review multiplies them into the longest the lock can be held.
   */
  readonly statementsUnderLock?: number;
  readonly locks: readonly StageLock[];
  readonly hazards: readonly HazardCode[];
}

/** plan.json. Everything but `environment` is a function of model + options. */
export interface PlanManifest {
  readonly formatVersion: number;
  readonly tool: { readonly name: 'shadowpack'; readonly version: string };
  readonly table: { readonly schema: string; readonly name: string };
  readonly runId: string;
  /**
   * Which plan a run belongs to; see planIdOf. Absent in plans made before runs were bound to
   * their plan.
   */
  readonly planId?: string;
  readonly fingerprint: string;
  readonly modelHash: string;
  readonly target: CopyTarget;
  readonly options: PlanOptions;
  /** What the rebuilt table becomes: the spec, the target model, the mappings both ways. */
  readonly transform: TransformManifest;
  readonly stages: readonly PlanStage[];
  readonly readmeSha256: string;
  /** The environment-specific file every stage includes; see bindingText. */
  readonly binding: { readonly file: string; readonly sha256: string };
  readonly model: TableModel;
  /** Facts of the database the plan was made on; they never reach the SQL. */
  readonly environment: EnvironmentFacts;
  /** sha256 over everything above but provenance, canonical JSON. */
  readonly planHash: string;
  /** Who made the plan, when, through which host: shown to the approver, outside the plan hash (see PlanProvenance). */
  readonly provenance?: PlanProvenance;
}

export interface Plan {
  readonly manifest: PlanManifest;
  /** File name → content, for every script and README.md. */
  readonly files: ReadonlyMap<string, string>;
}

export interface CompileInput {
  readonly model: TableModel;
  readonly facts: EnvironmentFacts;
  readonly options: PlanOptions;
  readonly templates: TemplateSet;
  readonly toolVersion: string;
  /** Omitted: rebuild only. */
  readonly transform?: TransformSpec;
  /** Who plans, when, where; it reaches plan.json and the README's header, never the hash or a script. */
  readonly provenance?: PlanProvenance;
}

export { planHashOf, sha256 } from './plan-hash.js';

/** Swap and revert: the statements of the locked transaction (the first BEGIN … COMMIT of the script). */
function lockedStatements(text: string): number | undefined {
  const sts = splitSql(text).map((st) => st.text.trim());
  const begin = sts.findIndex((t) => /^BEGIN\s*;?$/i.test(t));
  const commit = sts.findIndex((t, i) => i > begin && /^COMMIT\s*;?$/i.test(t));
  return begin < 0 || commit < 0 ? undefined : commit - begin - 1;
}

/**
 * The plan id, recorded in shadowpack.runs when a run starts (setup) and compared by every stage,
 * so one plan cannot finish a run another plan started.
 *
 * Why not the plan hash: it covers every file of the plan, so no file can contain it. The plan id
 * covers everything the plan hash covers except the files derived from it (binding.sql and
 * README.md, which are rendered from these same parts): the stage scripts' sha256s, model,
 * options, transform and the environment (database, cluster, sizes, and the table's OID, which a
 * rebuild changes, so a plan made after a finished run is a new plan). Two plans with the same
 * plan id run byte-identical stage scripts, so either may continue the other's run.
 *
 * The stage scripts stay the same in every environment, so the id is not written into them:
 * binding.sql (per environment, included by every stage before anything else) sets it as the
 * session setting shadowpack.plan_id, where setup records it and the stages compare it.
 */
export function planIdOf(parts: Omit<PlanManifest, 'planId' | 'readmeSha256' | 'binding' | 'planHash'>): string {
  return 'i1:' + sha256(canonicalJson(parts)).slice(0, 32);
}

/** Pure: model + options + templates in, plan out. No I/O, no clock, no randomness. */
export function compile(input: CompileInput): Plan {
  const { model, facts, options, templates, toolVersion } = input;
  const spec = input.transform ?? NO_TRANSFORM;
  const target = deriveTarget(model, spec);
  const common = commonContext(model, target, options, toolVersion);
  const render = makeRenderers(templates);
  const files = new Map<string, string>();
  const rendered = stagesToRender(common, target, options).map(({ name, info, input, locks, hazards }) => {
    const text = tidy(render[name](input));
    return { info, text, locks, hazards };
  });
  // One dollar tag for every stage script, chosen over all their bodies.
  const tag = planDollarTag(rendered.map((r) => r.text));
  const stages: PlanStage[] = rendered.map(({ info, text: marked, locks, hazards }) => {
    const text = withDollarTag(marked, tag);
    files.set(info.file, text);
    const locked = info.name === 'swap' || info.name === 'revert' ? lockedStatements(text) : undefined;
    return {
      ...info,
      sha256: sha256(text),
      ...(locked !== undefined ? { statementsUnderLock: locked } : {}),
      locks,
      hazards,
    };
  });
  const identified = {
    formatVersion: PLAN_FORMAT_VERSION,
    tool: { name: 'shadowpack' as const, version: toolVersion },
    table: { schema: model.schema, name: model.name },
    runId: common.names.runId,
    fingerprint: model.fingerprint,
    modelHash: modelHash(model),
    target: { kind: 'local' as const },
    options,
    transform: transformManifest(spec, target),
    stages,
    model,
    environment: facts,
  };
  const planId = planIdOf(identified);
  const bindingMarked = tidy(
    render.binding(bindingInput(toolVersion, planId, common.tableDisplay, common.names.runId, facts)),
  );
  // Its own tag: it is rendered after the stage scripts (their sums make the plan id it sets) and run on its own.
  const binding = withDollarTag(bindingMarked, planDollarTag([bindingMarked]));
  files.set(BINDING_FILE, binding);
  const partial = {
    formatVersion: identified.formatVersion,
    tool: identified.tool,
    table: identified.table,
    runId: identified.runId,
    planId,
    fingerprint: identified.fingerprint,
    modelHash: identified.modelHash,
    target: identified.target,
    options,
    transform: identified.transform,
    stages,
    binding: { file: BINDING_FILE, sha256: sha256(binding) },
    model,
    environment: facts,
  };
  // README.md: a header printed from the finished manifest (it holds the plan hash, so the hash cannot
  // cover it), then the review, which readmeSha256 puts under the hash.
  const review = renderReview({ ...partial, readmeSha256: '', planHash: '' });
  const withReadme = { ...partial, readmeSha256: sha256(review) };
  const manifest: PlanManifest = {
    ...withReadme,
    planHash: planHashOf(withReadme),
    ...(input.provenance !== undefined ? { provenance: input.provenance } : {}),
  };
  files.set('README.md', headerText(manifest) + review);
  return { manifest, files };
}
