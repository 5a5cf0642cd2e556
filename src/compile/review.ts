import type { PlanManifest } from './compile.js';
import { blockerLines, goingBackLines, runbookLines } from './review-going-back.js';
import { bytes, durationLines, hazardLines, lockTableLines } from './review-plan.js';
import { transformReviewLines } from './transform/review-section.js';
import { controlReviewLines } from './review-control.js';
import { dependentsReview } from './dependents.js';
import { roleReviewLines } from './review-roles.js';
import { glanceLines } from './review-glance.js';

/** The summary a reviewer reads first: what, how, which locks, what can go wrong, how to go back. */
export function renderReview(m: PlanManifest): string {
  const o = m.options;
  const e = m.environment;
  const out: string[] = [];
  // The title and the approval facts are in the header compile puts above this (provenance.ts).
  out.push(...glanceLines(m));
  out.push('## What changes', '');
  out.push(...transformReviewLines(m.transform));
  out.push(
    `Rows are identified by ${m.model.key.source === 'primary-key' ? 'the primary key' : 'the unique index'} \`${m.model.key.indexName}\` (${m.model.key.columns.join(', ')}).`,
    '',
  );
  out.push(...dependentsReview(m.model));
  out.push('## Stages', '');
  out.push(
    'Run them in this order with `psql -X -f FILE` (each script sets `ON_ERROR_STOP` itself), or with `shadowpack run --plan DIR`, which stops after the swap (see Runbook).',
    '',
  );
  out.push('| file | stage | what it does | transaction | locks that block the application | hazards |');
  out.push('|---|---|---|---|---|---|');
  for (const s of m.stages) {
    const locks =
      s.locks
        .filter((l) => l.blocksApplication)
        .map((l) => `${l.mode} on ${l.relation}`)
        .join('; ') || 'none';
    out.push(
      `| \`${s.file}\` | ${s.name}${s.offPath ? ' (way back)' : ''} | ${s.summary} | ${s.transaction} | ${locks} | ${s.hazards.join(', ') || 'none'} |`,
    );
  }
  out.push('', ...runbookLines(m));
  out.push('## Locks', '');
  out.push(
    `Every lock that blocks the application is taken with \`lock_timeout = ${o.lockTimeoutMs}ms\`, at most ${o.lockAttempts} rounds, with exponential backoff from ${o.backoffBaseMs} ms to ${o.backoffMaxMs} ms and jitter. No application statement queues behind one attempt for longer than ${o.lockTimeoutMs} ms, and over all attempts of one locking step the application queues behind us for at most ${o.lockBudgetMs} ms (the lock budget): no attempt starts that could go past it. If the rounds or the budget run out, the stage stops with nothing changed and can be run again.`,
    '',
  );
  out.push(
    `No attempt is made while a session that has held a conflicting lock for longer than one attempt still holds it: the step waits instead, naming the session (pid, application, query start). ${o.cancelBlockersAfterMs > 0 ? `**Cancelling is on:** after ${o.cancelBlockersAfterMs} ms of one locking step, the running query of each client session holding a conflicting lock is cancelled with \`pg_cancel_backend\` (sessions idle in a transaction are left alone and named).` : 'Other sessions are never cancelled (cancelling is off).'} An autovacuum of a table the step locks is cancelled before an attempt (PostgreSQL would cancel it only after \`deadlock_timeout\`, longer than an attempt), and named in the lock report; an anti-wraparound autovacuum is never cancelled, nor a \`VACUUM\` a user runs: the step waits for them. Cancelling autovacuum takes a superuser (or \`pg_signal_autovacuum_worker\` on PostgreSQL 18+); without it the step waits for autovacuum too, and says so.`,
    '',
  );
  out.push(
    'Each locking step reports its attempts, time waited, time the application queued behind it and time the lock was held (`shadowpack:lock-report` notices; `shadowpack status` and `run` show them).',
    '',
  );
  out.push(
    `While the swap holds ACCESS EXCLUSIVE, each statement is bounded by \`statement_timeout = ${o.swapStatementTimeoutMs}ms\`; the log left to apply under the lock is brought below about ${o.swapBacklog} entries first. Before locking, the swap waits up to ${o.snapshotWaitSeconds} s for sessions holding old snapshots, naming them; then it catches up again what was written during that wait, vacuums the change log, and takes the lock only once at most ${o.swapBacklog} entries are left (if the application writes faster than that for ${o.snapshotWaitSeconds} s, it stops with nothing changed). The swap's lock report says how many entries it applied under the lock. Should the log grow past ${o.swapBacklog} entries while the lock step retries, the step gives up with nothing changed (SQLSTATE \`SPBL1\`) rather than apply more under the lock, and the stage is run again, catching up first: \`shadowpack run\` does so by itself, within the lock budget; with psql, run the stage again.`,
    '',
  );
  out.push(
    '### Lock table',
    '',
    'Every relation lock of each stage, what it blocks, and how long at most. Each statement in the scripts says its locks beside it (`-- locks: …`).',
    '',
  );
  out.push(...lockTableLines(m), '');
  out.push('### What can block', '');
  out.push(...blockerLines(m), '');
  out.push(...controlReviewLines(o, m.runId));
  out.push(...roleReviewLines(m));
  out.push('## Hazards', '');
  out.push(...hazardLines(m));
  out.push('', '## Estimates (from the catalog of the database the plan was made on)', '');
  out.push(`- Server: PostgreSQL ${e.serverVersion}; database \`${e.database}\`.`);
  out.push(
    `- Rows ≈ ${e.reltuples.toLocaleString('en-US')}; table ${bytes(e.tableBytes)}, indexes ${bytes(e.indexBytes)}, total ${bytes(e.totalBytes)}.`,
  );
  out.push(
    `- Disk needed during the run ≈ ${bytes(e.totalBytes)} (a second copy of table and indexes) plus the change log.`,
  );
  out.push(`- WAL written ≈ ${bytes(e.totalBytes)} or more.`);
  out.push(
    `- Backfill batches: ${o.batchPages} pages (${bytes(o.batchPages * 8192)}) each, ≈ ${Math.max(1, Math.ceil(e.relpages / o.batchPages))} batches; several sessions may copy them at once (\`run --jobs N\`, or N psql sessions of \`02-backfill.sql\`).`,
  );
  out.push(
    o.buildMaintenanceWorkMemMb > 0
      ? `- Build memory: \`maintenance_work_mem = ${o.buildMaintenanceWorkMemMb}MB\` per build session: jobs × ${o.buildMaintenanceWorkMemMb} MB in all (1 session: ${o.buildMaintenanceWorkMemMb} MB, 2: ${2 * o.buildMaintenanceWorkMemMb} MB, 4: ${4 * o.buildMaintenanceWorkMemMb} MB).`
      : "- Build memory: the server's `maintenance_work_mem` per build session (plan with `--build-maintenance-work-mem-mb N` to set it): jobs × that setting in all.",
  );
  out.push(...durationLines(m));
  out.push('', '## How to stop and how to go back', '');
  out.push(...goingBackLines(m), '');
  out.push('## Integrity', '');
  out.push(
    `Plan id \`${m.planId ?? '-'}\`: recorded with the run this plan starts; no other plan's stages continue that run. Run id \`${m.runId}\`: names the tool's objects and state row for this table; it is the same for every plan of ${m.table.schema}.${m.table.name}, in every database, so it identifies the table, not the plan. Table fingerprint \`${m.fingerprint}\`: the catalog as planned; every stage compares it.`,
    '',
  );
  out.push(
    'Each script first includes `binding.sql`, which refuses any database but this one, then checks that it runs against the planned table, that its catalog fingerprint is unchanged, and that the previous stage is done. `plan.json` lists the sha256 of every file (of this summary, the text below the header); `shadowpack run` refuses files that differ, and `--expect-hash` refuses any plan but the approved one. `SHA256SUMS` lets `sha256sum -c SHA256SUMS` check every file, the header too, where only psql is at hand; `shadowpack show` recomputes the plan hash and prints the header from `plan.json`.',
    '',
  );
  return out.join('\n');
}
