// The zygote's log: one line per event, text or JSON, on stderr or appended to a file,
// written synchronously.
//
// Hand-written rather than pino: pino's fast destinations buffer (sonic-boom) or write from a
// worker thread (transports), and the zygote may hold neither (fork-safety.md): a forked child
// would inherit the buffer, and a thread does not survive a fork. A line is one write(2), so
// nothing is buffered when the zygote forks. fs.writeSync rather than process.stderr: creating
// process.stderr in the zygote would leave a stream bound to its fd 2 in every child's heap.
import { closeSync, openSync, writeSync } from 'node:fs';
import { DEFAULT_LOG, LOG_LEVELS, type LogConfig, type LogLevel } from '../protocol/operations.js';

/** What a line may carry beside its message: JSON keys as they are, text as key=value. */
export interface LogFields {
  /** The child's pid. */
  pid?: number;
  /** The spawn's id on its connection. */
  id?: number;
  name?: string;
  uid?: number;
  reason?: string;
  wallMs?: number;
  cpuMs?: number;
  [key: string]: string | number | boolean | null | undefined;
}

export class Log {
  private config: LogConfig = DEFAULT_LOG;
  private fd = 2;

  constructor(private readonly prefix: string) {}

  /** Applies the configured format, level and file; throws if the file cannot be opened. */
  configure(config: LogConfig): void {
    this.config = config;
    this.reopen();
  }

  /** Reopens the log file (SIGHUP, after logrotate moved it); a file that will not open keeps the old fd. */
  reopen(): void {
    if (this.config.file === null) return;
    // O_APPEND, and O_CLOEXEC as every fd Node opens: a forked child closes it besides.
    const fd = openSync(this.config.file, 'a', 0o640);
    if (this.fd !== 2) closeSync(this.fd);
    this.fd = fd;
  }

  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) <= LOG_LEVELS.indexOf(this.config.level);
  }

  error(event: string, message: string, fields?: LogFields): void {
    this.write('error', event, message, fields);
  }

  info(event: string, message: string, fields?: LogFields): void {
    this.write('info', event, message, fields);
  }

  debug(event: string, message: string, fields?: LogFields): void {
    this.write('debug', event, message, fields);
  }

  private write(level: LogLevel, event: string, message: string, fields: LogFields | undefined): void {
    if (!this.enabled(level)) return;
    const time = new Date().toISOString();
    let line: string;
    if (this.config.format === 'json') {
      const record: Record<string, unknown> = { time, level, event, zygote: process.pid };
      for (const [k, v] of Object.entries(fields ?? {})) if (v !== undefined) record[k] = v;
      record.msg = message;
      line = `${JSON.stringify(record)}\n`;
    } else {
      line = `${time} ${this.prefix}[${process.pid}] ${level === 'error' ? 'error: ' : ''}${message}\n`;
    }
    try {
      writeSync(this.fd, line);
    } catch {
      // A closed or full log must not take the zygote down; the line is lost.
    }
  }
}
