import { usesOutsideGroup, type MoveInput } from './context.js';
import { MOVE_STAGES, moveStagesFor, type MoveHazardCode, type MovePlanManifest } from './stages.js';

export const MOVE_HAZARD_TEXT: { readonly [K in MoveHazardCode]: string } = {
  FDW_PASSWORD_IN_CATALOG:
    "with a password (SHADOWPACK_FDW_PASSWORD at run time), the target keeps it in pg_user_mapping until 08-cleanup.target.sql or 90-abort.target.sql drops the mapping: the target's superusers can read it meanwhile, and it is in the target's WAL (so its standbys, WAL archive and backups of that time); it reaches the server as COPY data (psql: \\copy … FROM PROGRAM 'printenv …'), so no statement log (log_statement = all) or pg_stat_activity shows it, but an extension recording nested statements (pg_stat_statements with track = all) may keep the CREATE USER MAPPING with it; --fdw-auth scram-passthrough (target 18+), cert or pgpass store none",
  SHARE_ROW_EXCLUSIVE_LOCK:
    'takes SHARE ROW EXCLUSIVE on every table of the group briefly (blocks writers, not readers), bounded attempts',
  WRITE_OVERHEAD: 'every write to the group on the source also writes a change-log row until cleanup',
  TRUNCATE_BLOCKED: 'TRUNCATE of the group on the source is refused until the move ends',
  WRITE_FREEZE:
    'from the fence on, every write to the group on the source fails with a message naming the target, until the application writes to the target (after 07-cutover.target.sql); pause the pooler first to queue instead of failing',
  LOG_GROWTH:
    'the source change logs grow at the write rate until the catch-up prunes them (not before the backfill has finished)',
  FK_REVALIDATION:
    'foreign keys are added NOT VALID at the cut-over and validated after it, one per transaction, blocking no writer',
  GENERATED_COLUMNS_RECOMPUTED: 'generated columns are computed again by the target server',
  TARGET_WRITE_OVERHEAD:
    "--reversible: from the cut-over until 08-cleanup.target.sql, every write to the group on the target also writes a change-log row there (what a revert carries back: more WAL and I/O per write), and only a revert's rounds prune those logs: they grow at the target's write rate",
  TARGET_TRUNCATE_BLOCKED:
    '--reversible: TRUNCATE of the group on the target is refused from the cut-over until 08-cleanup.target.sql',
  REVERT_WINDOW:
    '--reversible: between the cut-over and 08-cleanup.target.sql the move may be taken back; the source stays fenced meanwhile and falls behind by every write made on the target; 08-cleanup.target.sql ends the window (the target stops capturing; a revert is impossible from then on)',
  REVERT_FDW_PASSWORD_IN_CATALOG:
    "--reversible with --fdw-auth password: 91-revert.source.sql stores the target role's password (SHADOWPACK_REVERT_FDW_PASSWORD at run time, sent as COPY data) in the source's pg_user_mapping until 08-cleanup.source.sql drops the server: the source's superusers can read it meanwhile, and it is in the source's WAL",
  REVERT_REPLICA_APPLY:
    "the revert applies the target's rows on the source with session_replication_role = replica (superuser, or on 15+ a role granted SET on it): the source's foreign keys and ordinary user triggers do not fire for them (they ran on the target); a round refuses while a user trigger of the group is enabled REPLICA or ALWAYS on the source (it would fire), naming it",
  TARGET_WRITE_FREEZE:
    'from the target fence of 92-revert.target.sql on, every write to the group on the target fails with a message naming the source, until 93-revert.source.sql makes the source live; pause the pooler first to queue instead of failing',
  SEQUENCE_SHARED:
    "--split-shared-sequences: a sequence the group uses also feeds a table outside the group (through a column default). The cut-over sets the target's copy past every value used on the source (plus the margin); from then on the table left on the source draws from the source's copy and the group from the target's, independently: values stay unique within each cluster, but the source's copy climbs into the range the target hands out, so a value can appear in both clusters (and any code that relied on one sequence for both tables no longer has it). Move the other table too, or give one side a disjoint range (ALTER SEQUENCE … RESTART), when that matters",
};

/** How the target's user mapping logs in to the source, and what the operator provides for it. */
function fdwAuthText(input: MoveInput): string {
  const who = 'The user mapping logs in to the source as the planning role';
  switch (input.options.fdwAuth) {
    case 'password':
      return `${who} (\`--fdw-auth password\`); export \`SHADOWPACK_FDW_PASSWORD\` with its password before 02-setup.target.sql when the source asks for one. No password is written into any file of this plan.`;
    case 'scram-passthrough':
      return `${who} (\`--fdw-auth scram-passthrough\`) with the SCRAM keys of the login running 02-setup.target.sql and every later target stage: that role must log in to the target with its password over SCRAM and have the same SCRAM verifier on both clusters. No password is stored anywhere.`;
    case 'cert':
      return `${who} (\`--fdw-auth cert\`) with the client certificate and key named in binding.target.sql (files on the target host); run the target stages as a superuser. No password is stored anywhere.`;
    case 'pgpass':
      return `${who} (\`--fdw-auth pgpass\`) without a password in the mapping (\`password_required 'false'\`): a password the source asks for comes from the ~/.pgpass of the target server's OS user; run the target stages as a superuser. No password is written into any file of this plan or the catalog.`;
  }
}

