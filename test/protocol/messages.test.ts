// Tests of one message over a stream (protocol/messages.ts): writeMessage into real pipes,
// readMessage from the stdout of real child processes that write valid, garbage, oversized,
// cut, slow, trailing, mistyped and 10,000-deep frames. Each attack gets its exact
// ProtocolError, leaves the stream with no listener of ours and not flowing, and the next
// read of a fresh child works. Then property-based fuzzing (fast-check) of the decoder.
import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ProtocolError, type ProtocolErrorReason } from '../../dist/protocol/errors.js';
import { encodeFrame } from '../../dist/protocol/framing.js';
import { decodeMessage, readMessage, writeMessage, type ReadMessageOptions } from '../../dist/protocol/messages.js';
import { decodeStepResult, encodeStepRequest, readStepResult, stepResultError, stepResultOk, StepRequestMessage, StepResultMessage } from '../../dist/protocol/step.js';
import { bounded } from '../helpers/index.js';
import { frameOf } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/step-stdout.mjs', import.meta.url));
const FUZZ_WORKER = new URL('../fixtures/fuzz-messages-worker.mjs', import.meta.url);
const MAX = 1 << 20;
/** What the fixture's valid scenarios write: the frame of this result. */
const OK_RESULT = { ok: true, rows: 3, columns: 2, warnings: ['w1'], summary: { region: 'north' } };
const OK_FRAME = encodeFrame(stepResultOk({ rows: 3, columns: 2, warnings: ['w1'], summary: { region: 'north' } }), MAX);
const HALF = Math.floor(OK_FRAME.length / 2);
const EVENTS = ['readable', 'data', 'end', 'error', 'close'] as const;

const children = new Set<ChildProcess>();

afterEach(async () => {
  for (const cp of children) {
    if (cp.exitCode === null && cp.signalCode === null) {
      const gone = new Promise((r) => cp.once('exit', r));
      cp.kill('SIGKILL');
      await bounded(gone, 5000, `the exit of fixture child ${cp.pid}`);
    }
  }
  children.clear();
});

