import type pg from 'pg';
import {
  MOVE_HASH_SETTINGS,
  MOVE_VERIFY_ALGORITHM,
  moveBucketKeysSql,
  moveBucketsSql,
  moveHashSelect,
  type MoveHashShape,
} from '../compile/move/verify-sql.js';
import { MOVE_ROUND_STATES, type MovePlanManifest } from '../compile/move/stages.js';
import { TOOL_SCHEMA } from '../model/names.js';
import { qualified } from '../model/quote.js';
import { UserError } from '../model/errors.js';
import { connectClient, type ConnectionConfig } from './connect.js';
import { moveFinished, readMoveSide } from './move-state.js';

/** One moved table: both sides' row counts, the buckets that differ, and the keys behind them. */
export interface MoveTableCheck {
  readonly table: string;
  readonly rowsSource: number;
  readonly rowsTarget: number;
  readonly bucketsDiffering: number;
  /** Keys on the source and not on the target, the other way round, and on both with other contents. */
  readonly missing: number;
  readonly extra: number;
  readonly changed: number;
  readonly pass: boolean;
  /** On a failure, the first five keys in key order with what is wrong, e.g. `(7) different; (9) missing`; else null. */
  readonly differingKeys: string | null;
}

export interface MoveVerifyResult {
  /**
   * before-cutover: in one target transaction, a round (rolled back afterwards) brought the target to the source's
   * snapshot S and the source's checksums were read through the foreign server in S. after-cutover: the source is
   * fenced, so each side was read on its own connection; target writes since the cut-over count as differences.
   */
  readonly when: 'before-cutover' | 'after-cutover';
  readonly algorithm: typeof MOVE_VERIFY_ALGORITHM;
  readonly buckets: number;
  /** before-cutover: the logged keys the verify's own round applied (then rolled back); else null. */
  readonly roundApplied: number | null;
  readonly tables: readonly MoveTableCheck[];
  readonly pass: boolean;
}

/** A relation of (kh, h, k) on one connection, for the bucket and key queries. */
interface HashSide {
  readonly client: pg.ClientBase;
  readonly relation: (shape: MoveHashShape, n: number) => string;
}

type Buckets = Map<number, { n: number; s: string }>;

async function bucketsOf(side: HashSide, shape: MoveHashShape, n: number, buckets: number): Promise<Buckets> {
  const r = await side.client.query<{ b: number; n: string; s: string | null }>(
    moveBucketsSql(side.relation(shape, n), buckets),
  );
  return new Map(r.rows.map((x) => [x.b, { n: Number(x.n), s: x.s ?? '0' }]));
}

async function keysOf(
  side: HashSide,
  shape: MoveHashShape,
  n: number,
  buckets: number,
  which: number[],
): Promise<Map<string, string>> {
  const r = await side.client.query<{ k: string; h: string }>(moveBucketKeysSql(side.relation(shape, n), buckets), [
    which,
  ]);
  return new Map(r.rows.map((x) => [x.k, x.h]));
}

const keyOrder = new Intl.Collator('en', { numeric: true });

async function checkTable(
  source: HashSide,
  target: HashSide,
  shape: MovePlanManifest['tables'][number],
  buckets: number,
): Promise<MoveTableCheck> {
  const table = `${shape.schema}.${shape.name}`;
  const [s, t] = [await bucketsOf(source, shape, shape.n, buckets), await bucketsOf(target, shape, shape.n, buckets)];
  const sum = (m: Buckets) => [...m.values()].reduce((a, x) => a + x.n, 0);
  const differing = [...new Set([...s.keys(), ...t.keys()])].filter((b) => {
    const [x, y] = [s.get(b), t.get(b)];
    return x?.n !== y?.n || x?.s !== y?.s;
  });
  const counts = { rowsSource: sum(s), rowsTarget: sum(t), bucketsDiffering: differing.length };
  if (differing.length === 0)
    return { table, ...counts, missing: 0, extra: 0, changed: 0, pass: true, differingKeys: null };
  // Narrow to the keys, in the same snapshots: only the differing buckets' keys and hashes cross, never rows.
  const [sk, tk] = [
    await keysOf(source, shape, shape.n, buckets, differing),
    await keysOf(target, shape, shape.n, buckets, differing),
  ];
  const found: { key: string; what: 'missing' | 'extra' | 'different' }[] = [];
  for (const [k, h] of sk) {
    const other = tk.get(k);
    if (other === undefined) found.push({ key: k, what: 'missing' });
    else if (other !== h) found.push({ key: k, what: 'different' });
  }
  for (const k of tk.keys()) if (!sk.has(k)) found.push({ key: k, what: 'extra' });
  found.sort((a, b) => keyOrder.compare(a.key, b.key));
  const count = (w: string) => found.filter((f) => f.what === w).length;
  return {
    table,
    ...counts,
    missing: count('missing'),
    extra: count('extra'),
    changed: count('different'),
    pass: false,
    differingKeys:
      found
        .slice(0, 5)
        .map((f) => `${f.key} ${f.what}`)
        .join('; ') || null,
  };
}

/** Every table of the plan records what verify hashes (plans made before verify of moves existed do not). */
function checkShapes(manifest: MovePlanManifest, dir: string): void {
  if (manifest.tables.some((t) => !Array.isArray(t.key) || !Array.isArray(t.columns)))
    throw new UserError(
      'PLAN_INVALID',
      `${dir} was made before shadowpack could verify a move (plan.json lists no key and columns per table); plan the move again with this version`,
    );
}