/** One type of the review's list, in a few words. */
function typeText(e: MoveInput['types'][number]): string {
  switch (e.kind) {
    case 'enum':
      return `enum, ${e.labels.length} label${e.labels.length === 1 ? '' : 's'}`;
    case 'composite':
      return `composite of ${e.attributes.map((a) => a.type).join(', ')}`;
    case 'domain':
      return `domain over ${e.base}${e.constraints.length > 0 ? `, ${e.constraints.length} check${e.constraints.length === 1 ? '' : 's'}${e.constraints.some((c) => !c.validated) ? ', the NOT VALID ones added at the cut-over' : ''}` : ''}`;
    case 'range':
      return `range of ${e.subtype}, multirange ${e.multirangeSchema}.${e.multirangeName}`;
  }
}

/** README.md of a move plan: what runs where, in which order, and what to watch. */
export function renderMoveReview(m: MovePlanManifest, input: MoveInput): string {
  const lines: string[] = [];
  lines.push(
    `Moves ${m.tables.map((t) => `\`${t.schema}.${t.name}\``).join(', ')} from database \`${m.source.database}\` (PostgreSQL ${m.source.serverVersionNum}) to \`${m.target.database}\` on ${m.target.host ?? 'local socket'}:${m.target.port ?? 5432} (PostgreSQL ${m.target.serverVersionNum}).`,
    '',
  );
  lines.push('Run each stage on its side, in this order:', '');
  lines.push('| file | side | one transaction | hazards |', '|---|---|---|---|');
  for (const s of m.stages)
    lines.push(`| \`${s.file}\` | ${s.side} | ${s.transaction} | ${s.hazards.join(', ') || '-'} |`);
  lines.push(
    '',
    '```',
    ...MOVE_STAGES.filter((r) => r.kind === 'forward' || r.kind === 'check').map(
      (r) => `psql -X -v ON_ERROR_STOP=1 -d <${r.side}> -f ${r.file}`,
    ),
    '```',
    '',
  );
  lines.push(
    'Before the cut-over, `90-abort.target.sql` then `90-abort.source.sql` take the move back: the source is left as it was.',
    '',
  );
  if (input.options.reversible === true)
    lines.push(
      "**Reversible** (`--reversible`): from the cut-over until `08-cleanup.target.sql`, the target captures every write to the group in change logs of its own (the source's capture trigger and log layout). Until then the move can be taken back (`shadowpack run --plan DIR --url SOURCE --target-url TARGET --stage revert`, or with psql):",
      '',
      '```',
      ...moveStagesFor(input.options)
        .filter((r) => r.kind === 'revert')
        .map((r) => `psql -X -v ON_ERROR_STOP=1 -d <${r.side}> -f ${r.file}`),
      '```',
      '',
      "The source pulls the target's writes in rounds through postgres_fdw, the target is fenced (its write freeze), the last round runs in a target snapshot that sees the fence, the source's sequences are set past every value used on the target, and the source's fence goes in the same transaction: the source is live again. `08-cleanup.target.sql` ends the revert window (once a revert has fenced the target it refuses until the revert is done); run the cleanups only once the target is to stay, or after a revert." +
        (input.options.fdwAuth === 'password'
          ? " The source's user mapping logs in to the target as the planning role on the target: export `SHADOWPACK_REVERT_FDW_PASSWORD` with its password before 91-revert.source.sql when the target asks for one."
          : ''),
      '',
    );
  const o = input.options;
  lines.push(
    o.holdCutover
      ? `**The cut-over is held**: once the catch-up converges, \`05-catchup.target.sql\` keeps applying rounds until \`shadowpack control --plan DIR --target-url … --release-cutover\`, at most ${o.holdWaitSeconds} s per run of the stage; then it stops with the source not marked ready for the fence, and can be run again.`
      : 'The cut-over is not held: the fence may follow as soon as the catch-up converges (plan with `--hold-cutover` to wait for an operator).',
    '',
    `Backfill batches of ${o.batchPages} heap pages, ${o.maxRowsPerSecond > 0 ? `at most ${o.maxRowsPerSecond} rows/s` : 'no rows/s ceiling'}; \`shadowpack control --plan DIR --target-url …\` pauses, resumes, resizes or slows the backfill and the catch-up while they run.`,
    '',
  );
  lines.push(fdwAuthText(input), '');
  const hazards = [...new Set(m.stages.flatMap((s) => s.hazards))].sort();
  lines.push('Hazards:', '');
  for (const h of hazards) lines.push(`- ${h}: ${MOVE_HAZARD_TEXT[h]}`);
  if (input.types.length > 0) {
    lines.push(
      '',
      'Types the columns need, created on the target when missing (in this order; abort drops those it created):',
      '',
    );
    for (const e of input.types) lines.push(`- \`${e.schema}.${e.name}\` (${typeText(e)})`);
    if ((input.typeFunctions ?? []).length > 0)
      lines.push(
        '',
        `They call ${input.typeFunctions!.map((f) => `\`${f}\``).join(', ')}, which the target must have.`,
      );
  }
  if (input.sequences.length > 0) {
    lines.push(
      '',
      `Sequences set at the cut-over (past every used value${input.sequences.some((s) => BigInt(s.increment) < 0n) ? ' in their direction' : ''}, plus a margin of ` +
        String(input.options.sequenceMargin) +
        '):',
      '',
    );
    const names = [...new Set(input.sequences.map((s) => `${s.schema}.${s.name}`))].sort();
    for (const name of names) {
      const uses = input.sequences.filter((s) => `${s.schema}.${s.name}` === name);
      const outside = [...new Set(uses.flatMap((s) => usesOutsideGroup(s, input)))];
      lines.push(
        `- \`${name}\` (${uses[0]!.kind}${BigInt(uses[0]!.increment) < 0n ? ', counts down: set below every used value' : ''}; ${uses.map((s) => `${s.tableSchema}.${s.tableName}.${s.column}`).join(', ')})${outside.length > 0 ? `; also used outside the group by ${outside.join(', ')}` : ''}`,
      );
    }
  }
  lines.push('');
  return lines.join('\n');
}
