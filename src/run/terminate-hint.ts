/**
 * For a wait or a give-up on sessions the operator may end (a lock held too long, an old snapshot),
 * the statement that ends them, with their pids (newcomer review finding 28); '' otherwise.
 * Autovacuum workers are the lock step's business, and another shadowpack session ("another
 * session (pid N) is working on …") is another run's: neither is offered.
 */
export function terminateHint(message: string): string {
  if (
    !/(^|: )(old snapshots|gave up after \d+ s waiting for sessions with old snapshots)|( is held by |: held by |sessions hold snapshots)/.test(
      message,
    )
  )
    return '';
  const pids = [...new Set([...message.matchAll(/(?<!autovacuum )\bpid (\d+) \(/g)].map((m) => m[1]!))];
  if (pids.length === 0) return '';
  return `to end ${pids.length === 1 ? 'that session' : 'those sessions'} rather than wait: SELECT ${pids.map((p) => `pg_terminate_backend(${p})`).join(', ')};`;
}
