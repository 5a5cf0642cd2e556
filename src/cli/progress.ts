import { lockReportText, type RunEvent } from '../run/events.js';

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
export function progressPrinter(write: (text: string) => void, isTty: boolean, now: () => number = Date.now): (e: RunEvent) => void {
  let stageStart = now();
  let rows = 0;
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
        const eta = fraction > 0 ? (elapsed * (1 - fraction)) / fraction : 0;
        show(`  backfill ${bar(fraction)} ${(fraction * 100).toFixed(1)}% ${rows.toLocaleString('en-US')} rows ${Math.round(rate).toLocaleString('en-US')} rows/s ETA ${fmtMs(Math.round(eta))}`, fraction >= 1);
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
      case 'wait':
        show(`  waiting: ${e.message}`, true);
        return;
      case 'notice':
        endLive();
        write(`  ${e.message}\n`);
        return;
    }
  };
}
