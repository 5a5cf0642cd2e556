import { createHash } from 'node:crypto';
import { canonicalJson } from '../../model/normalise.js';
import { literal } from '../../model/quote.js';
import { planDollarTag, withDollarTag } from '../dollar-tag.js';
import { sqlTemplates, tidy } from '../render.js';
import { moveContext, moveHashShape, moveRunId, sortedGroup, usesOutsideGroup, type MoveInput } from './context.js';
import {
  MOVE_BINDING_FILES,
  moveStagesFor,
  moveTemplateKey,
  type MoveHazardCode,
  type MovePlanManifest,
  type MovePlanStage,
  type MoveSide,
  type MoveStageName,
  type MoveStageRule,
} from './stages.js';
import { renderMoveReview } from './review-move.js';
import { moveStageStates, moveStagesStates, roundStatesListLiteral } from './stage-literals.js';
import { bindingInput } from '../template-inputs.js';

export const MOVE_FORMAT_VERSION = 1;

/** Template texts of a move plan, read by the caller: one per stage and side, partials, bindings. */
export interface MoveTemplateSet {
  /** Keyed `<stage>.<side>` (e.g. `setup.source`). */
  readonly stages: Readonly<Record<string, string>>;
  readonly partials: Readonly<Record<string, string>>;
  /** The rebuild's binding.sql.hbs, shared by both sides. */
  readonly binding: string;
  /** What the target's binding adds: the source's address for the foreign server. */
  readonly fdwBinding: string;
  /** --reversible: what the source's binding adds, the target's address for a revert's foreign server. */
  readonly revertBinding: string;
}

