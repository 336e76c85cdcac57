// Bounded waits: every wait in the bench ends, with a value or with a timeout.
import type { Readable } from 'node:stream';

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Settles like p, or rejects with TimeoutError after ms naming what was awaited. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves at the first chunk on stream; rejects if it ends or fails first. Leaves it flowing. */
export function firstChunk(stream: Readable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    const onData = () => (cleanup(), resolve());
    const onEnd = () => (cleanup(), reject(new Error('stdout ended before its first byte')));
    const onError = (err: Error) => (cleanup(), reject(err));
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
  });
}

/** Everything the stream yields until it ends, as UTF-8 text. */
export function readAll(stream: Readable): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.once('error', reject);
  });
}
