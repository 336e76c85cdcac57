// Capping a child's stdout or stderr: bytes past the cap are dropped, never buffered, and the
// child is killed, so a step that floods its output cannot grow the renderer's memory.
import { Transform, type TransformCallback } from 'node:stream';

export class OutputLimit extends Transform {
  private seen = 0;
  private tripped = false;

  /** cap: bytes let through; onExceeded runs once, when the first byte past it arrives. */
  constructor(
    private readonly cap: number,
    private readonly onExceeded: () => void,
  ) {
    super();
  }

  /** Bytes the child wrote to this stream, counted up to the moment it was cut. */
  get bytesSeen(): number {
    return this.seen;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.tripped) return done();
    const room = this.cap - this.seen;
    this.seen += chunk.length;
    if (chunk.length <= room) return done(null, chunk);
    this.tripped = true;
    if (room > 0) this.push(chunk.subarray(0, room));
    this.onExceeded();
    // End the readable side now: the reader gets exactly cap bytes, then 'end'.
    this.push(null);
    done();
  }
}