async function begin(client: pg.ClientBase, readOnly: boolean): Promise<void> {
  await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ${readOnly ? ' READ ONLY' : ''}`);
  for (const s of MOVE_HASH_SETTINGS) await client.query(s);
}

/** A server error of a verify query as one line (the round's refusals carry their own hint). */
function verifyError(e: unknown, side: string): never {
  if (e instanceof UserError) throw e;
  if (e instanceof Error && 'severity' in e) {
    const d = e as pg.DatabaseError;
    throw new UserError(
      'RUN_STATE',
      `verify failed on the ${side}: ${d.message}${d.hint ? `; ${d.hint}` : ''}`,
      { sqlstate: d.code, side },
      { cause: e },
    );
  }
  throw e;
}

/**
 * Compares every moved table on the target with its source table by checksums of key-hash buckets, then names
 * the keys in the buckets that differ. Changes nothing: before the cut-over its round is rolled back.
 */
export async function verifyMove(
  plan: { readonly dir: string; readonly manifest: MovePlanManifest },
  sourceConfig: ConnectionConfig,
  targetConfig: ConnectionConfig,
  buckets = 1024,
): Promise<MoveVerifyResult> {
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > 1 << 20 || (buckets & (buckets - 1)) !== 0)
    throw new UserError(
      'BAD_ARGUMENT',
      `--buckets must be a power of two from 1 to 1048576 (got ${buckets}); 1024 unless given`,
    );
  const m = plan.manifest;
  checkShapes(m, plan.dir);
  const runId = m.runId;
  const source = await connectClient(sourceConfig);
  try {
    const target = await connectClient(targetConfig);
    try {
      const [src, tgt] = [await readMoveSide(source, runId), await readMoveSide(target, runId)];
      const rounds: readonly string[] = MOVE_ROUND_STATES;
      const direct = (shape: MoveHashShape) => `(${moveHashSelect(shape)}) AS v`;
      if (tgt !== null && rounds.includes(tgt.stage)) {
        if (tgt.stage === 'setup')
          throw new UserError(
            'RUN_STATE',
            `nothing to verify yet: the target's backfill has not finished (target stage "setup"); run the backfill first (03-backfill.target.sql, or shadowpack run --until backfill)`,
          );
        return await throughServer(m, plan.dir, target, buckets, direct);
      }
      const finished = tgt === null && src === null && (await moveFinished(source, runId));
      if (tgt?.stage !== 'cutover' && !finished)
        throw new UserError(
          'RUN_STATE',
          `nothing to verify: the move is ${tgt === null && src === null ? 'not set up' : `at source "${src?.stage ?? 'no run'}", target "${tgt?.stage ?? 'no run'}"`}; verify works from the end of the backfill on, and after the cut-over while the source keeps its fence`,
        );
      // The source is fenced (the target is live only after the fence): its tables no longer change, so each
      // side is read on its own connection.
      await begin(source, true);
      await begin(target, true);
      const tables: MoveTableCheck[] = [];
      for (const t of m.tables) {
        tables.push(
          await checkTable(
            { client: source, relation: direct },
            { client: target, relation: direct },
            t,
            buckets,
          ).catch((e: unknown) => verifyError(e, 'source or target')),
        );
      }
      return {
        when: 'after-cutover',
        algorithm: MOVE_VERIFY_ALGORITHM,
        buckets,
        roundApplied: null,
        tables,
        pass: tables.every((t) => t.pass),
      };
    } finally {
      await target.query('ROLLBACK').catch(() => undefined);
      await target.end().catch(() => undefined);
    }
  } finally {
    await source.query('ROLLBACK').catch(() => undefined);
    await source.end().catch(() => undefined);
  }
}

/**
 * Before the cut-over: one target transaction runs a round (target = source@S, S the round's source snapshot),
 * then reads the source's checksums through the foreign server, still in S (postgres_fdw keeps one remote
 * REPEATABLE READ transaction per local one), and the target's own. Exact, with nothing left out; rolled back.
 */
async function throughServer(
  m: MovePlanManifest,
  dir: string,
  target: pg.ClientBase,
  buckets: number,
  local: (shape: MoveHashShape) => string,
): Promise<MoveVerifyResult> {
  const fschema = `shadowpack_src_${m.runId}`;
  const missing = await target.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [
    qualified(fschema, 'hash_1'),
  ]);
  if (missing.rows[0]?.ok !== true)
    throw new UserError(
      'PLAN_INVALID',
      `${dir} was set up without the checksum views verify reads through the foreign server (a plan made before verify of moves); verify it after the cut-over, or abort and plan the move again`,
    );
  await begin(target, false);
  let applied: number;
  try {
    await target.query("SELECT pg_catalog.set_config('shadowpack.apply', $1, true)", [m.runId]);
    const r = await target.query<{ n: string }>(`SELECT ${qualified(TOOL_SCHEMA, `mround_${m.runId}`)}(false) AS n`);
    applied = Number(r.rows[0]!.n);
  } catch (e) {
    verifyError(e, 'target');
  }
  const remote: HashSide = { client: target, relation: (_, n) => qualified(fschema, `hash_${n}`) };
  const tables: MoveTableCheck[] = [];
  for (const t of m.tables) {
    tables.push(
      await checkTable(remote, { client: target, relation: local }, t, buckets).catch((e: unknown) =>
        verifyError(e, 'target'),
      ),
    );
  }
  return {
    when: 'before-cutover',
    algorithm: MOVE_VERIFY_ALGORITHM,
    buckets,
    roundApplied: applied,
    tables,
    pass: tables.every((t) => t.pass),
  };
}
