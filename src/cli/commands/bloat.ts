import { jsonAnswer } from '../machine-output.js';
import { bytes } from '../../compile/review-plan.js';
import { readBloat, type TableBloat } from '../../introspect/bloat.js';
import { UserError } from '../../model/errors.js';
import { connectClient } from '../../run/connect.js';
import { connectionConfig } from '../connection.js';

export interface BloatArgs {
  readonly url?: string;
  readonly schemas: readonly string[];
  readonly minRatio: number;
  readonly minSize: string;
  readonly json: boolean;
}

const UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 };

/** "500", "64kB", "10MB", "1.5 GB" (PostgreSQL's units, case-insensitive) → bytes. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new UserError(
      'BAD_ARGUMENT',
      `--min-size ${text}: give a size such as 10MB, 500kB or 1GB (units B, kB, MB, GB, TB)`,
    );
  return Math.round(Number(m[1]) * unit);
}

const METHOD_TEXT: Readonly<Record<TableBloat['method'], string>> = {
  pgstattuple_approx: 'pgstattuple',
  statistics: 'stats',
  'dead-tuples': 'dead tuples',
  none: 'no data',
};

/** `shadowpack bloat`: the tables worth rebuilding, largest reclaimable first. Read-only. */
export async function bloatCommand(args: BloatArgs, out: (line: string) => void): Promise<void> {
  if (!(args.minRatio >= 0 && args.minRatio <= 1))
    throw new UserError(
      'BAD_ARGUMENT',
      `--min-ratio ${args.minRatio}: give a fraction from 0 to 1 (0.2 = a fifth of the table is reclaimable)`,
    );
  const minSizeBytes = parseSize(args.minSize);
  const client = await connectClient(connectionConfig(args.url));
  try {
    const { tables, pgstattuple } = await readBloat(client, {
      schemas: args.schemas,
      minRatio: args.minRatio,
      minSizeBytes,
    });
    if (args.json) {
      out(jsonAnswer({ estimate: pgstattuple ? 'pgstattuple_approx' : 'statistics', tables }));
      return;
    }
    out(
      pgstattuple
        ? 'bloat measured with pgstattuple_approx'
        : 'bloat estimated from planner statistics (CREATE EXTENSION pgstattuple for a measured figure); "dead tuples" where a table was never analysed',
    );
    if (tables.length === 0) {
      out('no table matches');
      return;
    }
    const rows = tables.map((t) => [
      `${t.schema}.${t.name}`,
      bytes(t.totalBytes),
      `${(t.ratio * 100).toFixed(0)}%`,
      bytes(t.reclaimableBytes),
      bytes(t.diskNeededBytes),
      METHOD_TEXT[t.method],
      t.refusal === null ? 'yes' : `no: ${t.refusal}`,
    ]);
    const header = ['table', 'size', 'bloat', 'reclaimable', 'disk needed', 'from', 'can rebuild'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    // The last column is free text: never padded.
    const line = (cells: readonly string[]) =>
      cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
    out(line(header));
    for (const r of rows) out(line(r));
    const eligible = tables.filter((t) => t.refusal === null);
    out(
      `${eligible.length} of ${tables.length} can be rebuilt, reclaiming about ${bytes(eligible.reduce((s, t) => s + t.reclaimableBytes, 0))}`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
