import type pg from 'pg';
import type { ClientConfig, DatabaseError } from 'pg';
import { connectClient } from './connect.js';
import { FORWARD_STAGES, PARALLEL_STAGES, planStages, type StageName } from '../compile/stages.js';
import { nextStage, stageMachine } from '../compile/stage-machine.js';
import { UserError } from '../model/errors.js';
import { noticeEvent, type LockReport, type RunEvent } from './events.js';
import { checkPlanIntegrity, type LoadedPlan } from './plan-check.js';
import { scriptParts, type ScriptPart } from './includes.js';
import { splitSql, type SqlStatement } from '../model/split-sql.js';
import { appendLockReports, readState, type RunState } from './state.js';
import { terminateHint } from './terminate-hint.js';

export interface RunRequest {
  readonly plan: LoadedPlan;
  readonly connection: ClientConfig;
  /** Run forward stages up to and including this one; cleanup when omitted (the CLI passes swap unless told otherwise, see DEFAULT_UNTIL in src/cli/default-until.ts). */
  readonly until?: StageName;
  /** Run exactly this stage (forward or abort/revert). */
  readonly stage?: StageName;
  readonly expectHash?: string;
  /**
   * Sessions that run a parallel stage (the backfill) at once, each the same statements, as N psql
   * sessions would: they divide the work between them. 1 (the default) for one session.
   */
  readonly jobs?: number;
  readonly onEvent: (event: RunEvent) => void;
}

export interface StageTiming {
  readonly stage: StageName;
  readonly ms: number;
}

export interface RunSummary {
  readonly stages: readonly StageTiming[];
  readonly state: RunState | null;
  /** The last state seen before cleanup removed it: rows copied, swap lock hold. */
  readonly lastSeen: RunState | null;
  readonly finished: boolean;
  /** Every lock report of this invocation, in order (also those of steps that gave up). */
  readonly locks: readonly LockReport[];
}

