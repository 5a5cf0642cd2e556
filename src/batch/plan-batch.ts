import type { ClientBase } from 'pg';
import { sha256, type Plan } from '../compile/compile.js';
import type { PlanOptions } from '../compile/options.js';
import { durationEstimate } from '../compile/review-plan.js';
import { FORWARD_STAGES, type HazardCode } from '../compile/stages.js';
import { readBloat, type TableBloat } from '../introspect/bloat.js';
import { parseTableName } from '../introspect/introspect.js';
import { tableSuggestion } from '../introspect/table-suggestions.js';
import { UserError } from '../model/errors.js';
import { qualified } from '../model/quote.js';
import type { TableModel } from '../model/types.js';
import { planTable, type PlanEnvironment } from '../planning/plan-table.js';
import { TOOL_VERSION } from '../version.js';
import {
  BATCH_FORMAT_VERSION,
  batchHashOf,
  peakDiskBytes,
  tableDirName,
  type BatchManifest,
  type BatchSelection,
  type BatchSkipped,
  type BatchTable,
} from './manifest.js';
import { renderBatchReadme } from './readme.js';

export interface BatchRequest {
  readonly selection: BatchSelection;
  readonly options: PlanOptions;
  /** The role that will run the plans, when it is not the connected one. */
  readonly runAs?: string;
}

export interface BatchPlan {
  readonly manifest: BatchManifest;
  readonly readme: string;
  /** Folder name (as in manifest.tables[].dir) → that table's plan. */
  readonly plans: ReadonlyMap<string, Plan>;
}

export const BATCH_ORDER = 'largest reclaimable bytes first (then largest table, then name); one table at a time';

/** The tables the selection names, with their bloat figures, in the batch's order. */
async function candidates(client: ClientBase, s: BatchSelection): Promise<readonly TableBloat[]> {
  if (s.tables.length > 0) {
    const names = s.tables.map((t) => parseTableName(t));
    const schemas = [...new Set(names.map((n) => n.schema))];
    const listed = (await readBloat(client, { schemas, minRatio: 0, minSizeBytes: 0 })).tables;
    for (const n of names) {
      if (!listed.some((t) => t.schema === n.schema && t.name === n.table)) {
        throw new UserError(
          'TABLE_NOT_FOUND',
          `table ${qualified(n.schema, n.table)} does not exist in this database; ${await tableSuggestion(client, n.schema, n.table)}check --table (names are taken as written, not folded to lower case) and the connection`,
        );
      }
    }
    return listed.filter((t) => names.some((n) => t.schema === n.schema && t.name === n.table));
  }
  const bloated = s.bloated;
  const found = (
    await readBloat(client, {
      schemas: s.schemas,
      minRatio: bloated?.minRatio ?? 0,
      minSizeBytes: bloated?.minSizeBytes ?? 0,
    })
  ).tables;
  // --bloated: a table with nothing to give back is not bloated, whatever the thresholds.
  return bloated === null ? found : found.filter((t) => t.reclaimableBytes > 0);
}

/** The tables of the batch that share a foreign key with `model`, either way, by folder-independent name. */
function neighboursOf(model: TableModel, inBatch: ReadonlySet<string>): string[] {
  const self = qualified(model.schema, model.name);
  const linked = [
    ...model.constraints.flatMap((c) => (c.references ? [qualified(c.references.schema, c.references.name)] : [])),
    ...model.referencedBy.map((f) => qualified(f.tableSchema, f.tableName)),
  ];
  return [...new Set(linked)].filter((t) => t !== self && inBatch.has(t)).sort();
}

/**
 * Plans a batch: lists the selected tables with their bloat (one read of the catalog), plans
 * each eligible one exactly as `plan --table` would, and records the order and the totals.
 * A table that cannot be planned (refused, or a privilege missing) is skipped with its reason.
 * Writes nothing: writeBatchDir does.
 */
