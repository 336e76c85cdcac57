// One Thrift message over a Node stream (a child's stdin or stdout): written as one frame,
// read from an untrusted peer with hard bounds on size, time, nesting and what follows.
//
// A frame is the control protocol's (protocol/framing.ts): a 4-byte big-endian length, then
// exactly that many bytes of one compact-protocol struct. Unlike a SEQPACKET socket a stream
// keeps no boundaries, so the reader takes bytes off the stream as they come: it checks the
// header against maxBytes before it allocates anything for the body, keeps at most the frame
// (plus the one read that completed it), and reports exactly where the bytes went wrong.
import type { Readable, Writable } from 'node:stream';
import type thrift from 'thrift';
import { InvalidOptionError, ProtocolError } from './errors.js';
import { refuseUnknownKeys } from './options.js';
import { decodePayload, encodeFrame, FRAME_HEADER_BYTES, frameLength, type ThriftStruct, type ThriftStructClass } from './framing.js';

export type { ThriftStruct, ThriftStructClass } from './framing.js';

/** writeMessage's default payload cap: the step messages' largest (protocol/step.ts). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/**
 * Deepest struct nesting a decoder follows by default. Thrift's JS reader recurses once per
 * struct level, so without a bound a hostile frame of ~5,000 nested structs reaches the end of
 * the stack (a RangeError, at a depth that depends on the caller's stack). 64 matches
 * Thrift's own DEFAULT_RECURSION_DEPTH and its skip() limit.
 */
export const DEFAULT_MAX_DEPTH = 64;

export interface WriteMessageOptions {
  /** Largest payload to send; a larger message is a ProtocolError('too-large'). Default 1 MiB. */
  maxBytes?: number;
}

export interface DecodeMessageOptions {
  /** Largest payload accepted. A header claiming more is refused before anything is allocated for it. */
  maxBytes: number;
  /** The message's name in errors (the generated classes have none). Default: the class's name, or "message". */
  typeName?: string;
  /** The frame must be the last thing on the stream (or in the buffer): anything after it is 'trailing-bytes'. */
  expectEnd?: boolean;
  /** Deepest struct nesting accepted (default 64); deeper is 'undecodable'. */
  maxDepth?: number;
  /** Most elements accepted in any one list, set or map (default: only what the payload's size allows). */
  maxItems?: number;
}

export interface ReadMessageOptions extends DecodeMessageOptions {
  /**
   * The whole read, from the call to the frame (and, with expectEnd, to the end of the
   * stream), must finish within this many ms, or it fails with ProtocolError('timeout').
   */
  timeoutMs: number;
}

/**
 * Writes value as one frame. Resolves once the stream has handed the whole frame on (the
 * write callback: for a pipe, the bytes are in the kernel), so awaiting it is the
 * backpressure; rejects with the stream's error, or ProtocolError('too-large') past maxBytes.
 * A peer that never reads keeps it pending: bound that by ending the peer (its death fails
 * the write with EPIPE) or destroying the stream.
 */
export async function writeMessage(stream: Writable, value: ThriftStruct, opts: WriteMessageOptions = {}): Promise<void> {
  const frame = encodeMessage(value, opts);
  if (stream.destroyed) throw stream.errored ?? new Error('writeMessage: the stream is already destroyed');
  if (stream.writableEnded) throw new Error('writeMessage: the stream has already been ended');
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: Error | null) => {
      if (settled) return;
      settled = true;
      stream.off('error', settle);
      if (!err) return resolve();
      // A failed write also emits 'error', before or after calling back, but always within
      // this turn of the event loop (Node's Writable emits it on the next tick). The caller
      // gets the error from this promise; a listener kept until the loop's next turn stops
      // the echo from crashing a caller that has no listener of its own.
      if (stream.listenerCount('error') === 0) {
        const swallow = () => {};
        stream.on('error', swallow);
        setImmediate(() => stream.off('error', swallow));
      }
      reject(err);
    };
    stream.on('error', settle);
    stream.write(frame, settle);
  });
}

/**
 * value as one frame (header and payload), as writeMessage sends it (encodeFrame, through
 * CompactWriter: doubles written exactly). Throws ProtocolError('too-large') past maxBytes
 * (default 1 MiB).
 */
