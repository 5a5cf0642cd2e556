import { lockReportText, type RunEventOf } from '../run/events.js';
import { terminateHint } from '../run/terminate-hint.js';

const hint = (message: string): string => (terminateHint(message) === '' ? '' : `; ${terminateHint(message)}`);

function fmtMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 90) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function bar(fraction: number, width = 24): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return '[' + '#'.repeat(full) + '.'.repeat(width - full) + ']';
}

/**
 * Renders runner events for a person: a live line for backfill and catch-up
 * on a terminal, a line every few seconds elsewhere (CI logs).
 */
/** How long a wait may last at most, from its message (the plan's options), or null when it has no bound. */
export type WaitDeadline = (message: string) => number | null;

/** Notices of DROP … IF EXISTS that found nothing: noise for a person (still in --events and under psql). */
const SKIPPING = /does not exist, skipping$/;

/** A repeated wait is printed again at most this often, with the time waited so far. */
const WAIT_REPEAT_MS = 10_000;

/** The kind of a wait: its message without the numbers that change between polls (rounds, pids). */
function waitKind(message: string): string {
  return message.replace(/\d+/g, '#').slice(0, 40);
}

export function progressPrinter(
  write: (text: string) => void,
  isTty: boolean,
  now: () => number = Date.now,
  deadline: WaitDeadline = () => null,
): (e: RunEventOf<string>) => void {
  let stageStart = now();
  // Per kind of wait in this stage: when it was first seen and last printed.
  let waits = new Map<string, { first: number; printed: number }>();
  let rows = 0;
  // The first backfill event of this stage: where this run (maybe a resume) picked up, and when.
  let first: { page: number; at: number } | null = null;
  let lastLine = 0;
  let live = false;
  const endLive = () => {
    if (live) write('\n');
    live = false;
  };
  const show = (text: string, force = false) => {
    if (isTty) {
      write(`\r\x1b[K${text}`);
      live = true;
    } else if (force || now() - lastLine > 2000) {
      write(text + '\n');
      lastLine = now();
    }
  };
  return (e) => {
    switch (e.type) {
      case 'stage-start':
        endLive();
        stageStart = now();
        rows = 0;
        first = null;
        waits = new Map();
        write(`» ${e.stage} (${e.file})\n`);
        return;
      case 'stage-skip':
        endLive();
        write(`  ${e.stage} skipped: ${e.reason}\n`);
        return;
      case 'stage-end':
        endLive();
        write(`  ${e.stage} done in ${fmtMs(e.ms)}\n`);
        return;
      case 'backfill': {
        rows += e.rows;
        const elapsed = Math.max(1, now() - stageStart);
        const fraction = e.pages === 0 ? 1 : e.page / e.pages;
        const rate = (rows * 1000) / elapsed;
        // The pages left at the pace of this run's own pages since its first report: after a resume
        // the fraction done is cumulative, this run's time is not (newcomer review finding 31).
        const t = now();
        first ??= { page: e.page, at: t };
        const pace = (e.page - first.page) / Math.max(1, t - first.at);
        const eta =
          fraction >= 1
            ? 'ETA 0 ms'
            : pace > 0
              ? `ETA ${fmtMs(Math.round((e.pages - e.page) / pace))}`
              : 'ETA after the next batch';
        show(
          `  backfill ${bar(fraction)} ${(fraction * 100).toFixed(1)}% of the pages, ${rows.toLocaleString('en-US')} rows copied by this run, ${Math.round(rate).toLocaleString('en-US')} rows/s ${eta}`,
          fraction >= 1,
        );
        return;
      }
      case 'apply':
        show(`  ${e.phase} round ${e.round}: applied ${e.applied}, backlog ${e.backlog}`);
        return;
      case 'lock':
        endLive();
        write(`  lock: ${e.what}: ${e.attempts} attempt(s), waited ${fmtMs(e.waitedMs)}\n`);
        return;
      case 'lock-report':
        endLive();
        write(`  lock report: ${lockReportText(e.report)}\n`);
        return;
      case 'lock-retry':
        endLive();
        write(`  lock: ${e.what}: attempt ${e.attempt} timed out, retrying\n`);
        return;
      case 'wait': {
        // Once when it starts, then every few seconds with the time waited and the bound.
        const kind = waitKind(e.message);
        const seen = waits.get(kind);
        const t = now();
        if (seen === undefined) {
          waits.set(kind, { first: t, printed: t });
          const limit = deadline(e.message);
          show(
            `  waiting: ${e.message}${limit === null ? '' : ` (at most ${fmtMs(limit * 1000)})`}${hint(e.message)}`,
            true,
          );
        } else if (t - seen.printed >= WAIT_REPEAT_MS) {
          seen.printed = t;
          const limit = deadline(e.message);
          show(
            `  still waiting after ${fmtMs(t - seen.first)}${limit === null ? '' : ` of at most ${fmtMs(limit * 1000)}`}: ${e.message}${hint(e.message)}`,
            true,
          );
        }
        return;
      }
      case 'notice':
        if (SKIPPING.test(e.message)) return;
        endLive();
        write(`  ${e.message}\n`);
        return;
    }
  };
}
