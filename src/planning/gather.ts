import type { ClientBase } from 'pg';
import type { PlanOptions } from '../compile/options.js';
import { parseAlterActions } from '../compile/transform/parse-alter.js';
import { NO_TRANSFORM, type TransformSpec } from '../compile/transform/spec.js';
import { checkControlOptions } from '../introspect/control-checks.js';
import { introspect } from '../introspect/introspect.js';
import { partitionDataRange } from '../introspect/partition-range.js';
import { missingPrivileges, privilegeError } from '../introspect/privileges.js';
import { qualified } from '../model/quote.js';
import type { EnvironmentFacts, TableModel } from '../model/types.js';

/** What to plan for one table: everything `shadowpack plan` takes, flags already checked. */
export interface PlanRequest {
  readonly schema: string;
  readonly table: string;
  /** Resolved options (resolveOptions, or withOptionDefaults for a recorded plan). */
  readonly options: PlanOptions;
  /** What the rebuilt table becomes (resolveTransform); omitted: a plain rebuild. */
  readonly transform?: TransformSpec;
  /** --alter texts, parsed here against the table as read; replace `transform.alter` when given. */
  readonly alter?: readonly string[];
  /** The role that will run the plan, when it is not the connected one (privilege check). */
  readonly runAs?: string;
  /** Push every row through the new shape before planning (--check-data). */
  readonly checkData?: boolean;
  /**
   * diff --plan: the plan this database gives now for a recorded request, to compare texts.
   * Leaves out the checks that decide whether the plan may run here (privileges, control
   * options, free partition names, a run in progress) and keeps the recorded partition range.
   */
  readonly compareOnly?: boolean;
}

/** Every catalog fact the compiler needs about one table, read before anything is compiled. */
export interface GatheredTable {
  readonly model: TableModel;
  readonly facts: EnvironmentFacts;
  /** The request's transform with the catalog-dependent parts filled in (partition range, parsed --alter). */
  readonly transform: TransformSpec;
}

/** The catalog reads of planning, in one place; what follows (compile) is pure. */
export async function gatherTable(client: ClientBase, request: PlanRequest): Promise<GatheredTable> {
  const { schema, table } = request;
  const given = request.transform ?? NO_TRANSFORM;
  if (!request.compareOnly) {
    // Checked first, before anything is written, so a run cannot fail halfway for want of a privilege
    // (and so a role that cannot even read the table learns what it lacks).
    const missing = await missingPrivileges(client, schema, table, request.runAs);
    if (missing.length > 0) {
      const role = request.runAs ?? (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
      throw privilegeError(role, qualified(schema, table), missing);
    }
  }
  const t = await introspect(client, schema, table);
  if (!request.compareOnly) await checkControlOptions(client, request.options);
  // The bounds come from the data as it is now, recorded in the plan (a re-plan on other data gives other partitions).
  const partition =
    given.partition === null || request.compareOnly
      ? given.partition
      : { ...given.partition, dataRange: await partitionDataRange(client, t.model, given.partition) };
  const alter = request.alter === undefined ? given.alter : await parseAlterActions(request.alter, t.model);
  return { model: t.model, facts: t.facts, transform: { ...given, partition, alter } };
}
