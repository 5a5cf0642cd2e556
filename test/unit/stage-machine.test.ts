import { describe, expect, it } from 'vitest';
import { ALL_STAGES, planStages } from '../../src/compile/stages.js';
import {
  checkMachine,
  guardRules,
  nextStage,
  requiresText,
  RUN_STATES,
  stageMachine,
  stageRecord,
  type RunStateName,
} from '../../src/compile/stage-machine.js';

const BEFORE_SWAP: (RunStateName | null)[] = [
  null,
  'setup-started',
  'setup',
  'backfill',
  'build',
  'catchup',
  'verified',
];

describe.each([{ verifyRanges: 0 }, { verifyRanges: 4 }])(
  'the stage machine (verifyRanges $verifyRanges)',
  (options) => {
    const machine = stageMachine(options);
    const stages = planStages(options);
    const hasVerify = options.verifyRanges > 0;
    // The states a run of this plan can be in (a plan without verify never records "verified").
    const states: (RunStateName | null)[] = [null, ...RUN_STATES.filter((s) => hasVerify || s !== 'verified')];

    it('lists every stage once', () => {
      expect(() => checkMachine(machine)).not.toThrow();
      expect(machine.map((r) => r.stage).sort()).toEqual([...ALL_STAGES].sort());
    });

    it('gives every state exactly one next stage, as the runner always went', () => {
      const expected: Record<string, string> = {
        null: 'preflight',
        'setup-started': 'setup',
        setup: 'backfill',
        backfill: 'build',
        build: 'catchup',
        catchup: hasVerify ? 'verify' : 'swap',
        verified: 'swap',
        swap: 'cleanup',
        'cleanup-started': 'cleanup',
        aborting: 'abort',
        reverted: 'abort',
      };
      for (const s of states) expect([s, nextStage(machine, stages, s)]).toEqual([s, expected[String(s)]]);
      // Exactly one forward stage moves a run on from each forward state.
      for (const s of states.filter((x) => x !== 'aborting' && x !== 'reverted' && x !== null)) {
        const movers = machine.filter(
          (r) =>
            stages.includes(r.stage) &&
            r.kind === 'forward' &&
            r.from !== 'any' &&
            r.from.includes(s) &&
            (r.records !== s || r.removesRun === true),
        );
        const resumers = machine.filter((r) => r.recordsFirst === s);
        expect([s, movers.length + resumers.length]).toEqual([s, 1]);
      }
    });

    it('walks forward from setup to cleanup through every stage of the plan, in order', () => {
      const walked: string[] = [];
      let state: RunStateName | null = stageMachine(options).find((r) => r.stage === 'setup')!.records;
      walked.push('setup');
      while (state !== null) {
        const next = nextStage(machine, stages, state);
        walked.push(next);
        const rule = machine.find((r) => r.stage === next)!;
        state = rule.removesRun === true ? null : rule.records;
      }
      expect(walked).toEqual(stages.filter((s) => s !== 'preflight' && s !== 'abort' && s !== 'revert'));
    });

    it('lets abort start from every state before the swap and from an interrupted abort or revert, never after the swap', () => {
      const abort = machine.find((r) => r.stage === 'abort')!;
      expect(abort.from).toEqual([...BEFORE_SWAP, 'aborting', 'reverted']);
      expect(stageRecord(machine, 'abort').refused).toBe("'swap', 'cleanup-started'");
    });

    it('lets revert start only from the swap, until cleanup starts', () => {
      expect(machine.find((r) => r.stage === 'revert')!.from).toEqual(['swap']);
    });

    it('says what each stage requires', () => {
      expect(Object.fromEntries(ALL_STAGES.map((s) => [s, requiresText(machine, s)]))).toEqual({
        preflight: 'nothing',
        setup: 'no run on this table',
        backfill: 'setup',
        build: 'backfill',
        catchup: 'build',
        verify: 'catchup',
        swap: hasVerify ? 'verify, passed' : 'catchup',
        cleanup: 'swap',
        abort: 'any stage before swap',
        revert: 'swap',
      });
    });

    it('gives the guard one rule per checkpoint, with the states in which the stage already ran', () => {
      const rules = guardRules(machine);
      expect(rules.map((r) => r.stage)).toEqual([
        'backfill',
        'build',
        'catchup',
        'verify',
        'swap',
        'swap-locked',
        'revert',
        'revert-locked',
      ]);
      expect(rules.find((r) => r.stage === 'build')).toMatchObject({
        allowed: "'backfill', 'build'",
        done: "'catchup', 'verified', 'swap', 'cleanup-started'",
        checkFingerprint: true,
        triggers: 'capture',
      });
      expect(rules.find((r) => r.stage === 'swap-locked')).toMatchObject({
        allowed: hasVerify ? "'verified'" : "'catchup'",
        done: "'swap', 'cleanup-started'",
      });
      expect(rules.find((r) => r.stage === 'revert')).toMatchObject({
        allowed: "'swap'",
        done: null,
        checkFingerprint: false,
        triggers: 'reverse',
      });
    });
  },
);
