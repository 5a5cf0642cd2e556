/** Servers must not outlive the Node process: what is registered here is killed on exit, on a signal, or when a forked worker loses its parent. */

export interface KillableSync {
  /** Synchronous: runs inside 'exit', where nothing asynchronous happens any more. */
  killSync(): void;
}

const live = new Set<KillableSync>();
let handlersInstalled = false;

function killAll(): void {
  for (const s of [...live]) s.killSync();
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // prepend: vitest calls process.exit() from its own listeners, which skips the listeners after theirs.
  process.prependListener('exit', killAll);
  // A forked vitest worker is not killed when its parent dies; it loses the IPC channel.
  if (typeof process.send === 'function') process.once('disconnect', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      killAll();
      // Nobody else handles the signal: behave like the default action.
      if (process.listenerCount(sig) <= 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.prependListener(sig, handler);
  }
}

export function killOnExit(s: KillableSync): void {
  live.add(s);
  installExitHandlers();
}

export function forget(s: KillableSync): void {
  live.delete(s);
}
