import type { Reporter, RunnerTask, RunnerTestFile } from 'vitest';

/** Prints one plain closing line, "N passed, N failed, N skipped", that any CI log reader understands. */
export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = []): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const walk = (tasks: readonly RunnerTask[]) => {
      for (const t of tasks) {
        if (t.type === 'suite') walk(t.tasks);
        else if (t.result?.state === 'pass') passed++;
        else if (t.result?.state === 'fail') failed++;
        else skipped++;
      }
    };
    for (const f of files) {
      walk(f.tasks);
      if (f.result?.state === 'fail' && f.tasks.length === 0) failed++;
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