/** Which stage comes next, from the state both executors write (the stage machine decides). */
export function nextForwardStage(state: RunState | null, hasVerify: boolean): StageName | 'done' {
  const machine = stageMachine({ verifyRanges: hasVerify ? 1 : 0 });
  try {
    // 'abort' only to finish an interrupted abort or revert.
    return nextStage(machine, planStages({ verifyRanges: hasVerify ? 1 : 0 }), state?.stage ?? null);
  } catch {
    throw new UserError(
      'RUN_STATE',
      `the run is at an unknown stage "${state?.stage ?? ''}"; was it started by another shadowpack version?`,
    );
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return { line, column };
}

/** A failed statement, said the way graphile/migrate does: file, line, column, code, detail, hint. */
function stageError(plan: LoadedPlan, part: ScriptPart, st: SqlStatement, err: DatabaseError): UserError {
  const file = part.file;
  const pos = err.position ? Number(err.position) - 1 : 0;
  const { line, column } = lineAndColumn(part.fileText, part.base + st.offset + Math.max(0, pos));
  const parts = [`${plan.dir}/${file}:${line}:${column}: ${err.message}`];
  if (err.code) parts.push(`(SQLSTATE ${err.code})`);
  if (err.detail) parts.push(`detail: ${err.detail}`);
  if (err.hint) parts.push(`hint: ${err.hint}`);
  // A lock step's hint already names pg_terminate_backend with the pids (for psql users too).
  const terminate = err.hint?.includes('pg_terminate_backend') ? '' : terminateHint(err.message);
  if (terminate !== '') parts.push(`(${terminate})`);
  return new UserError('STAGE_FAILED', parts.join(' '), { file, line, column, sqlstate: err.code }, { cause: err });
}

/** The statements of a stage, in the order the runner sends them (and psql runs them). */
export function stageStatements(
  plan: LoadedPlan,
  stage: StageName,
): { readonly file: string; readonly part: ScriptPart; readonly st: SqlStatement }[] {
  const info = plan.manifest.stages.find((s) => s.name === stage);
  if (!info) throw new UserError('PLAN_INVALID', `the plan has no stage ${stage}`);
  const script = plan.files.get(info.file)!;
  const binding = plan.manifest.binding;
  const includable = new Map<string, string>();
  if (binding !== undefined) includable.set(binding.file, plan.files.get(binding.file)!);
  // psql runs binding.sql where the script says \ir; so does the runner, statement by statement.
  return scriptParts(info.file, script, includable).flatMap((part) =>
    splitSql(part.text).map((st) => ({ file: info.file, part, st })),
  );
}

/** SQLSTATE of a swap or revert whose change log outgrew --swap-backlog while its lock step retried. */
const LOG_OUTGREW_BACKLOG = 'SPBL1';

/**
 * Runs a stage; a swap or revert that stopped because the log grew past --swap-backlog while its lock
 * step retried runs again: it catches up outside its transaction before it locks, which one transaction
 * cannot do, so what is applied under the lock stays bounded however many attempts it takes. Bounded
 * like the lock step: the time the application queued behind the stopped runs' attempts counts against
 * the lock budget, and each run is one more round.
 */
async function runStage(req: StageRequest, stage: StageName): Promise<number> {
  const { lockBudgetMs, lockTimeoutMs, lockAttempts } = req.plan.manifest.options;
  let ms = 0;
  let queuedMs = 0;
  for (let run = 1; ; run++) {
    const reports: LockReport[] = [];
    const stageReq: StageRequest = {
      ...req,
      onEvent: (e) => {
        if (e.type === 'lock-report') reports.push(e.report);
        req.onEvent(e);
      },
    };
    const started = Date.now();
    try {
      return ms + (await runStageOnce(stageReq, stage));
    } catch (e) {
      if (!(e instanceof UserError && e.code === 'STAGE_FAILED' && e.details['sqlstate'] === LOG_OUTGREW_BACKLOG))
        throw e;
      ms += Date.now() - started;
      queuedMs += reports.reduce((n, r) => n + r.queued_ms, 0);
      if (queuedMs + lockTimeoutMs > lockBudgetMs || run >= lockAttempts) throw e;
      // Kept with the run, as the transaction that stopped could not keep them itself.
      await recordGaveUp(req, reports);
      req.onEvent({
        type: 'wait',
        stage,
        message: `the change log grew past ${req.plan.manifest.options.swapBacklog} entries while the lock was retried: catching up, then running ${stage} again (run ${run + 1})`,
      });
    }
  }
}

async function runStageOnce(req: StageRequest, stage: StageName): Promise<number> {
  const statements = stageStatements(req.plan, stage);
  const file = req.plan.manifest.stages.find((s) => s.name === stage)!.file;
  req.onEvent({ type: 'stage-start', stage, file });
  const started = Date.now();
  // A plan made before its stage could be shared takes the run's lock exclusively: one session.
  const shared = statements.some(({ st }) => st.text.includes('pg_try_advisory_lock_shared('));
  const jobs = PARALLEL_STAGES.has(stage) && shared ? Math.max(1, req.jobs ?? 1) : 1;
  if (jobs === 1) {
    await runSession(req, stage, statements);
  } else {
    // N sessions run the same statements, as N psql sessions would. The first failure stops the
    // others (cancelled, like a psql session interrupted: the stage is safe to run again), and is
    // the one reported.
    const sessions: pg.Client[] = [];
    let failure: unknown = null;
    await Promise.all(
      Array.from({ length: jobs }, () =>
        runSession(req, stage, statements, sessions).catch(async (e: unknown) => {
          if (failure !== null) return;
          failure = e;
          await cancelSessions(req, sessions);
        }),
      ),
    );
    if (failure !== null) throw failure;
  }
  const ms = Date.now() - started;
  req.onEvent({ type: 'stage-end', stage, ms });
  return ms;
}

type Statements = ReturnType<typeof stageStatements>;

/** One session running a stage's statements in order, as psql runs the file. */
async function runSession(
  req: StageRequest,
  stage: StageName,
  statements: Statements,
  opened?: pg.Client[],
): Promise<void> {
  // A session in the state of a fresh one, like psql's: its settings and advisory lock end with the stage.
  const client = await req.sessions.acquire();
  opened?.push(client);
  const onNotice = (n: { message?: string }): void => req.onEvent(noticeEvent(stage, n.message ?? ''));
  client.on('notice', onNotice);
  let done = false;
  try {
    for (const { part, st } of statements) {
      try {
        await client.query(st.text);
      } catch (e) {
        // The server ending the session (pg_terminate_backend, a shutdown, a crash) is not the statement's fault:
        // like a dropped connection, the stage is safe to run again.
        const ended = e instanceof Error && 'code' in e && typeof e.code === 'string' && /^(57P0[1-3]|08)/.test(e.code);
        if (e instanceof Error && 'code' in e && 'severity' in e && !ended)
          throw stageError(req.plan, part, st, e as DatabaseError);
        if (e instanceof Error) {
          throw new UserError(
            'CONNECTION_FAILED',
            `lost the connection during stage ${stage} (${e.message}); the stage is safe to resume: run the same command again once the server is back`,
            { stage },
            { cause: e },
          );
        }
        throw e;
      }
    }
    done = true;
  } finally {
    client.off('notice', onNotice);
    // A session whose stage failed is ended, never reused (it may be in a failed transaction, or hold
    // what the stage took); one whose stage ran to its end is reset before anything else uses it.
    await req.sessions.release(client, done);
  }
}

/**
 * The stage sessions of one invocation, kept across its stages so that each stage does not pay a
 * new backend and a cold catalog cache (planning the guard's catalog queries, binding.sql's DO:
 * tens of ms a stage). A session goes back only after its stage ran to its end, and is first given
 * the state of a fresh session, what psql's session per file has:
 * - pg_stat_force_next_flush(): its table statistics are flushed now, as a session's are when it
 *   ends (a later stage's ANALYZE, or cleanup's count of the rows changed since one, must not see
 *   the backfill's inserts arrive after it);
 * - DISCARD ALL: the session's settings back to the connection's (search_path, lock_timeout,
 *   application_name, shadowpack.plan_id …), SET ROLE and SET SESSION AUTHORIZATION undone, every
 *   advisory lock it holds released (the run's lock ends with the stage, as before), temporary
 *   tables, prepared statements, cursors, LISTEN and cached plans gone. The catalog caches stay.
 * A session that fails either is ended. The statistics cannot be flushed on demand before
 * PostgreSQL 15: there every stage has a session of its own, as before. A kept session is idle
 * between stages: no transaction, no snapshot, no lock. Before reuse it is asked one trivial query,
 * so a session the server ended meanwhile (a restart, idle_session_timeout) is replaced by a new one.
 */
class StageSessions {
  private readonly idle: pg.Client[] = [];
  /** Whether the server has pg_stat_force_next_flush() (PostgreSQL 15 on); read at the first release. */
  private reusable: boolean | undefined;

  constructor(private readonly req: RunRequest) {}

  async acquire(): Promise<pg.Client> {
    for (let c = this.idle.pop(); c !== undefined; c = this.idle.pop()) {
      try {
        await c.query('SELECT');
        return c;
      } catch {
        await c.end().catch(() => undefined);
      }
    }
    return connectClient(this.req.connection);
  }

  async release(client: pg.Client, reuse: boolean): Promise<void> {
    try {
      if (reuse && this.reusable === undefined) {
        const r = await client.query<{ ok: boolean }>(
          "SELECT pg_catalog.current_setting('server_version_num')::int >= 150000 AS ok",
        );
        this.reusable = r.rows[0]!.ok;
      }
      if (reuse && this.reusable === true) {
        await client.query('SELECT pg_catalog.pg_stat_force_next_flush()');
        await client.query('DISCARD ALL');
        this.idle.push(client);
        return;
      }
    } catch {
      // Ended below, as a session whose stage failed.
    }
    await client.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    const all = this.idle.splice(0);
    await Promise.all(all.map((c) => c.end().catch(() => undefined)));
  }
}

/** A request inside run(): the invocation's stage sessions travel with it (runStage copies it per run of a stage). */
interface StageRequest extends RunRequest {
  readonly sessions: StageSessions;
}

/** Best effort: cancels what the other sessions of a parallel stage are running. */
async function cancelSessions(req: RunRequest, sessions: readonly pg.Client[]): Promise<void> {
  const pids = sessions
    .map((c) => (c as unknown as { processID: number | null }).processID)
    .filter((p): p is number => typeof p === 'number');
  if (pids.length === 0) return;
  try {
    const admin = await connectClient(req.connection);
    try {
      await admin.query('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS p(pid)', [pids]);
    } finally {
      await admin.end().catch(() => undefined);
    }
  } catch {
    // The first failure is what the caller must see.
  }
}

/**
 * Reads the run's state between stages on one session kept for the whole invocation: a connection
 * per read cost a connection setup between every two stages. The session is idle between reads (no
 * transaction, so no snapshot and no lock for a lock step or a snapshot wait to see), and is opened
 * again when the server ended it meanwhile (a restart during a stage).
 */
class StateReader {
  private client: pg.Client | null = null;

  constructor(private readonly req: RunRequest) {}

  async read(counts = false): Promise<RunState | null> {
    const reused = this.client !== null;
    try {
      this.client ??= await connectClient(this.req.connection);
      return await readState(this.client, this.req.plan.manifest, { counts });
    } catch (e) {
      await this.close();
      if (!reused) throw e;
      this.client = await connectClient(this.req.connection);
      return await readState(this.client, this.req.plan.manifest, { counts });
    }
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }
}

/**
 * Executes the reviewed bytes: checks every file against the manifest, then
 * sends each statement of each stage in order. Where to start comes from the
 * database, so a second `run` after a crash continues the first.
 */
export async function run(request: RunRequest): Promise<RunSummary> {
  checkPlanIntegrity(request.plan, request.expectHash);
  const locks: LockReport[] = [];
  const req: StageRequest = {
    ...request,
    onEvent: (e) => {
      if (e.type === 'lock-report') locks.push(e.report);
      request.onEvent(e);
    },
    sessions: new StageSessions(request),
  };
  const states = new StateReader(req);
  try {
    return { ...(await runStages(req, states)), locks };
  } catch (e) {
    const gaveUp = locks.filter((r) => r.outcome !== 'acquired' && !recorded.has(r));
    if (e instanceof UserError && e.code === 'STAGE_FAILED' && gaveUp.length > 0) await recordGaveUp(req, gaveUp);
    throw e;
  } finally {
    await req.sessions.close();
    await states.close();
  }
}

/** Reports of steps that gave up, already added to the run's state. */
const recorded = new WeakSet<LockReport>();

/** Best effort: the stage's own error is what the caller must see, whatever happens here. */
async function recordGaveUp(req: RunRequest, reports: readonly LockReport[]): Promise<void> {
  for (const r of reports) recorded.add(r);
  try {
    const client = await connectClient(req.connection);
    try {
      await appendLockReports(client, req.plan.manifest, reports);
    } finally {
      await client.end().catch(() => undefined);
    }
  } catch {
    // The reports were already shown as they happened.
  }
}

async function runStages(req: StageRequest, states: StateReader): Promise<Omit<RunSummary, 'locks'>> {
  const timings: StageTiming[] = [];
  if (req.stage !== undefined) {
    const before = await states.read();
    let stage = req.stage;
    if (stage === 'revert' && (before?.stage === 'reverted' || before?.stage === 'aborting')) {
      // The swap back is committed; what is left of the revert (validating the foreign keys it moved
      // back, removing tool objects) is exactly what the abort stage does.
      req.onEvent({
        type: 'stage-skip',
        stage: 'revert',
        reason: `the run is at "${before.stage}": finishing with the abort stage`,
      });
      stage = 'abort';
    }
    timings.push({ stage, ms: await runStage(req, stage) });
    const after = await states.read(true);
    return { stages: timings, state: after, lastSeen: after ?? before, finished: false };
  }
  const until = req.until ?? 'cleanup';
  const untilIndex = FORWARD_STAGES.indexOf(until as (typeof FORWARD_STAGES)[number]);
  if (untilIndex < 0)
    throw new UserError('BAD_ARGUMENT', `--until takes a forward stage (${FORWARD_STAGES.join(', ')}), not ${until}`);
  let state = await states.read();
  let lastSeen = state;
  const hasVerify = req.plan.manifest.stages.some((s) => s.name === 'verify');
  for (;;) {
    const next = nextForwardStage(state, hasVerify);
    if (next === 'abort') {
      // An interrupted abort, or a revert interrupted after swapping back: finish it, never go forward.
      timings.push({ stage: 'abort', ms: await runStage(req, 'abort') });
      return { stages: timings, state: null, lastSeen, finished: true };
    }
    if (next === 'done') break;
    const index = FORWARD_STAGES.indexOf(next as (typeof FORWARD_STAGES)[number]);
    if (index > untilIndex) break;
    timings.push({ stage: next, ms: await runStage(req, next) });
    if (next === 'cleanup') {
      return { stages: timings, state: null, lastSeen, finished: true };
    }
    const after = await states.read();
    if (after !== null) lastSeen = after;
    // preflight records nothing: move on to setup explicitly.
    if (next === 'preflight') {
      if (untilIndex === 0) break;
      timings.push({ stage: 'setup', ms: await runStage(req, 'setup') });
      state = await states.read();
      if (state !== null) lastSeen = state;
      continue;
    }
    if (after?.stage === state?.stage && next !== 'setup') {
      throw new UserError('RUN_STATE', `stage ${next} ended without recording progress; see the notices above`);
    }
    state = after;
  }
  return { stages: timings, state: await states.read(true), lastSeen, finished: false };
}