export async function planBatch(
  client: ClientBase,
  request: BatchRequest,
  env: PlanEnvironment = {},
): Promise<BatchPlan> {
  const listed = await candidates(client, request.selection);
  const planned: { bloat: TableBloat; plan: Plan }[] = [];
  const skipped: BatchSkipped[] = [];
  for (const t of listed) {
    if (t.refusal !== null) {
      skipped.push({ schema: t.schema, name: t.name, reason: t.refusal });
      continue;
    }
    try {
      const p = await planTable(
        client,
        {
          schema: t.schema,
          table: t.name,
          options: request.options,
          ...(request.runAs !== undefined ? { runAs: request.runAs } : {}),
        },
        env,
      );
      planned.push({ bloat: t, plan: p.plan });
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      skipped.push({ schema: t.schema, name: t.name, reason: e.message });
    }
  }
  const inBatch = new Set(planned.map((p) => qualified(p.bloat.schema, p.bloat.name)));
  const plans = new Map<string, Plan>();
  const tables: BatchTable[] = planned.map(({ bloat, plan }) => {
    const m = plan.manifest;
    const dir = tableDirName(bloat.schema, bloat.name);
    if (plans.has(dir))
      throw new UserError('BAD_ARGUMENT', `two tables would share the folder ${dir}; plan them separately`);
    plans.set(dir, plan);
    const d = durationEstimate(m);
    return {
      schema: bloat.schema,
      name: bloat.name,
      dir,
      planHash: m.planHash,
      planId: m.planId ?? '',
      rows: m.environment.reltuples,
      totalBytes: bloat.totalBytes,
      reclaimableBytes: bloat.reclaimableBytes,
      bloatMethod: bloat.method,
      diskNeededBytes: bloat.diskNeededBytes,
      walBytes: bloat.diskNeededBytes,
      hazards: [...new Set(m.stages.flatMap((s) => s.hazards))].sort() as HazardCode[],
      locks: m.stages
        .filter((s) => (FORWARD_STAGES as readonly string[]).includes(s.name))
        .flatMap((s) => s.locks.filter((l) => l.blocksApplication).map((l) => `${s.name}: ${l.mode} on ${l.relation}`)),
      lockBudgetMs: m.options.lockBudgetMs,
      estimatedSeconds: Math.round(d.copy + d.build + d.verify),
      neighbours: neighboursOf(m.model, inBatch),
    };
  });
  const sum = (f: (t: BatchTable) => number) => tables.reduce((s, t) => s + f(t), 0);
  const env0 = planned[0]?.plan.manifest.environment;
  if (env0 === undefined) {
    const why = skipped.map((t) => `${qualified(t.schema, t.name)} (${t.reason.split('\n')[0]})`).join('; ');
    throw new UserError(
      'UNSUPPORTED_TABLE',
      listed.length === 0
        ? 'no table matches the selection; check --schema, --table and the --bloated thresholds (nothing was written)'
        : `no table of the selection can be rebuilt: ${why}; nothing was written`,
    );
  }
  const base: Omit<BatchManifest, 'readmeSha256' | 'batchHash'> = {
    formatVersion: BATCH_FORMAT_VERSION,
    kind: 'batch',
    tool: { name: 'shadowpack', version: env.toolVersion ?? TOOL_VERSION },
    selection: request.selection,
    order: BATCH_ORDER,
    tables,
    skipped,
    totals: {
      tables: tables.length,
      rows: sum((t) => t.rows),
      totalBytes: sum((t) => t.totalBytes),
      reclaimableBytes: sum((t) => t.reclaimableBytes),
      peakDiskBytes: peakDiskBytes(tables, 1),
      walBytes: sum((t) => t.walBytes),
      estimatedSeconds: sum((t) => t.estimatedSeconds),
    },
    environment: {
      database: env0.database,
      databaseOid: env0.databaseOid,
      systemIdentifier: env0.systemIdentifier,
      serverVersion: env0.serverVersion,
    },
  };
  const readme = renderBatchReadme(base);
  const withReadme = { ...base, readmeSha256: sha256(readme) };
  return { manifest: { ...withReadme, batchHash: batchHashOf(withReadme) }, readme, plans };
}
