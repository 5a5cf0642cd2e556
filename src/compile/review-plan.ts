import { qualified } from '../model/quote.js';
import type { PlanManifest } from './compile.js';
import { HAZARD_TEXT, type HazardCode, type StageName } from './stages.js';

/**
 * The review summary's sections that turn the plan into numbers and a
 * timeline: hazards with their sizes, a duration estimate, the lock table per
 * stage, what can block each stage, and how to stop or go back at each point.
 * Everything comes from plan.json (options, environment facts, stages).
 */

/** Rates the duration estimate assumes, stated in the summary (the README's benchmark copies faster). */
export const ASSUMED_COPY_ROWS_PER_SECOND = 100_000;
export const ASSUMED_INDEX_BYTES_PER_SECOND = 50 * 1024 * 1024;

export function bytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

export function duration(seconds: number): string {
  if (seconds < 1) return 'under 1 s';
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** The size a hazard is about, when it has one. */
function hazardSize(code: HazardCode, m: PlanManifest): string | null {
  const e = m.environment;
  switch (code) {
    case 'NEEDS_DISK':
      return `≈ ${bytes(e.totalBytes)} (table ${bytes(e.tableBytes)} + indexes ${bytes(e.indexBytes)}), plus the change log`;
    case 'WAL_VOLUME':
      return `≈ ${bytes(e.totalBytes)} for the copy and its indexes, plus about twice the size of each application write during the run (the row and its change-log entry)`;
    default:
      return null;
  }
}

export function hazardLines(m: PlanManifest): string[] {
  const codes = [...new Set(m.stages.flatMap((s) => s.hazards))].sort() as HazardCode[];
  return codes.map((c) => {
    const size = hazardSize(c, m);
    return `- **${c}**: ${HAZARD_TEXT[c]}.${size === null ? '' : ` Here: ${size}.`}`;
  });
}

/** The duration estimate's parts, in seconds, at the assumed rates (the plan's rows/s ceiling if lower). */
export function durationEstimate(m: PlanManifest): {
  readonly rate: number;
  readonly copy: number;
  readonly build: number;
  readonly verify: number;
} {
  const e = m.environment;
  const ceiling = m.options.maxRowsPerSecond > 0 ? m.options.maxRowsPerSecond : Infinity;
  const rate = Math.min(ASSUMED_COPY_ROWS_PER_SECOND, ceiling);
  const verify = m.stages.some((s) => s.name === 'verify') ? e.reltuples / ASSUMED_COPY_ROWS_PER_SECOND : 0;
  return { rate, copy: e.reltuples / rate, build: e.indexBytes / ASSUMED_INDEX_BYTES_PER_SECOND, verify };
}

export function durationLines(m: PlanManifest): string[] {
  const o = m.options;
  const ceiling = o.maxRowsPerSecond > 0 ? o.maxRowsPerSecond : Infinity;
  const { rate, copy, build, verify } = durationEstimate(m);
  const rateText =
    rate === ceiling
      ? `${rate.toLocaleString('en-US')} rows/s (the plan's rows/s ceiling)`
      : `${rate.toLocaleString('en-US')} rows/s`;
  return [
    `- Duration ≈ ${duration(copy + build + verify)} at an assumed ${rateText} for the backfill (${duration(copy)}) and ${ASSUMED_INDEX_BYTES_PER_SECOND / (1024 * 1024)} MB/s of index for the build (${duration(build)})${verify > 0 ? `, plus the verify stage reading both tables (${duration(verify)})` : ''}; catch-up adds the time to apply what the application writes meanwhile. The runner's progress shows the real rate.`,
  ];
}

interface LockRow {
  readonly stage: string;
  readonly relation: string;
  readonly mode: string;
  readonly blocks: string;
  readonly atMost: string;
}

function lockRows(m: PlanManifest): LockRow[] {
  const o = m.options;
  const table = qualified(m.table.schema, m.table.name);
  const attempt = `waits ≤ ${o.lockTimeoutMs} ms per attempt, ≤ ${o.lockBudgetMs} ms in all`;
  const rows: LockRow[] = [];
  for (const s of m.stages) {
    const hold = holdText(s.name, m);
    for (const l of s.locks) {
      rows.push({
        stage: s.file,
        relation: l.relation,
        mode: l.mode,
        blocks: l.blocksApplication ? blocksText(l.mode) : 'no application session (tool object)',
        atMost: l.blocksApplication ? `${attempt}; held ${hold}` : `held ${hold}`,
      });
    }
    if (s.name === 'backfill' || s.name === 'catchup' || s.name === 'verify') {
      rows.push({
        stage: s.file,
        relation: table,
        mode: 'ACCESS SHARE',
        blocks: 'only DDL (ALTER, DROP, TRUNCATE, VACUUM FULL)',
        atMost: s.name === 'backfill' ? 'one batch at a time' : 'one round at a time',
      });
    }
    if (s.name === 'build')
      rows.push({
        stage: s.file,
        relation: 'the copy',
        mode: 'SHARE / ACCESS EXCLUSIVE',
        blocks: 'no application session (the copy)',
        atMost: 'one index or constraint at a time',
      });
    if ((s.name === 'swap' || s.name === 'revert') && fkCount(m) > 0) {
      rows.push({
        stage: s.file,
        relation: `${table} and the tables with its foreign keys`,
        mode: 'SHARE UPDATE EXCLUSIVE (VALIDATE, after COMMIT)',
        blocks: 'no reader or writer; other DDL and VACUUM wait',
        atMost: 'one foreign key scan per transaction',
      });
    }
  }
  return rows;
}

function fkCount(m: PlanManifest): number {
  return m.model.referencedBy.length + m.model.constraints.filter((c) => c.kind === 'foreign-key').length;
}

function blocksText(mode: string): string {
  return mode === 'ACCESS EXCLUSIVE'
    ? 'every reader and writer'
    : mode === 'SHARE ROW EXCLUSIVE'
      ? 'writers (INSERT, UPDATE, DELETE), not readers'
      : 'see the PostgreSQL lock table';
}

function holdText(stage: StageName, m: PlanManifest): string {
  const o = m.options;
  switch (stage) {
    case 'setup':
      return 'until COMMIT: two CREATE TRIGGER statements (milliseconds)';
    case 'swap':
    case 'revert':
      return `until COMMIT: applying ≲ ${o.swapBacklog} log entries and the renames, each statement ≤ ${o.swapStatementTimeoutMs} ms`;
    case 'cleanup':
    case 'abort':
      return 'until COMMIT: dropping the tool triggers (milliseconds)';
    case 'preflight':
    case 'backfill':
    case 'build':
    case 'catchup':
    case 'verify':
      return 'briefly';
  }
}

/** A name inside a Markdown table cell: a `|` or a line break would end the cell or the row. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', '\\n');
}

export function lockTableLines(m: PlanManifest): string[] {
  const out = ['| stage | relation | mode | blocks | at most |', '|---|---|---|---|---|'];
  for (const r of lockRows(m))
    out.push(`| \`${r.stage}\` | ${cell(r.relation)} | ${r.mode} | ${r.blocks} | ${r.atMost} |`);
  return out;
}
