// The step runner's ends of its pipes, read and written synchronously. A step child reads one
// request and writes one result: creating process.stdin and process.stdout for that costs a
// fresh child several milliseconds (their stream code first runs there, never in the zygote),
// where a poll(2) and a read(2) cost microseconds.
import { readSync, writeSync } from 'node:fs';
import { native, POLLIN, POLLOUT } from '../native/index.js';
import { ProtocolError } from '../protocol/errors.js';

/**
 * Everything on fd until its end: at most maxBytes (more is ProtocolError 'too-large'), within
 * timeoutMs ('timeout', saying how much had come).
 */
export function readToEndSync(fd: number, maxBytes: number, timeoutMs: number): Buffer {
  const deadline = performance.now() + timeoutMs;
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0 || !waitFor(fd, POLLIN, left)) throw new ProtocolError('timeout', `no complete request within ${timeoutMs} ms (${total} bytes had come)`);
    const buf = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes + 1 - total));
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw err;
    }
    if (n === 0) return Buffer.concat(chunks, total);
    chunks.push(buf.subarray(0, n));
    total += n;
    if (total > maxBytes) throw new ProtocolError('too-large', `the request is larger than ${maxBytes} bytes`);
  }
}

/** All of data to fd, within timeoutMs (a reader that never reads ends it with an Error). */
export function writeAllSync(fd: number, data: Buffer, timeoutMs: number): void {
  const deadline = performance.now() + timeoutMs;
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off, data.length - off);
      continue;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    }
    const left = deadline - performance.now();
    if (left <= 0 || !waitFor(fd, POLLOUT, left)) throw new Error(`the result could not be written within ${timeoutMs} ms (nobody reads it)`);
  }
}

function waitFor(fd: number, events: number, ms: number): boolean {
  return native.poll(Int32Array.of(fd), Int16Array.of(events), new Int16Array(1), Math.ceil(ms)) > 0;
}
