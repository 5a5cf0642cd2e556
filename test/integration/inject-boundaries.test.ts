/**
 * Failure injected at statement boundaries of every stage, under a writer that
 * keeps a twin: after the first k statements the session is terminated, its
 * socket dropped, or psql stops there. Then either
 * - resume: the same stage is run again (psql) or the runner continues, to the
 *   end of the plan → the table equals its twin, nothing of the tool is left;
 * - back: abort before the swap, revert after it → the table's catalog is as
 *   before (signature, index and constraint names, validated state), it equals
 *   its twin, nothing of the tool is left.
 * `npm test` runs a sample (SHADOWPACK_INJECT_SAMPLE injections, default 30, from
 * SHADOWPACK_INJECT_SEED, printed); `npm run test:soak` runs every boundary
 * (SHADOWPACK_INJECT_STAGES=cleanup,revert: only those stages).
 * One database for all: each injection starts from no run and ends with none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, withClient, type FreshDatabase } from '../helpers/db.js';
import { catalogSnapshot, leftovers, planTable, psql } from '../helpers/rebuild.js';
import { KILL_HOWS, runPrefix, seeded, statementCount, type KillHow } from '../helpers/inject.js';
import { FORWARD_STAGES, PARALLEL_STAGES, stageInfo, type StageName } from '../../src/compile/stages.js';
import type { LoadedPlan } from '../../src/run/plan-check.js';
import { run } from '../../src/run/runner.js';
import { readFinished, readState } from '../../src/run/state.js';
import { compareWithTwin, createDemoSchema, startWriters, type Writers } from '../../src/dev/workload.js';
import { join } from 'node:path';

const SOAK = process.env.SHADOWPACK_SOAK === '1';
const SAMPLE = Number(process.env.SHADOWPACK_INJECT_SAMPLE ?? 30);
const SEED = Number(process.env.SHADOWPACK_INJECT_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Only these stages (comma-separated), to go over a part of the soak again. */
const ONLY = process.env.SHADOWPACK_INJECT_STAGES?.split(',');

type Path = 'resume' | 'back';
interface Injection {
  readonly stage: StageName;
  readonly k: number;
  readonly of: number;
  readonly how: KillHow;
  readonly path: Path;
}

const PRE_SWAP: readonly string[] = ['setup', 'backfill', 'build', 'catchup', 'verified', 'aborting', 'reverted'];
// With the optional verify stage, so its boundaries are cut too.
const PLAN_OPTIONS = { batchPages: 2, catchupTarget: 0, catchupRounds: 2, advisoryWaitSeconds: 30, verifyRanges: 4 };

/**
 * Sessions of the runner's parallel stages for this injection: every other one runs with four
 * (`run --jobs 4`), so a stage cut in one session is also resumed by several at once.
 */
function jobsOf(i: Injection): number {
  return i.k % 2 === 0 ? 4 : 1;
}

function label(i: Injection): string {
  return `${i.stage} after statement ${i.k} of ${i.of} (${i.how}), then ${i.path} (${jobsOf(i)} session(s) in parallel stages)`;
}

/** Every boundary inside every stage; abort and revert are only ever finished by running them again. */
function allInjections(plan: LoadedPlan): Injection[] {
  const out: Injection[] = [];
  for (const { name: stage } of plan.manifest.stages) {
    const of = statementCount(plan, stage);
    const paths: Path[] = stage === 'abort' || stage === 'revert' ? ['back'] : ['resume', 'back'];
    for (let k = 1; k < of; k++) {
      paths.forEach((path, p) => out.push({ stage, k, of, how: KILL_HOWS[(k + p) % KILL_HOWS.length]!, path }));
    }
  }
  return out;
}

/** A sample that covers every stage: a share of the boundaries in proportion to its length, at least three. */
function sample(all: Injection[], size: number, random: () => number): Injection[] {
  const picked: Injection[] = [];
  for (const stage of new Set(all.map((i) => i.stage))) {
    const own = all.filter((i) => i.stage === stage);
    const want = Math.min(own.length, Math.max(3, Math.round((size * own.length) / all.length)));
    const pool = [...own];
    for (let n = 0; n < want; n++) picked.push(pool.splice(Math.floor(random() * pool.length), 1)[0]!);
  }
  return picked;
}