export function encodeMessage(value: ThriftStruct, opts: WriteMessageOptions = {}): Buffer {
  if (typeof opts === 'object' && opts !== null) refuseUnknownKeys(opts, ['maxBytes'], 'writeMessage() / encodeMessage()');
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  checkByteCount('maxBytes', maxBytes);
  return encodeFrame(value, maxBytes);
}

/**
 * Decodes one frame from buf, as readMessage would from a stream that delivered buf and then
 * ended (same checks, same reasons and messages): for fuzzing and for bytes already in hand.
 * Without expectEnd, bytes after the frame are ignored.
 */
export function decodeMessage<T extends ThriftStruct>(buf: Buffer, Type: ThriftStructClass<T>, opts: DecodeMessageOptions): T {
  const o = decodeOptions(opts, Type, 'decodeMessage()', DECODE_KEYS);
  const frame = new FrameReader(Type, o);
  const rest = frame.push(buf);
  if (rest === undefined) throw frame.cutShort('ended');
  if (o.expectEnd && rest.length > 0) throw frame.trailing(`${rest.length}`);
  return frame.value!;
}

/**
 * Reads exactly one frame of Type from an untrusted stream and decodes it.
 *
 * Bounded: a header claiming more than maxBytes fails at once ('too-large'), before the body
 * is awaited or allocated; at most the frame plus the read that completed it is ever held;
 * the whole read ends within timeoutMs ('timeout', saying what had arrived). Exact: an end of
 * the stream inside the frame is 'truncated' (how many bytes of how many), a payload that
 * does not decode is 'undecodable' (at which offset), nesting past maxDepth is 'undecodable',
 * and with expectEnd anything after the frame is 'trailing-bytes' (it stops at the first
 * extra read, without buffering the rest). A stream error rejects with that error.
 *
 * The stream must be a byte stream nobody else is reading (no 'data' or 'readable'
 * listeners). It is read in paused mode and left as it was found: every listener removed on
 * every path, nothing flowing, and without expectEnd any bytes read past the frame are put
 * back (unshift), so the next reader starts right after it.
 */
export async function readMessage<T extends ThriftStruct>(stream: Readable, Type: ThriftStructClass<T>, opts: ReadMessageOptions): Promise<T> {
  const o = decodeOptions(opts, Type, 'readMessage()', [...DECODE_KEYS, 'timeoutMs']);
  const timeoutMs = opts.timeoutMs;
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1) {
    throw new InvalidOptionError(`Expected the \`timeoutMs\` option to be an integer from 1 to ${2 ** 31 - 1}, got \`${String(timeoutMs)}\` (${typeof timeoutMs})`);
  }
  if (stream.readableObjectMode || stream.readableEncoding !== null) {
    throw new InvalidOptionError('readMessage needs a byte stream: this one is in object mode or has an encoding set');
  }
  if (stream.readableFlowing === true || stream.listenerCount('data') > 0 || stream.listenerCount('readable') > 0) {
    throw new InvalidOptionError("readMessage needs a stream nobody else is reading: this one is flowing or has 'data' or 'readable' listeners");
  }
  const frame = new FrameReader(Type, o);
  if (stream.errored) throw stream.errored;
  if (stream.readableEnded) throw frame.cutShort('ended');
  if (stream.destroyed) throw frame.cutShort('closed');

  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (err: unknown, putBack?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('close', onClose);
      stream.off('error', onError);
      if (err !== undefined) return reject(err);
      if (putBack !== undefined && putBack.length > 0) stream.unshift(putBack);
      resolve(frame.value!);
    };
    const onReadable = () => {
      try {
        let chunk: Buffer | null;
        while (!done && (chunk = stream.read() as Buffer | null) !== null) {
          if (frame.value === undefined) {
            const rest = frame.push(chunk);
            if (rest === undefined) continue;
            if (!o.expectEnd) return finish(undefined, rest);
            if (rest.length > 0) throw frame.trailing(`at least ${rest.length}`);
          } else if (chunk.length > 0) {
            throw frame.trailing(`at least ${chunk.length}`);
          }
        }
      } catch (err) {
        finish(err);
      }
    };
    const onEnd = () => finish(frame.value === undefined ? frame.cutShort('ended') : undefined);
    const onClose = () => finish(frame.cutShort('closed'));
    const onError = (err: unknown) => finish(err);
    const timer = setTimeout(() => finish(frame.timedOut(timeoutMs)), timeoutMs);
    stream.on('error', onError);
    stream.on('end', onEnd);
    stream.on('close', onClose);
    // Last: adding a 'readable' listener may find data already buffered and start reading.
    stream.on('readable', onReadable);
  });
}

