import type { PlanManifest } from './compile.js';

/**
 * Which role each stage's statements run as (issue 19). Code the table's owner controls runs as the
 * owner when a superuser other than the owner runs the plan; what needs the runner's privileges
 * evaluates no code of the owner's. Decided at setup, from who runs it: see owner-functions.hbs.
 */
export function roleReviewLines(m: PlanManifest): string[] {
  const owner = `\`${m.model.owner}\``;
  const runner = 'the runner (the role that runs the stage)';
  const rows: [string, string][] = [
    ['preflight', `${runner}; reads the catalog only`],
    [
      'setup',
      `the copy's generated columns and the columns after them (creating one constant-folds its expression) and the \`--alter\` statements on the empty copy as ${owner} (adding a DEFAULT that is not volatile evaluates it); the tool's objects, the copy with its other columns and its partitions (handed to ${owner}) and the capture trigger as ${runner}, evaluating none of the owner's code`,
    ],
    ['backfill', `the INSERT into the copy as ${owner}; progress, throttle and control as ${runner}`],
    [
      'build',
      `CHECK constraints as ${owner}; index and constraint builds and ANALYZE run their expressions as ${owner} by PostgreSQL itself; the rest as ${runner}`,
    ],
    ['catchup', `the apply's writes to the copy as ${owner}; reading and pruning the change log as ${runner}`],
    [
      'verify',
      `the comparison as ${owner} (it reads the table through the \`--alter\` expressions); the change log and the result as ${runner}`,
    ],
    [
      'swap',
      `the last apply as ${owner}; renames, foreign keys, privileges, views and everything the swap carries as ${runner} (these evaluate none of the owner's code; views are re-created, not run); foreign-key validation (after the commit) as the owner of the table whose foreign key it is (planning it folds both tables' index expressions)`,
    ],
    [
      'revert',
      `the writes replayed onto the old table as ${owner}; foreign-key validation as the owner of the table whose foreign key it is; the rest as ${runner}`,
    ],
    [
      'cleanup, abort',
      `foreign-key validation as the owner of the table whose foreign key it is; drops and \`ANALYZE\` (PostgreSQL runs it as the table's owner) as ${runner}`,
    ],
  ];
  return [
    '## Roles',
    '',
    `When a superuser other than the table's owner (${owner}) runs the plan, every statement that evaluates code the owner controls (CHECK constraints, defaults, generated columns, index expressions, the owner's triggers, \`--alter\` expressions, casts) runs as ${owner}, through SECURITY DEFINER functions that setup hands to it: PostgreSQL then refuses \`SET ROLE\` and \`SET SESSION AUTHORIZATION\` for the whole call, deferred triggers fire before it returns, and a changed session setting or a \`WITH HOLD\` cursor left behind stops the stage. When the owner runs the plan, or a non-superuser member of it, or the table forces row-level security on its owner, those statements run as the runner, as before.`,
    '',
    '| stage | runs as |',
    '|---|---|',
    ...rows.map(([stage, what]) => `| ${stage} | ${what} |`),
    '',
    `\`shadowpack verify\` (the command) compares as ${owner} too when a superuser other than the owner runs it (through the run's verify function), otherwise as the role it connects as. The throttle probe (\`--throttle-probe\`) is the operator's own SQL and runs as ${runner}, read-only: a probe calling the owner's functions, or querying its tables, runs their code as ${runner}.`,
    '',
  ];
}
