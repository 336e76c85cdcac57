// The zygote's log: one line per event on its stderr, written synchronously.
//
// fs.writeSync rather than process.stderr: creating process.stderr in the zygote would
// leave a stream object bound to the zygote's fd 2 in every child's heap.
import { writeSync } from 'node:fs';

export class Log {
  constructor(private readonly prefix: string) {}

  info(message: string): void {
    this.write(message);
  }

  error(message: string): void {
    this.write(`error: ${message}`);
  }

  private write(message: string): void {
    const line = `${new Date().toISOString()} ${this.prefix}[${process.pid}] ${message}\n`;
    try {
      writeSync(2, line);
    } catch {
      // A closed or full stderr must not take the zygote down; the log line is lost.
    }
  }
}