interface DecodeLimits {
  typeName: string;
  maxBytes: number;
  maxDepth: number;
  maxItems: number;
  expectEnd: boolean;
}

const DECODE_KEYS = ['maxBytes', 'typeName', 'expectEnd', 'maxDepth', 'maxItems'] as const satisfies readonly (keyof DecodeMessageOptions)[];

function decodeOptions(opts: DecodeMessageOptions, Type: ThriftStructClass<ThriftStruct>, where: string, known: readonly string[]): DecodeLimits {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError(`Expected the options to be an object, got ${String(opts)}`);
  refuseUnknownKeys(opts, known, where);
  checkByteCount('maxBytes', opts.maxBytes);
  if (opts.maxDepth !== undefined && !(Number.isInteger(opts.maxDepth) && opts.maxDepth >= 1)) {
    throw new InvalidOptionError(`Expected the \`maxDepth\` option to be a positive integer, got \`${String(opts.maxDepth)}\` (${typeof opts.maxDepth})`);
  }
  if (opts.maxItems !== undefined && !(Number.isInteger(opts.maxItems) && opts.maxItems >= 0)) {
    throw new InvalidOptionError(`Expected the \`maxItems\` option to be a non-negative integer, got \`${String(opts.maxItems)}\` (${typeof opts.maxItems})`);
  }
  if (opts.typeName !== undefined && typeof opts.typeName !== 'string') {
    throw new InvalidOptionError(`Expected the \`typeName\` option to be a string, got ${typeof opts.typeName}`);
  }
  return {
    typeName: opts.typeName || Type.name || 'message',
    maxBytes: opts.maxBytes,
    maxDepth: opts.maxDepth ?? DEFAULT_MAX_DEPTH,
    maxItems: opts.maxItems ?? Infinity,
    expectEnd: opts.expectEnd === true,
  };
}

function checkByteCount(name: string, v: unknown): asserts v is number {
  // The header is a u32: a larger cap would not be a cap.
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new InvalidOptionError(`Expected the \`${name}\` option to be an integer from 0 to ${0xffffffff}, got \`${String(v)}\` (${typeof v})`);
  }
}

/** Assembles one frame from chunks of any size, and decodes it once it is whole. */
class FrameReader<T extends ThriftStruct> {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerBytes = 0;
  /** The payload length the header claims, once the header is whole and within maxBytes. */
  private declared: number | undefined;
  private body: Buffer | undefined;
  private bodyBytes = 0;
  /** The decoded message, once the frame is whole. */
  value: T | undefined;

  constructor(
    private readonly Type: ThriftStructClass<T>,
    private readonly o: DecodeLimits,
  ) {}

  /**
   * Takes bytes of the frame from chunk. Returns undefined if the frame needs more, or the
   * bytes of chunk after the frame once it is whole and decoded. Throws a ProtocolError.
   */
  push(chunk: Buffer): Buffer | undefined {
    let at = 0;
    if (this.declared === undefined) {
      const n = Math.min(FRAME_HEADER_BYTES - this.headerBytes, chunk.length);
      chunk.copy(this.header, this.headerBytes, 0, n);
      this.headerBytes += n;
      at = n;
      if (this.headerBytes < FRAME_HEADER_BYTES) return undefined;
      try {
        this.declared = frameLength(this.header, this.o.maxBytes);
      } catch (err) {
        if (err instanceof ProtocolError) throw new ProtocolError(err.reason, `${this.o.typeName}: ${err.message}`);
        throw err;
      }
    }
    const declared = this.declared;
    const n = Math.min(declared - this.bodyBytes, chunk.length - at);
    if (this.body === undefined && n === declared) {
      // The whole payload is in this chunk: decode it in place.
      this.body = chunk.subarray(at, at + n);
    } else if (n > 0) {
      this.body ??= Buffer.allocUnsafe(declared);
      chunk.copy(this.body, this.bodyBytes, at, at + n);
    }
    this.bodyBytes += n;
    at += n;
    if (this.bodyBytes < declared) return undefined;
    const payload = this.body ?? Buffer.alloc(0);
    this.body = undefined;
    this.value = decodeLimited(payload, this.Type, this.o);
    return chunk.subarray(at);
  }