/** Runs test/fixtures/step-stdout.mjs SCENARIO with its stdout on a pipe. */
function startWriter(scenario: string): { cp: ChildProcess; stdout: Readable } {
  const cp = spawn(process.execPath, [FIXTURE, scenario], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(cp);
  return { cp, stdout: cp.stdout! };
}

/** Resolves once a sleeping scenario says it has written everything (so a timeout measures only the read). */
function written(cp: ChildProcess): Promise<unknown> {
  return bounded(new Promise((r) => cp.stderr!.once('data', r)), 20_000, `fixture ${cp.pid} to write`);
}

function listeners(s: Readable): Record<string, number> {
  return Object.fromEntries(EVENTS.map((e) => [e, s.listenerCount(e)]));
}

interface Read {
  value?: InstanceType<typeof StepResultMessage>;
  err?: unknown;
  ms: number;
  /** Whether the writer was still running when readMessage settled. */
  writerAlive: boolean;
  cp: ChildProcess;
  stdout: Readable;
}

/**
 * readMessage of a StepResult from the scenario's stdout, bounded; then checks that the read
 * left no listener of its own on the stream and did not leave it flowing.
 */
async function readFrom(scenario: string, opts: Partial<ReadMessageOptions> = {}, afterWritten = false): Promise<Read> {
  const { cp, stdout } = startWriter(scenario);
  if (afterWritten) await written(cp);
  const before = listeners(stdout);
  const t0 = performance.now();
  let value: Read['value'];
  let err: unknown;
  try {
    value = await bounded(readMessage(stdout, StepResultMessage, { maxBytes: MAX, timeoutMs: 10_000, typeName: 'StepResult', ...opts }), 20_000, `readMessage(${scenario})`);
  } catch (e) {
    err = e;
  }
  const ms = performance.now() - t0;
  const writerAlive = cp.exitCode === null && cp.signalCode === null;
  expect(listeners(stdout), 'listeners on the stream after readMessage').toEqual(before);
  // Node settles readableFlowing on the tick after the 'readable' listener goes.
  await new Promise((r) => setImmediate(r));
  expect(stdout.readableFlowing, 'readableFlowing after readMessage').toBe(null);
  return { value, err, ms, writerAlive, cp, stdout };
}

function expectReadError(r: Read, reason: ProtocolErrorReason, ...patterns: (string | RegExp)[]): ProtocolError {
  expect(r.err, `readMessage resolved with ${JSON.stringify(r.value)}`).toBeInstanceOf(ProtocolError);
  const err = r.err as ProtocolError;
  expect(err.reason, err.message).toBe(reason);
  for (const p of patterns) {
    if (typeof p === 'string') expect(err.message).toContain(p);
    else expect(err.message).toMatch(p);
  }
  return err;
}

/** After an attack: reading a fresh child's valid result works. */
async function expectNextReadWorks(): Promise<void> {
  const r = await readFrom('valid', { expectEnd: true });
  expect(r.err).toBeUndefined();
  expect(decodeStepResult(r.value!)).toEqual(OK_RESULT);
}

function exitOf(cp: ChildProcess): Promise<number | null> {
  return bounded(
    new Promise((resolve) => (cp.exitCode !== null || cp.signalCode !== null ? resolve(cp.exitCode) : cp.once('exit', (code) => resolve(code)))),
    10_000,
    `the exit of ${cp.pid}`,
  );
}

describe('readMessage from a child process', () => {
  it('reads a valid result, with nothing after it and the stream ended', async () => {
    const r = await readFrom('valid', { expectEnd: true });
    expect(r.err).toBeUndefined();
    expect(decodeStepResult(r.value!)).toEqual(OK_RESULT);
    expect(r.stdout.readableEnded).toBe(true);
  });

  it('assembles a frame written one byte per write', async () => {
    const r = await readFrom('valid-bytewise', { expectEnd: true });
    expect(r.err).toBeUndefined();
    expect(decodeStepResult(r.value!)).toEqual(OK_RESULT);
  });

  it('without expectEnd, puts back what it read past the frame: two reads get two frames, then the stream ends', async () => {
    const first = await readFrom('two-frames');
    expect(decodeStepResult(first.value!)).toMatchObject({ ok: true, rows: 3 });
    const second = await bounded(readMessage(first.stdout, StepResultMessage, { maxBytes: MAX, timeoutMs: 5000, expectEnd: true }), 10_000, 'the second frame');
    expect(decodeStepResult(second)).toMatchObject({ ok: true, rows: 4, columns: 1 });
    expect(first.stdout.readableEnded).toBe(true);
  });

  it('leaves the stream usable by an ordinary reader: the bytes after the frame arrive on "data"', async () => {
    const r = await readFrom('valid-then-more');
    expect(r.err).toBeUndefined();
    const rest: Buffer[] = [];
    r.stdout.on('data', (d: Buffer) => rest.push(d));
    await bounded(new Promise((res) => r.stdout.once('end', res)), 10_000, 'the end of the stream');
    expect(Buffer.concat(rest).toString()).toBe('and more');
  });

  it('attack: a step that console.logs is refused as too-large, the text read as a length', async () => {
    const r = await readFrom('console-log', { expectEnd: true });
    // "hell" as a big-endian u32.
    expectReadError(r, 'too-large', `StepResult: frame header claims ${Buffer.from('hell').readUInt32BE(0)} bytes; the limit is ${MAX}`);
    await expectNextReadWorks();
  });

  it('attack: garbage after a truthful header is undecodable, at the offset where decoding stopped', async () => {
    const r = await readFrom('garbage', { expectEnd: true });
    expectReadError(r, 'undecodable', /^StepResult does not decode at offset 1 of 8: /);
    await expectNextReadWorks();
  });

  it('attack: a header claiming 2 GiB is refused at once, while the writer still sleeps, without allocating for the body', async () => {
    const { cp, stdout } = startWriter('header-2gib');
    const before = listeners(stdout);
    const arrayBuffers = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const err = await bounded(
      readMessage(stdout, StepResultMessage, { maxBytes: MAX, timeoutMs: 20_000, typeName: 'StepResult', expectEnd: true }).then(
        () => null,
        (e: unknown) => e,
      ),
      25_000,
      'readMessage of a 2 GiB header',
    );
    const ms = performance.now() - t0;
    const grew = process.memoryUsage().arrayBuffers - arrayBuffers;
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).reason).toBe('too-large');
    expect((err as ProtocolError).message).toBe(`StepResult: frame header claims 2147483648 bytes; the limit is ${MAX}`);
    // Not the 20 s timeout: the refusal came with the header, and the writer (sleeping 30 s) is alive.
    expect(ms).toBeLessThan(10_000);
    expect(cp.exitCode === null && cp.signalCode === null, 'the writer is still running').toBe(true);
    expect(grew, 'bytes of ArrayBuffer memory allocated while refusing').toBeLessThan(1024 * 1024);
    expect(listeners(stdout)).toEqual(before);
    await expectNextReadWorks();
  });

  it('attack: half a frame and then silence times out within timeoutMs, saying how much arrived', async () => {
    const r = await readFrom('half-then-sleep', { timeoutMs: 300 }, true);
    expectReadError(r, 'timeout', `StepResult: no whole frame within 300 ms: received ${HALF} of the ${OK_FRAME.length} bytes of the frame (its header claims ${OK_FRAME.length - 4} bytes of payload)`);
    expect(r.ms).toBeGreaterThanOrEqual(295);
    expect(r.ms).toBeLessThan(300 + 2000);
    expect(r.writerAlive).toBe(true);
    await expectNextReadWorks();
  });

  it('attack: half a frame and then exit is truncated, saying how many bytes of how many', async () => {
    const r = await readFrom('half-then-exit', { expectEnd: true });
    expectReadError(r, 'truncated', `StepResult: the stream ended after ${HALF} of the ${OK_FRAME.length} bytes of the frame (its header claims ${OK_FRAME.length - 4} bytes of payload)`);
    await expectNextReadWorks();
  });

  it('attack: half a header and then exit is truncated', async () => {
    const r = await readFrom('header-half-then-exit');
    expectReadError(r, 'truncated', 'StepResult: the stream ended after 2 of its 4 header bytes');
    await expectNextReadWorks();
  });

  it('attack: exit 0 without writing anything is truncated with 0 bytes', async () => {
    const r = await readFrom('silent', { expectEnd: true });
    expectReadError(r, 'truncated', 'StepResult: the stream ended after 0 of its 4 header bytes');
    expect(await exitOf(r.cp)).toBe(0);
    await expectNextReadWorks();
  });

  it('attack: a valid result and then more bytes, with expectEnd, is trailing-bytes', async () => {
    const r = await readFrom('valid-then-more', { expectEnd: true });
    expectReadError(r, 'trailing-bytes', `StepResult: at least 8 more bytes followed the ${OK_FRAME.length}-byte frame, which must end the stream`);
    await expectNextReadWorks();
  });

  it('attack: a valid result and then 1 MiB later, with expectEnd, fails at the first extra bytes without reading the rest', async () => {
    const r = await readFrom('valid-then-more-later', { expectEnd: true });
    const err = expectReadError(r, 'trailing-bytes', /^StepResult: at least \d+ more bytes followed/);
    const claimed = Number(/at least (\d+)/.exec(err.message)![1]);
    expect(claimed).toBeGreaterThan(0);
    expect(claimed).toBeLessThan(1 << 20);
    await expectNextReadWorks();
  });

  it('attack: a valid result and then an open, silent stream, with expectEnd, times out saying the frame had arrived', async () => {
    const r = await readFrom('valid-then-sleep', { expectEnd: true, timeoutMs: 300 }, true);
    expectReadError(r, 'timeout', `StepResult: the stream did not end within 300 ms; the whole ${OK_FRAME.length}-byte frame had arrived, and nothing may follow it`);
    expect(r.ms).toBeLessThan(300 + 2000);
    await expectNextReadWorks();
  });

  it('attack: a result of the wrong type (a StepRequest) decodes to no member and is invalid', async () => {
    const r = await readFrom('wrong-type', { expectEnd: true });
    expect(r.err).toBeUndefined();
    expect(() => decodeStepResult(r.value!)).toThrow(expect.objectContaining({ reason: 'invalid', message: 'StepResult must have exactly one of ok, error; found none' }));
    await expectNextReadWorks();
  });

  it('attack: a result of the wrong type through readStepResult is invalid', async () => {
    const { stdout } = startWriter('wrong-type');
    const before = listeners(stdout);
    const err = await bounded(readStepResult(stdout, { timeoutMs: 5000 }).catch((e: unknown) => e), 10_000, 'readStepResult');
    expect(err).toMatchObject({ name: 'ProtocolError', reason: 'invalid', message: 'StepResult must have exactly one of ok, error; found none' });
    expect(listeners(stdout)).toEqual(before);
  });

  it('attack: a result nested 10,000 structs deep is undecodable, fast, and the reader survives', async () => {
    const r = await readFrom('deep-result', { expectEnd: true });
    expectReadError(r, 'undecodable', /^StepResult does not decode at offset \d+ of 20003: nesting deeper than 64 structs$/);
    await expectNextReadWorks();
  });

  it('attack: a request whose parameter nests 10,000 lists deep is undecodable, not a stack overflow', async () => {
    const { stdout } = startWriter('deep-request');
    const err = await bounded(
      readMessage(stdout, StepRequestMessage, { maxBytes: MAX, timeoutMs: 5000, expectEnd: true }).catch((e: unknown) => e),
      10_000,
      'readMessage of a deep request',
    );
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).reason).toBe('undecodable');
    expect((err as ProtocolError).message).toMatch(/^StepRequest does not decode at offset \d+ of 30010: nesting deeper than 64 structs$/);
    await expectNextReadWorks();
  });

  it('rejects with the stream\'s own error when the stream fails mid-frame', async () => {
    const { stdout } = startWriter('half-then-sleep');
    const before = listeners(stdout);
    const reading = readMessage(stdout, StepResultMessage, { maxBytes: MAX, timeoutMs: 10_000 }).catch((e: unknown) => e);
    await bounded(new Promise((r) => stdout.once('readable', r)), 10_000, 'the first bytes');
    const boom = new Error('boom');
    stdout.destroy(boom);
    expect(await bounded(reading, 10_000, 'the rejection')).toBe(boom);
    expect(listeners(stdout)).toEqual(before);
    await expectNextReadWorks();
  });

  it('is truncated, saying "closed", when the stream is destroyed mid-frame without an error', async () => {
    const { stdout } = startWriter('half-then-sleep');
    const reading = readMessage(stdout, StepResultMessage, { maxBytes: MAX, timeoutMs: 10_000, typeName: 'StepResult' }).catch((e: unknown) => e);
    await bounded(new Promise((r) => setTimeout(r, 200)), 1000, 'a pause');
    stdout.destroy();
    const err = await bounded(reading, 10_000, 'the rejection');
    expect(err).toMatchObject({ reason: 'truncated', message: expect.stringMatching(/^StepResult: the stream closed after \d+ of/) });
  });

  it('refuses bad options and streams it cannot read with a TypeError naming the problem', async () => {
    const s = new PassThrough();
    await expect(readMessage(s, StepResultMessage, { maxBytes: MAX, timeoutMs: 0 })).rejects.toThrow('Expected the `timeoutMs` option to be an integer from 1 to 2147483647, got `0` (number)');
    await expect(readMessage(s, StepResultMessage, { maxBytes: MAX, timeoutMs: 2 ** 31 })).rejects.toThrow(TypeError);
    await expect(readMessage(s, StepResultMessage, { maxBytes: -1, timeoutMs: 10 })).rejects.toThrow('Expected the `maxBytes` option to be an integer from 0 to 4294967295, got `-1` (number)');
    await expect(readMessage(s, StepResultMessage, { maxBytes: 2 ** 32, timeoutMs: 10 })).rejects.toThrow(TypeError);
    const flowing = new PassThrough();
    flowing.on('data', () => {});
    await expect(readMessage(flowing, StepResultMessage, { maxBytes: MAX, timeoutMs: 10 })).rejects.toThrow("readMessage needs a stream nobody else is reading: this one is flowing or has 'data' or 'readable' listeners");
    const text = new PassThrough();
    text.setEncoding('utf8');
    await expect(readMessage(text, StepResultMessage, { maxBytes: MAX, timeoutMs: 10 })).rejects.toThrow('readMessage needs a byte stream');
    expect(listeners(s)).toEqual({ readable: 0, data: 0, end: 0, error: 0, close: 0 });
  });

  it('is truncated at once on a stream that has already ended', async () => {
    const s = new PassThrough();
    s.resume();
    s.end();
    await bounded(new Promise((r) => s.once('end', r)), 1000, 'the end');
    s.pause();
    s.removeAllListeners('data');
    expect(s.destroyed, 'a PassThrough destroys itself after its end').toBe(true);
    const err = await readMessage(s, StepResultMessage, { maxBytes: MAX, timeoutMs: 10_000, typeName: 'StepResult' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'truncated', message: 'StepResult: the stream ended after 0 of its 4 header bytes' });
  });
});