export interface MovePlan {
  readonly manifest: MovePlanManifest;
  readonly files: ReadonlyMap<string, string>;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The hazards each stage carries, for the review and plan.json. */
function stageHazards(rule: MoveStageRule, input: MoveInput): MoveHazardCode[] {
  const h: MoveHazardCode[] = [];
  const generated = input.tables.some((m) => m.columns.some((c) => c.generated !== null));
  const shared = input.sequences.some((s) => usesOutsideGroup(s, input).length > 0);
  switch (rule.file) {
    case '91-revert.source.sql':
      if (input.options.fdwAuth === 'password') h.push('REVERT_FDW_PASSWORD_IN_CATALOG');
      h.push('REVERT_REPLICA_APPLY');
      return h;
    case '92-revert.target.sql':
      h.push('SHARE_ROW_EXCLUSIVE_LOCK', 'TARGET_WRITE_FREEZE');
      return h;
    case '93-revert.source.sql':
      h.push('SHARE_ROW_EXCLUSIVE_LOCK', 'REVERT_REPLICA_APPLY');
      return h;
    default:
      break;
  }
  switch (`${rule.stage}.${rule.side}`) {
    case 'setup.source':
      h.push('SHARE_ROW_EXCLUSIVE_LOCK', 'WRITE_OVERHEAD', 'TRUNCATE_BLOCKED', 'LOG_GROWTH');
      break;
    case 'setup.target':
      if (input.options.fdwAuth === 'password') h.push('FDW_PASSWORD_IN_CATALOG');
      if (generated) h.push('GENERATED_COLUMNS_RECOMPUTED');
      break;
    case 'fence.source':
      h.push('SHARE_ROW_EXCLUSIVE_LOCK', 'WRITE_FREEZE');
      break;
    case 'cutover.target':
      h.push('FK_REVALIDATION');
      if (shared) h.push('SEQUENCE_SHARED');
      if (input.options.reversible === true) h.push('TARGET_WRITE_OVERHEAD', 'TARGET_TRUNCATE_BLOCKED');
      break;
    case 'cleanup.target':
      if (input.options.reversible === true) h.push('SHARE_ROW_EXCLUSIVE_LOCK', 'REVERT_WINDOW');
      break;
    default:
      break;
  }
  return h;
}

function stageLocks(rule: MoveStageRule, input: MoveInput): MovePlanStage['locks'] {
  const sre =
    (rule.side === 'source' &&
      (rule.stage === 'setup' || rule.stage === 'fence' || rule.stage === 'cleanup' || rule.stage === 'abort')) ||
    // --reversible: the target's cleanup drops the capture triggers of the live tables; the revert fences the
    // target and drops the source's fence.
    (rule.side === 'target' && rule.stage === 'cleanup' && input.options.reversible === true) ||
    rule.file === '92-revert.target.sql' ||
    rule.file === '93-revert.source.sql';
  if (!sre) return [];
  return sortedGroup(input.tables).map((m) => ({
    relation: `${m.schema}.${m.name}`,
    mode: 'SHARE ROW EXCLUSIVE',
    blocksApplication: true,
  }));
}

const TRANSACTION_TEXT = {
  none: 'no (read-only)',
  one: 'yes',
  batches: 'no: commits batch by batch, resumable',
  several: 'no: a few transactions, each safe to repeat',
} as const;

/** Pure: the group's models and facts in, the move plan's files and manifest out. */
export function compileMove(input: MoveInput, templates: MoveTemplateSet, toolVersion: string): MovePlan {
  const tables = sortedGroup(input.tables);
  const runId = moveRunId(tables);
  const ctx = moveContext(input, runId);
  const compileOne = sqlTemplates(templates.partials);
  const render = (text: string, context: object): string => tidy(compileOne(text)(context));

  const stagesStates = moveStagesStates();
  const rendered = moveStagesFor(input.options).map((rule) => {
    const key = moveTemplateKey(rule);
    const template = templates.stages[key];
    if (template === undefined) throw new Error(`internal error: no template for ${key}`);
    const hazards = stageHazards(rule, input);
    const stage = {
      ...rule,
      transactionText: TRANSACTION_TEXT[rule.transaction],
      hazardsText: hazards.length === 0 ? 'none' : hazards.join(', '),
      states: moveStageStates(rule),
    };
    return {
      rule,
      hazards,
      text: render(template, {
        ...ctx,
        toolVersion,
        stage,
        stagesStates,
        roundStatesListLiteral,
        appNameLiteral: literal(`shadowpack:${runId}:${rule.stage}`),
      }),
    };
  });
  const tag = planDollarTag(rendered.map((r) => r.text));
  const files = new Map<string, string>();
  const stages: MovePlanStage[] = rendered.map(({ rule, hazards, text: marked }) => {
    const text = withDollarTag(marked, tag);
    files.set(rule.file, text);
    return {
      file: rule.file,
      stage: rule.stage,
      side: rule.side,
      sha256: sha256(text),
      transaction: rule.transaction,
      locks: stageLocks(rule, input),
      hazards,
    };
  });
  const identified = {
    kind: 'move' as const,
    formatVersion: MOVE_FORMAT_VERSION,
    tool: { name: 'shadowpack' as const, version: toolVersion },
    runId,
    tables: tables.map((m, i) => ({ ...moveHashShape(m), n: i + 1, fingerprint: m.fingerprint })),
    source: input.source,
    target: input.target,
    fdwAuth: input.options.fdwAuth,
    options: input.options,
    stages,
  };
  const planId =
    'm1:' +
    sha256(
      canonicalJson({
        ...identified,
        models: tables,
        sequences: input.sequences,
        types: input.types,
      }),
    ).slice(0, 32);
  const bindingFor = (side: MoveSide): string => {
    const facts = side === 'source' ? input.source : input.target;
    let text = render(templates.binding, bindingInput(toolVersion, planId, `${ctx.groupText} (${side})`, runId, facts));
    if (side === 'source' && input.options.reversible === true) {
      text += render(templates.revertBinding, {
        hostLiteral: literal(input.target.host ?? ''),
        portLiteral: literal(String(input.target.port ?? 5432)),
        dbnameLiteral: literal(input.target.database),
        userLiteral: literal(input.revertFdwUser ?? ''),
      });
    }
    if (side === 'target') {
      text += render(templates.fdwBinding, {
        hostLiteral: literal(input.source.host ?? ''),
        portLiteral: literal(String(input.source.port ?? 5432)),
        dbnameLiteral: literal(input.source.database),
        userLiteral: literal(input.fdwUser),
        ...(input.fdwCert !== undefined
          ? { sslcertLiteral: literal(input.fdwCert.sslcert), sslkeyLiteral: literal(input.fdwCert.sslkey) }
          : {}),
      });
    }
    return withDollarTag(text, planDollarTag([text]));
  };
  const bindings = {
    source: { file: MOVE_BINDING_FILES.source, sha256: '' },
    target: { file: MOVE_BINDING_FILES.target, sha256: '' },
  };
  for (const side of ['source', 'target'] as const) {
    const text = bindingFor(side);
    files.set(MOVE_BINDING_FILES[side], text);
    bindings[side] = { file: MOVE_BINDING_FILES[side], sha256: sha256(text) };
  }
  const partial = { ...identified, planId, bindings };
  const review = renderMoveReview({ ...partial, readmeSha256: '', planHash: '' }, input);
  const withReadme = { ...partial, readmeSha256: sha256(review) };
  const manifest: MovePlanManifest = { ...withReadme, planHash: sha256(canonicalJson(withReadme)) };
  files.set('README.md', `# Move plan ${runId}\n\nplan hash: ${manifest.planHash}\n\n` + review);
  return { manifest, files };
}

export type { MoveStageName };