  private get total(): number | undefined {
    return this.declared === undefined ? undefined : FRAME_HEADER_BYTES + this.declared;
  }

  /** What has arrived, e.g. "14 of the 61 bytes of the frame" or "2 of its 4 header bytes". */
  private progress(): string {
    const total = this.total;
    if (total === undefined) return `${this.headerBytes} of its ${FRAME_HEADER_BYTES} header bytes`;
    return `${FRAME_HEADER_BYTES + this.bodyBytes} of the ${total} bytes of the frame (its header claims ${this.declared} bytes of payload)`;
  }

  cutShort(how: 'ended' | 'closed'): ProtocolError {
    return new ProtocolError('truncated', `${this.o.typeName}: the stream ${how} after ${this.progress()}`);
  }

  timedOut(ms: number): ProtocolError {
    if (this.value !== undefined) {
      return new ProtocolError('timeout', `${this.o.typeName}: the stream did not end within ${ms} ms; the whole ${this.total}-byte frame had arrived, and nothing may follow it`);
    }
    return new ProtocolError('timeout', `${this.o.typeName}: no whole frame within ${ms} ms: received ${this.progress()}`);
  }

  trailing(count: string): ProtocolError {
    return new ProtocolError('trailing-bytes', `${this.o.typeName}: ${count} more bytes followed the ${this.total}-byte frame, which must end the stream`);
  }
}

/**
 * decodePayload, with the protocol bounded: struct nesting past maxDepth, and a list, set or
 * map claiming more elements than maxItems or than its remaining bytes could hold, fail at
 * once (as 'undecodable', at the offset where the reader stood) instead of recursing to the
 * end of the stack or allocating element by element until the bytes run out.
 */
function decodeLimited<T extends ThriftStruct>(payload: Buffer, Type: ThriftStructClass<T>, o: DecodeLimits): T {
  // decodePayload makes its own protocol and calls `new Type().read(it)`: hand it a Type whose
  // instances read through a bounded view of that protocol.
  const Bounded = function () {
    const message = new Type();
    const read = message.read;
    Object.defineProperty(message, 'read', { configurable: true, writable: true, value: (input: thrift.TProtocol) => read.call(message, bounded(input, o)) });
    return message;
  } as unknown as ThriftStructClass<T>;
  const message = decodePayload(payload, Bounded, o.typeName);
  delete (message as { read?: unknown }).read;
  return message;
}

/** A view of a compact protocol reader that enforces maxDepth and maxItems. */
function bounded(input: thrift.TProtocol, o: DecodeLimits): thrift.TProtocol {
  // Object.create: the generated code and skip() call every method on this view (`this`), so
  // the overrides below see every struct and container, and the state the base methods keep
  // on `this` stays consistent.
  const base = Object.getPrototypeOf(input) as thrift.TProtocol;
  const view = Object.create(input) as thrift.TProtocol;
  const trans = (input as unknown as { trans: { inBuf: Buffer; readPos: number } }).trans;
  let depth = 0;
  const items = (size: number, what: string, minBytesEach: number) => {
    if (size > o.maxItems) throw new Error(`a ${what} of ${size} elements; at most ${o.maxItems} are allowed`);
    const left = trans.inBuf.length - trans.readPos;
    if (size * minBytesEach > left) throw new Error(`a ${what} claims ${size} elements but only ${left} bytes remain`);
  };
  Object.assign(view, {
    readStructBegin(this: thrift.TProtocol) {
      if (++depth > o.maxDepth) throw new Error(`nesting deeper than ${o.maxDepth} structs`);
      return base.readStructBegin.call(this);
    },
    readStructEnd(this: thrift.TProtocol) {
      depth--;
      return base.readStructEnd.call(this);
    },
    // Every compact-protocol element takes at least one byte; a map entry at least two.
    readListBegin(this: thrift.TProtocol) {
      const r = base.readListBegin.call(this);
      items(r.size, 'list', 1);
      return r;
    },
    readSetBegin(this: thrift.TProtocol) {
      const r = base.readSetBegin.call(this);
      items(r.size, 'set', 1);
      return r;
    },
    readMapBegin(this: thrift.TProtocol) {
      const r = base.readMapBegin.call(this);
      items(r.size, 'map', 2);
      return r;
    },
  });
  return view;
}