describe('failure injected at statement boundaries', () => {
  let db: FreshDatabase;
  let plan: LoadedPlan;
  let writers: Writers;
  let original: Awaited<ReturnType<typeof catalogSnapshot>>;
  const noop = () => undefined;

  beforeAll(async () => {
    db = await freshDatabase('inject');
    await withClient(db.url, (c) => createDemoSchema(c, 300));
    // With the optional verify stage, so its boundaries are cut too.
    plan = await planTable(db.url, 'app', 'orders', PLAN_OPTIONS);
    original = await withClient(db.url, (c) => catalogSnapshot(c, 'app', 'orders'));
    writers = await startWriters({ connectionString: db.url }, 1, 5);
  });
  afterAll(async () => {
    await writers?.stop();
    await db?.drop();
  });

  const connection = () => ({ connectionString: db.url });

  /** The run brought to the point where `stage` starts. */
  async function reachStart(i: Injection): Promise<void> {
    const forward = plan.manifest.stages
      .map((s) => s.name)
      .filter((s) => (FORWARD_STAGES as readonly string[]).includes(s));
    const preSwap = forward.slice(1, forward.indexOf('swap'));
    let until: StageName | null;
    switch (i.stage) {
      case 'abort':
        // Abort from each stage before the swap in turn.
        until = preSwap[i.k % preSwap.length]!;
        break;
      case 'revert':
        until = 'swap';
        break;
      default: {
        // Setup starts with no run at all: the runner runs preflight and setup together.
        const at = forward.indexOf(i.stage);
        until = at <= 1 ? null : forward[at - 1]!;
      }
    }
    if (until !== null) await run({ plan, connection: connection(), until, jobs: jobsOf(i), onEvent: noop });
  }

  async function stateNow(): Promise<string | null> {
    return withClient(db.url, async (c) => (await readState(c, plan.manifest))?.stage ?? null);
  }

  async function psqlStage(stage: StageName) {
    return psql(db.url, join(plan.dir, stageInfo(stage).file));
  }

  async function resume(i: Injection): Promise<void> {
    if (i.how === 'psql') {
      // A psql user runs the same file again (a parallel stage in as many sessions as the runner
      // would use); when it already ran to the end, it says so and they go on.
      const sessions = PARALLEL_STAGES.has(i.stage) ? jobsOf(i) : 1;
      for (const again of await Promise.all(Array.from({ length: sessions }, () => psqlStage(i.stage)))) {
        if (again.code !== 0) expect(again.stderr, label(i)).toMatch(/already ran to the end|setup already done/);
      }
    }
    // The cut (or running cleanup again) finished the run: the plan has run once, and run would rightly refuse it.
    if ((await withClient(db.url, (c) => readFinished(c, plan.manifest)))?.outcome === 'cleaned') return;
    await run({ plan, connection: connection(), jobs: jobsOf(i), onEvent: noop });
  }

  async function back(i: Injection): Promise<void> {
    const state = await stateNow();
    const viaPsql = i.how === 'psql';
    if (state === null || PRE_SWAP.includes(state)) {
      if (viaPsql) {
        const r = await psqlStage('abort');
        expect(r.code, `${label(i)}: ${r.stderr}`).toBe(0);
      } else {
        await run({ plan, connection: connection(), stage: 'abort', onEvent: noop });
      }
    } else if (state === 'swap') {
      if (viaPsql) {
        const r = await psqlStage('revert');
        expect(r.code, `${label(i)}: ${r.stderr}`).toBe(0);
      } else {
        await run({ plan, connection: connection(), stage: 'revert', onEvent: noop });
      }
    } else {
      // Cleanup has dropped the old table: there is no way back, only forward, and revert says so.
      expect(state, label(i)).toBe('cleanup-started');
      await expect(run({ plan, connection: connection(), stage: 'revert', onEvent: noop }), label(i)).rejects.toThrow(
        /cannot run now: the run is at "cleanup-started"/,
      );
      await run({ plan, connection: connection(), jobs: jobsOf(i), onEvent: noop });
    }
    // A revert that stopped after swapping back is finished by abort (the runner does that by itself).
    const after = await stateNow();
    if (after === 'reverted' || after === 'aborting') {
      expect(viaPsql, `${label(i)}: the runner left the run at ${after}`).toBe(true);
      const r = await psqlStage('abort');
      expect(r.code, `${label(i)}: ${r.stderr}`).toBe(0);
    }
  }

  async function check(i: Injection, errorsBefore: number): Promise<void> {
    expect(await stateNow(), label(i)).toBeNull();
    await withClient(db.url, async (c) => {
      expect(await compareWithTwin(c), label(i)).toMatchObject({ missing: 0, extra: 0, badGenerated: 0 });
      expect(await leftovers(c), label(i)).toEqual([]);
      expect(await catalogSnapshot(c, 'app', 'orders'), label(i)).toEqual(original);
    });
    expect(writers.stats.errors - errorsBefore, `${label(i)}: ${writers.stats.lastError}`).toBe(0);
  }

  it(
    SOAK
      ? 'every boundary of every stage: resume or go back, nothing lost, nothing left'
      : `a sample of boundaries (seed ${SEED}): resume or go back, nothing lost, nothing left`,
    async () => {
      const all = allInjections(plan).filter((i) => ONLY === undefined || ONLY.includes(i.stage));
      const chosen = SOAK ? all : sample(all, SAMPLE, seeded(SEED));
      console.error(`[inject] ${chosen.length} of ${all.length} injections, seed ${SEED}`);
      const started = Date.now();
      for (const i of chosen) {
        const errorsBefore = writers.stats.errors;
        try {
          const t0 = Date.now();
          await reachStart(i);
          const t1 = Date.now();
          await runPrefix(db.url, plan, i.stage, i.k, i.how);
          const t2 = Date.now();
          if (i.path === 'resume') await resume(i);
          else await back(i);
          if (process.env.SHADOWPACK_INJECT_TIMES)
            console.error(
              `[inject] ${label(i)}: start ${t1 - t0} ms, prefix ${t2 - t1} ms, recovery ${Date.now() - t2} ms`,
            );
        } catch (e) {
          // Which injection it was, with the error as the runner reported it.
          throw new Error(`${label(i)}: ${(e as Error).message}`, { cause: e });
        }
        await check(i, errorsBefore);
        // A plan runs once: after a run that was cleaned up, the next injection needs a new plan (of the
        // rebuilt table, so a new plan id; its scripts are the same, so the boundaries are too).
        if ((await withClient(db.url, (c) => readFinished(c, plan.manifest)))?.outcome === 'cleaned') {
          plan = await planTable(db.url, 'app', 'orders', PLAN_OPTIONS);
        }
      }
      console.error(
        `[inject] done in ${((Date.now() - started) / 1000).toFixed(1)} s; writer: ${writers.stats.commits} commits`,
      );
      expect(writers.stats.commits).toBeGreaterThan(chosen.length);
    },
    SOAK ? 3_600_000 : 600_000,
  );
});
