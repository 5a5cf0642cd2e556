/** Follows a server's log file for StartOptions.log: every line reaches the sink, a fraction of a second late. */
import { closeSync, openSync, readSync } from 'node:fs';

export class LogFollower {
  private offset = 0;
  private partial = '';
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly file: string,
    private readonly sink: (line: string) => void,
  ) {}

  follow(): void {
    this.timer ??= setInterval(() => this.read(), 200);
    this.timer.unref();
  }

  read(): void {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(1 << 16);
      for (let n; (n = readSync(fd, buf, 0, buf.length, this.offset)) > 0; this.offset += n) {
        this.partial += buf.toString('utf8', 0, n);
      }
    } finally {
      closeSync(fd);
    }
    const lines = this.partial.split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) emit(this.sink, line);
  }

  end(): void {
    this.read();
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.partial) emit(this.sink, this.partial);
    this.partial = '';
  }
}

export function emit(sink: ((line: string) => void) | undefined, line: string): void {
  try {
    sink?.(line);
  } catch {
    // a failing log sink must not break the server
  }
}