describe('writeMessage', () => {
  /** A child that copies its stdin to its stdout. */
  function cat(): ChildProcess {
    const cp = spawn(process.execPath, ['-e', 'process.stdin.pipe(process.stdout)'], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.add(cp);
    return cp;
  }

  it('writes one frame that readMessage reads back through a real pipe', async () => {
    const cp = cat();
    const request = encodeStepRequest({ module: '/steps/a.mjs', outputPath: '/output/o.arrow', params: { n: 1, s: 'ü' } });
    await bounded(writeMessage(cp.stdin!, request), 10_000, 'writeMessage');
    cp.stdin!.end();
    const back = await bounded(readMessage(cp.stdout!, StepRequestMessage, { maxBytes: MAX, timeoutMs: 10_000, expectEnd: true }), 10_000, 'readMessage');
    expect(encodeFrame(back, MAX).equals(encodeFrame(request, MAX))).toBe(true);
  });

  it('resolves only once a reader took the frame (backpressure): a 900 KB frame into a pipe nobody reads yet stays pending', async () => {
    // The child starts reading after 500 ms; a pipe holds 64 KiB.
    const cp = spawn(process.execPath, ['-e', 'setTimeout(() => process.stdin.pipe(process.stdout), 500)'], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.add(cp);
    cp.stdout!.resume();
    const big = stepResultError('x'.repeat(60_000));
    const frames = Array.from({ length: 15 }, () => big);
    let done = false;
    const writing = (async () => {
      for (const f of frames) await writeMessage(cp.stdin!, f);
      done = true;
    })();
    await new Promise((r) => setTimeout(r, 200));
    expect(done, 'all frames written before anyone read them').toBe(false);
    await bounded(writing, 10_000, 'the writes once the child reads');
    expect(done).toBe(true);
  });

  it("rejects with the stream's error (EPIPE) when the reader has gone, and the renderer does not crash", async () => {
    // The child closes its end of the pipe, says so, and lives on.
    const cp = spawn(process.execPath, ['-e', "require('fs').closeSync(0); process.stdout.write('closed'); setTimeout(() => {}, 30000)"], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.add(cp);
    await bounded(new Promise((r) => cp.stdout!.once('data', r)), 10_000, 'the child closing its stdin');
    expect(cp.stdin!.listenerCount('error')).toBe(0);
    const err = await bounded(writeMessage(cp.stdin!, stepResultError('y'.repeat(200_000))).catch((e: unknown) => e), 10_000, 'writeMessage');
    expect(err).toMatchObject({ code: 'EPIPE' });
    // The stream's own 'error' event found a listener (this process is still here), which is
    // gone by the next turn of the event loop.
    await new Promise((r) => setImmediate(r));
    expect(cp.stdin!.listenerCount('error')).toBe(0);
    expect(cp.stdin!.destroyed).toBe(true);
  });

  it('refuses a message over maxBytes with too-large and writes nothing', async () => {
    const cp = cat();
    const err = await writeMessage(cp.stdin!, stepResultError('z'.repeat(1000)), { maxBytes: 100 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ProtocolError', reason: 'too-large', message: expect.stringMatching(/^frame of 10\d\d bytes exceeds the 100-byte limit$/) });
    expect(cp.stdin!.writableLength).toBe(0);
    expect((cp.stdin as unknown as { bytesWritten: number }).bytesWritten).toBe(0);
  });

  it('rejects at once on the stdin of a child that has exited (child_process destroys it)', async () => {
    const cp = spawn(process.execPath, ['-e', ''], { stdio: ['pipe', 'ignore', 'inherit'] });
    children.add(cp);
    await exitOf(cp);
    await expect(writeMessage(cp.stdin!, stepResultError('a'))).rejects.toThrow('writeMessage: the stream is already destroyed');
  });

  it('rejects on a destroyed or ended stream without writing', async () => {
    const destroyed = new PassThrough();
    destroyed.destroy();
    await expect(writeMessage(destroyed, stepResultError('a'))).rejects.toThrow('writeMessage: the stream is already destroyed');
    const ended = new PassThrough();
    ended.end();
    await expect(writeMessage(ended, stepResultError('a'))).rejects.toThrow('writeMessage: the stream has already been ended');
  });
});

describe('decodeMessage', () => {
  it('decodes a whole buffer as readMessage would, and ignores what follows unless expectEnd', () => {
    const extra = Buffer.concat([OK_FRAME, Buffer.from([1, 2, 3])]);
    expect(decodeStepResult(decodeMessage(extra, StepResultMessage, { maxBytes: MAX }))).toEqual(OK_RESULT);
    expect(() => decodeMessage(extra, StepResultMessage, { maxBytes: MAX, expectEnd: true })).toThrow(`StepResult: 3 more bytes followed the ${OK_FRAME.length}-byte frame, which must end the stream`);
  });

  it('names the message by its generated class', () => {
    expect(() => decodeMessage(frameOf([0xff]), StepRequestMessage, { maxBytes: MAX })).toThrow(/^StepRequest does not decode at offset/);
  });

  it('refuses a list claiming more elements than its bytes could hold, at once', () => {
    // StepOk.warnings (field 3) claiming 2^31-1 strings in a 12-byte payload.
    const payload = [0x1c, 0x16, 0x00, 0x15, 0x00, 0x19, 0xf8, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00, 0x00];
    expect(() => decodeMessage(frameOf(payload), StepResultMessage, { maxBytes: MAX })).toThrow(/^StepResult does not decode at offset 12 of 14: a list claims 2147483647 elements but only 2 bytes remain$/);
  });

  it('refuses a list or map longer than maxItems while decoding', () => {
    const many = stepResultOk({ rows: 1, columns: 1, warnings: Array(100).fill('w') });
    const frame = encodeFrame(many, MAX);
    expect(() => decodeMessage(frame, StepResultMessage, { maxBytes: MAX, maxItems: 99 })).toThrow('a list of 100 elements; at most 99 are allowed');
    expect(decodeStepResult(decodeMessage(frame, StepResultMessage, { maxBytes: MAX, maxItems: 100 }))).toMatchObject({ warnings: Array(100).fill('w') });
  });

  it('measures: a 10,000-deep parameter stops at the 65th struct in well under a millisecond per level', () => {
    const levels = 10_000;
    const body = [0x18, 1, 0x2f, 0x1b, 1, 0x8c, 1, 0x61, ...Array(levels).fill([0x59, 0x1c]).flat(), 0x00, ...Array(levels).fill(0x00), 0x00];
    const t0 = performance.now();
    expect(() => decodeMessage(frameOf(body), StepRequestMessage, { maxBytes: MAX })).toThrow(/nesting deeper than 64 structs/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('property: fuzzing the frame reader (fast-check)', () => {
  /** Runs the fuzz worker; fails naming the case if it stops making progress for 10 s. */
  async function fuzz(runs: number, streamRuns: number, seed: number) {
    const progress = new SharedArrayBuffer(8 + 65536);
    const counter = new Int32Array(progress, 0, 1);
    const worker = new Worker(FUZZ_WORKER, { workerData: { runs, seed, streamRuns, progress } });
    let watchdog: NodeJS.Timeout | undefined;
    try {
      return await new Promise<{ tally: Record<string, number>; failures: { what: string; hex: string }[]; cases: number; streamCases: number; slowestMs: number; largestAlloc: number }>((resolve, reject) => {
        let last = -1;
        let stuckSince = Date.now();
        watchdog = setInterval(() => {
          const now = Atomics.load(counter, 0);
          if (now !== last) {
            last = now;
            stuckSince = Date.now();
          } else if (Date.now() - stuckSince > 10_000) {
            const len = new Int32Array(progress, 4, 1)[0];
            const bytes = Buffer.from(new Uint8Array(progress, 8, Math.min(len, 65536)));
            reject(new Error(`the decoder hangs on case ${now}: ${bytes.toString('hex')}`));
          }
        }, 250);
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`the fuzz worker exited (${code}) without a report`)));
      });
    } finally {
      clearInterval(watchdog);
      await worker.terminate();
    }
  }

  it('2,000 random, mutated and valid frames decode to a valid message or a ProtocolError, never hang, never allocate past maxBytes; 300 through a stream agree', { timeout: 60_000 }, async () => {
    const r = await fuzz(2000, 300, 0x5eed);
    expect(r.failures).toEqual([]);
    expect(r.cases).toBe(2000);
    expect(r.streamCases).toBe(300);
    expect(r.slowestMs).toBeLessThan(1000);
    expect(r.largestAlloc).toBeLessThanOrEqual(4096);
    // Every kind of outcome is reached, so the generators exercise the whole reader.
    for (const k of ['ok', 'undecodable', 'truncated', 'too-large', 'trailing-bytes', 'invalid']) {
      expect(r.tally[`StepResult ${k}`] ?? 0, `StepResult ${k} in ${JSON.stringify(r.tally)}`).toBeGreaterThan(10);
    }
    for (const k of ['ok', 'undecodable', 'truncated', 'too-large']) expect(r.tally[`stream ${k}`] ?? 0, `stream ${k}`).toBeGreaterThan(5);
    console.log(`fuzz-messages: ${r.cases} frames x 2 decoders, ${r.streamCases} stream reads: ${JSON.stringify(r.tally)}`);
  });
});
