import type { StageName } from '../compile/stages.js';

/** What a locking step reports (the JSON of a `shadowpack:lock-report` notice). Times in ms. */
export interface LockReport {
  readonly step: string;
  readonly lock: string;
  /**
   * acquired, or why it gave up: held (a long-held lock), budget, timed-out, snapshots (swap, revert: sessions
   * with snapshots older than the lock), backlog (swap, revert: the log outgrew --swap-backlog; run again).
   */
  readonly outcome: string;
  /** LOCK attempts made; rounds skipped behind a long-held lock are counted in `skipped`. */
  readonly attempts: number;
  readonly skipped: number;
  /** From the first round until the lock was taken (or the step gave up). */
  readonly waited_ms: number;
  /** The part of it spent in the lock queue: what the application may have queued behind us. */
  readonly queued_ms: number;
  /** From taking the lock until just before the commit that ends it; absent when not acquired. */
  readonly held_ms?: number;
  readonly cancelled: readonly number[];
  /**
   * Autovacuum workers found holding a lock this step needed: cancelled (an ordinary autovacuum), or
   * waited for, and why (anti-wraparound, or this role may not cancel it). Absent when there were none.
   */
  readonly autovacuum?: readonly { readonly pid: number; readonly query: string | null; readonly action: string }[];
  /**
   * Subtransactions with an xid in the step's transaction at the report (PostgreSQL 16+): at most
   * the one attempt that took the lock; timed-out attempts add none.
   */
  readonly subxacts?: number;
  /** Swap and revert: the log entries applied while the lock was held (the review bounds them by --swap-backlog). */
  readonly entries_applied_under_lock?: number;
}

/**
 * What the runner reports while it works; the CLI turns these into a progress display or JSON lines.
 * `S` names the stage: a rebuild's StageName, or a move's `<stage>.<side>` (src/run/move-runner.ts).
 */
export type RunEventOf<S extends string> =
  | { readonly type: 'stage-start'; readonly stage: S; readonly file: string }
  | { readonly type: 'stage-skip'; readonly stage: S; readonly reason: string }
  | { readonly type: 'stage-end'; readonly stage: S; readonly ms: number }
  | {
      readonly type: 'backfill';
      readonly stage: S;
      readonly page: number;
      readonly pages: number;
      readonly rows: number;
    }
  | {
      readonly type: 'apply';
      readonly stage: S;
      readonly phase: string;
      readonly round: number;
      readonly applied: number;
      readonly backlog: number;
    }
  | {
      readonly type: 'lock';
      readonly stage: S;
      readonly what: string;
      readonly attempts: number;
      readonly waitedMs: number;
    }
  | { readonly type: 'lock-report'; readonly stage: S; readonly report: LockReport }
  | { readonly type: 'lock-retry'; readonly stage: S; readonly what: string; readonly attempt: number }
  | { readonly type: 'wait'; readonly stage: S; readonly message: string }
  | { readonly type: 'notice'; readonly stage: S; readonly message: string };

export type RunEvent = RunEventOf<StageName>;

const PROGRESS_BACKFILL = /^shadowpack:progress backfill page=(\d+) of=(\d+) rows=(\d+)$/;
const PROGRESS_APPLY = /^shadowpack:progress (\w+) round=(\d+) applied=(\d+) backlog=(\d+)$/;
const LOCK = /^shadowpack:lock (.*) acquired attempts=(\d+) waited_ms=(\d+)$/;
const LOCK_RETRY = /^shadowpack:lock-retry (.*) attempt (\d+) timed out$/;
const LOCK_REPORT = /^shadowpack:lock-report (\{.*\})$/s;
const WAIT = /^shadowpack:wait (.*)$/s;

/** Turns a NOTICE from a stage script into an event. */
export function noticeEvent<S extends string>(stage: S, message: string): RunEventOf<S> {
  let m = PROGRESS_BACKFILL.exec(message);
  if (m) return { type: 'backfill', stage, page: Number(m[1]), pages: Number(m[2]), rows: Number(m[3]) };
  m = PROGRESS_APPLY.exec(message);
  if (m)
    return { type: 'apply', stage, phase: m[1]!, round: Number(m[2]), applied: Number(m[3]), backlog: Number(m[4]) };
  m = LOCK.exec(message);
  if (m) return { type: 'lock', stage, what: m[1]!, attempts: Number(m[2]), waitedMs: Number(m[3]) };
  m = LOCK_REPORT.exec(message);
  if (m) return { type: 'lock-report', stage, report: JSON.parse(m[1]!) as LockReport };
  m = LOCK_RETRY.exec(message);
  if (m) return { type: 'lock-retry', stage, what: m[1]!, attempt: Number(m[2]) };
  m = WAIT.exec(message);
  if (m) return { type: 'wait', stage, message: m[1]! };
  return { type: 'notice', stage, message };
}

/** One line for a person: `swap: acquired after 2 attempt(s) ...`. */
export function lockReportText(r: LockReport): string {
  const applied =
    r.entries_applied_under_lock === undefined ? '' : ` applying ${r.entries_applied_under_lock} log entries`;
  const held = r.held_ms === undefined ? '' : `, held ${r.held_ms} ms${applied}`;
  const skipped = r.skipped > 0 ? `, ${r.skipped} round(s) waited out behind a long-held lock` : '';
  const cancelled = r.cancelled.length > 0 ? `, cancelled pid ${r.cancelled.join(', ')}` : '';
  const autovacuum = (r.autovacuum ?? []).map((a) => `, autovacuum pid ${a.pid} ${a.action}`).join('');
  return `${r.step}: ${r.outcome} after ${r.attempts} attempt(s)${skipped}, waited ${r.waited_ms} ms (application queued behind us ${r.queued_ms} ms)${held}${cancelled}${autovacuum}`;
}
