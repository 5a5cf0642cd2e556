import type { PlanManifest } from './compile.js';

/**
 * Who made a plan, when, and through which connection. Shown to the approver at the top of the
 * review summary and by `show`, kept in plan.json under `provenance`, and left out of the plan hash
 * and the plan id on purpose: two plans of the same table, schema and options are the same plan
 * (byte-identical scripts, the same hash) whoever made them, whenever and through whichever host
 * name. What the hash does bind about the environment — the database's name and OID and the
 * cluster's system identifier — is in `environment` and in binding.sql.
 */
export interface PlanProvenance {
  /** ISO 8601, UTC, to the second. */
  readonly plannedAt: string;
  /** current_user of the planning session. */
  readonly role: string;
  /** --run-as: the role whose privileges were checked, when not the planning one. */
  readonly runAs: string | null;
  /** The host (or socket directory) and port the planning session connected to, as the client saw them. */
  readonly host: string | null;
  readonly port: number | null;
  /** The `shadowpack plan …` command line, without a password; null when planned through the library. */
  readonly command: string | null;
}

/**
 * The line that ends the header of README.md. The header is printed from plan.json (it holds the
 * plan hash, which cannot be inside what it hashes); everything after this line is covered by the
 * plan hash through `readmeSha256`.
 */
export const HEADER_END =
  '<!-- end of the header (printed from plan.json); what follows is covered by the plan hash -->';

/** README.md = header + body; the body is what readmeSha256 covers. A README without a header is all body. */
export function splitReadme(text: string): { readonly header: string | null; readonly body: string } {
  const end = `\n${HEADER_END}\n\n`;
  const at = text.indexOf(end);
  if (at < 0) return { header: null, body: text };
  return { header: text.slice(0, at + end.length), body: text.slice(at + end.length) };
}

function code(s: string): string {
  // A backtick in a name or command would end the code span: use a longer fence then.
  return s.includes('`') ? `\`\` ${s} \`\`` : `\`${s}\``;
}

/** The approver's header: the hash to approve, where and how the plan was made, and the exact commands. */
export function headerText(m: PlanManifest): string {
  const p = m.provenance;
  const e = m.environment;
  const hash = m.planHash;
  const place = [
    p?.host != null ? `host ${code(p.host)}${p.port != null ? ` port ${p.port}` : ''}` : 'host not recorded',
    `database ${code(e.database)}`,
    e.systemIdentifier !== null
      ? `cluster id ${e.systemIdentifier}`
      : `database OID ${e.databaseOid} (the cluster id was not readable)`,
    `PostgreSQL ${e.serverVersion}`,
  ].join(', ');
  const rows: [string, string][] = [
    ['plan hash', `${code(hash)} — approve this one; \`run --expect-hash\` refuses any other`],
    ['planned at', p ? `${p.plannedAt.replace('T', ' ').replace(/\.\d+Z$|Z$/, '')} UTC` : 'not recorded'],
    [
      'planned by',
      p
        ? `role ${code(p.role)}${p.runAs !== null ? `; privileges checked for ${code(p.runAs)} (\`--run-as\`)` : ''}`
        : 'not recorded',
    ],
    ['planned on', place],
    ['command', p?.command != null ? code(p.command) : 'not recorded'],
    ['tool', `shadowpack ${m.tool.version}, plan format ${m.formatVersion}`],
  ];
  const cell = (s: string) => s.replaceAll('|', '\\|');
  const lines = [
    `# shadowpack plan: rebuild ${m.table.schema}.${m.table.name}`,
    '',
    '| | |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${cell(v)} |`),
    '',
    'Run it (DIR is this folder; see Runbook):',
    '',
    '```sh',
    `shadowpack run --plan DIR --until swap --expect-hash ${hash}     # stops after the swap, revert window open`,
    'shadowpack verify --plan DIR',
    `shadowpack run --plan DIR --until cleanup --expect-hash ${hash}   # ends the revert window`,
    ...(m.transform?.reverse === null
      ? []
      : [`shadowpack run --plan DIR --stage revert --expect-hash ${hash}    # or go back instead`]),
    '```',
    '',
    'Planned at, by, host and command are kept in `plan.json` (`provenance`), outside the plan hash: they change nothing that runs. The database and the cluster id are inside it, and `binding.sql` refuses any other.',
    '',
    HEADER_END,
    '',
    '',
  ];
  return lines.join('\n');
}
