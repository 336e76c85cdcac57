// CompactWriter (protocol/compact-writer.ts) writes what thrift's TCompactProtocol writes, byte
// for byte: the same calls on both, then the same messages of every kind with their values
// changed at random. The reference is thrift's writer as encodeFrame used it before, doubles
// written exactly (thrift's own writeDouble is wrong for some tiny values; see the writer).
import { createRequire } from 'node:module';
import fc from 'fast-check';
import thrift from 'thrift';
import { describe, expect, it } from 'vitest';
import { CompactWriter } from '../../dist/protocol/compact-writer.js';
import { decodeFrame, encodeFrame, type ThriftStruct } from '../../dist/protocol/framing.js';
import { encodeClientMessage, encodeServerMessage, MAX_CONTROL_FRAME_BYTES, PROTOCOL_VERSION, type ClientMessage, type ServerMessage } from '../../dist/protocol/control.js';
import { encodeMessage } from '../../dist/protocol/messages.js';
import { encodeStepRequest, stepResultError, stepResultOk } from '../../dist/protocol/step.js';
import type * as StepGen from '../../protocol/gen/step_types.cjs';
import { gen, prng } from './helpers.js';

const stepGen = createRequire(import.meta.url)('../../dist/protocol/gen/step_types.cjs') as typeof StepGen;
const { Int64 } = createRequire(import.meta.url)('thrift') as { Int64: new (buf: Buffer) => { buffer: Buffer } };
const T = thrift.Thrift.Type;

/** thrift's TCompactProtocol on a framed transport, its frame's payload once flushed. */
function thriftWriter(): { p: thrift.TProtocol; bytes(): Buffer } {
  let frame: Buffer | undefined;
  const transport = new thrift.TFramedTransport(undefined, (buf?: Buffer) => (frame = buf));
  const p = new thrift.TCompactProtocol(transport);
  p.writeDouble = (v: number) => {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleLE(v, 0);
    transport.write(b);
  };
  return { p, bytes: () => (p.flush(), frame!.subarray(4)) };
}

/** Runs the same calls on both writers and expects the same bytes. */
function same(calls: (p: thrift.TProtocol) => void): Buffer {
  const ours = new CompactWriter(8);
  calls(ours.asProtocol());
  const ref = thriftWriter();
  calls(ref.p);
  expect(ours.bytes().toString('hex')).toBe(ref.bytes().toString('hex'));
  return ours.bytes();
}

const int64Of = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(v);
  return new Int64(b);
};

describe('CompactWriter writes what TCompactProtocol writes', () => {
  it('field headers: id deltas of 1 to 15 in one byte, larger, equal and falling ids apart', () => {
    same((p) => {
      p.writeStructBegin('s');
      for (const id of [1, 2, 17, 18, 33, 32, 32, -1, 200, 32767]) {
        p.writeFieldBegin('f', T.I32, id);
        p.writeI32(id);
        p.writeFieldEnd();
      }
      p.writeFieldStop();
      p.writeStructEnd();
    });
  });

  it('bool fields carry their value in the header; bools in a list are bytes', () => {
    same((p) => {
      p.writeStructBegin('s');
      p.writeFieldBegin('a', T.BOOL, 1);
      p.writeBool(true);
      p.writeFieldBegin('b', T.BOOL, 40);
      p.writeBool(false);
      p.writeFieldBegin('l', T.LIST, 41);
      p.writeListBegin(T.BOOL, 3);
      for (const v of [true, false, true]) p.writeBool(v);
      p.writeListEnd();
      p.writeFieldStop();
      p.writeStructEnd();
    });
  });

  it('nested structs keep their own last field id', () => {
    same((p) => {
      p.writeStructBegin('outer');
      p.writeFieldBegin('a', T.I32, 5);
      p.writeI32(1);
      p.writeFieldBegin('inner', T.STRUCT, 6);
      p.writeStructBegin('inner');
      p.writeFieldBegin('x', T.STRING, 1);
      p.writeString('x');
      p.writeFieldStop();
      p.writeStructEnd();
      p.writeFieldBegin('b', T.I32, 7);
      p.writeI32(2);
      p.writeFieldStop();
      p.writeStructEnd();
    });
  });

  it('lists and sets of 0, 14, 15 and 300 elements, maps empty and not', () => {
    same((p) => {
      for (const n of [0, 14, 15, 300]) {
        p.writeListBegin(T.I32, n);
        for (let i = 0; i < n; i++) p.writeI32(i - 150);
        p.writeSetBegin(T.STRING, n);
        for (let i = 0; i < n; i++) p.writeString(String(i));
      }
      p.writeMapBegin(T.STRING, T.I64, 0);
      p.writeMapBegin(T.STRING, T.DOUBLE, 2);
      p.writeString('a');
      p.writeDouble(1.5);
      p.writeString('b');
      p.writeDouble(-0);
    });
  });

  it('strings in UTF-8, binaries as given (a string binary as latin1), bytes, a buffer that must grow', () => {
    same((p) => {
      for (const s of ['', 'ascii', 'naïve 日本 \u{1f600} \0', 'x'.repeat(70_000)]) p.writeString(s);
      p.writeBinary(Buffer.from([0, 1, 255, 128]));
      p.writeBinary('\u00ff\u0080latin');
      for (const b of [0, 1, 127, 128, 255, -1, -128]) p.writeByte(b);
    });
  });

  it('property: i16, i32 and i64 of any value, as numbers, strings and Int64 (fast-check, 2,000 cases)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.integer({ min: -(2 ** 15), max: 2 ** 15 - 1 }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        fc.oneof(fc.maxSafeInteger(), fc.double({ min: -(2 ** 63), max: 2 ** 63, noNaN: true }), fc.constantFrom(0, -0, Number.NaN, 2 ** 53, -(2 ** 53), 2 ** 63, -(2 ** 63), 1.5, -1.5)),
        (i32, i16, big, n) => {
          same((p) => {
            p.writeI32(i32);
            p.writeI16(i16);
            p.writeI64(int64Of(big) as never);
            p.writeI64(n as never);
            p.writeI64(String(Math.trunc(n)) as never);
          });
        },
      ),
      { numRuns: 2000, seed: 0xc0de },
    );
  });

  it('property: doubles of any value, exactly (fast-check, 2,000 cases)', () => {
    fc.assert(
      fc.property(fc.double(), (x) => {
        const bytes = same((p) => p.writeDouble(x));
        expect(Object.is(bytes.readDoubleLE(0), x)).toBe(true);
      }),
      { numRuns: 2000, seed: 0xd0b1 },
    );
  });

  it('a plain Uint8Array binary (which the thrift transport cannot take) as the same bytes in a Buffer', () => {
    const a = new CompactWriter();
    a.writeBinary(new Uint8Array([9, 8, 7]));
    const b = new CompactWriter();
    b.writeBinary(Buffer.from([9, 8, 7]));
    expect(a.bytes()).toEqual(b.bytes());
    expect([...a.bytes()]).toEqual([3, 9, 8, 7]);
  });

  it('an i64 beyond 2^64 is a RangeError, as it is for thrift; a non-number a TypeError', () => {
    expect(() => new CompactWriter().writeI64(2 ** 65)).toThrow(RangeError);
    expect(() => new CompactWriter().writeI64(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => new CompactWriter().writeI64({} as never)).toThrow(TypeError);
    expect(() => new CompactWriter().writeString(5 as never)).toThrow(/writeString called without a string or Buffer: 5/);
  });
});

/** Changes every value in a decoded struct to a random one of the same kind, in place. */
function scramble(v: unknown, r: ReturnType<typeof prng>): unknown {
  if (v === null || v === undefined) return v;
  if (typeof v === 'number') {
    const pick = r.int(4);
    return pick === 0 ? r.int(256) - 128 : pick === 1 ? (r.int(2 ** 31) - 2 ** 30) * 2 : pick === 2 ? (r.next() - 0.5) * 2 ** r.int(80) : -r.int(1000);
  }
  if (typeof v === 'string') return Array.from({ length: r.int(12) }, () => String.fromCodePoint(r.int(3) === 0 ? r.int(0x10ffff - 0xe000) + 0xe000 : r.int(128))).join('');
  if (typeof v === 'boolean') return r.int(2) === 1;
  if (Buffer.isBuffer(v)) return Buffer.from(Array.from({ length: r.int(10) }, () => r.byte()));
  if (v instanceof Int64) return int64Of(BigInt.asIntN(64, BigInt(Math.floor(r.next() * 2 ** 53)) * BigInt(r.int(4096) - 2048)));
  if (Array.isArray(v)) return v.map((x) => scramble(x, r));
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [scramble(k, r), scramble(x, r)]));
  if (typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) (v as Record<string, unknown>)[k] = scramble(x, r);
    return v;
  }
  return v;
}

describe('every message kind, with its values scrambled, encodes the same', () => {
  const client: ClientMessage[] = [
    { kind: 'stats', id: 7 },
    { kind: 'health', id: 8 },
    { kind: 'kill', id: 7, signal: 15 },
    {
      kind: 'spawn',
      id: 9,
      argsJson: '["a"]',
      name: 's',
      sandbox: { nofile: 64, fsize: 2 ** 40, skip: ['seccomp'], injectStep: 'setresuid', injectErrno: 'EPERM', network: { allow: ['10.0.0.0/8:5432'] }, mounts: [{ source: '/a', target: '/b', writable: true }], output: { target: '/output' } },
      limits: { wallTimeMs: 1000, cpuTimeMs: 2 ** 40, memoryBytes: 2 ** 30, pids: 64, tmpBytes: 1 << 20, outputBytes: 1 << 30, outputFiles: 10 },
    } as ClientMessage,
  ];
  const server: ServerMessage[] = [
    { kind: 'hello', protocolVersion: PROTOCOL_VERSION, zygotePid: 1234, nodeVersion: 'v20.20.2' },
    { kind: 'startupFailed', message: 'no' },
    { kind: 'spawned', id: 5, pid: 99, limits: { wallTimeMs: 60_000, cpuTimeMs: null, memoryBytes: 2 ** 40, pids: 32, tmpBytes: 64 << 20, fileBytes: 2 ** 30, nofile: 256, outputBytes: 2 ** 30, outputFiles: 4096 } },
    { kind: 'spawnFailed', id: 8, step: 'limits', errnoName: '', message: 'above', sandbox: false, aboveCap: { field: 'memoryBytes', requested: 2 ** 33, cap: 2 ** 30 } },
    { kind: 'spawnFailed', id: 10, step: 'admission', errnoName: '', message: 'full', sandbox: false, capacity: { cap: 'children-per-uid', limit: 3 } },
    { kind: 'exited', id: 3, pid: 4, code: 0, signal: null, wallMs: 12.375, cpuMs: 3.5, maxRssBytes: 4096, memoryPeakBytes: 1e6, limit: 'oom' },
    { kind: 'stats', id: 12, busy: 3, queued: 1, poolIdle: 2, poolSize: 4, claimed: 900, forked: 17, retired: 2 },
    { kind: 'health', id: 13, healthy: false, problems: ['a', 'b'], checks: ['serving'] },
    { kind: 'queued', id: 12, timeoutMs: 30_000 },
    { kind: 'refused', reason: 'connections-per-uid', message: 'too many', limit: 64 },
    { kind: 'fault', message: 'boom' },
  ];
  const step: [Buffer, new () => ThriftStruct][] = [
    [encodeMessage(encodeStepRequest({ module: '/s.mjs', outputPath: '/o', inputPath: '/i', files: ['f'], params: { a: 1, b: [true, 'x', 2.5, 2n ** 60n], c: { d: 'e' } } })), stepGen.StepRequest as never],
    [encodeMessage(stepResultOk({ rows: 10, columns: 2 })), stepGen.StepResult as never],
    [encodeMessage(stepResultError('Error: x\n    at y')), stepGen.StepResult as never],
  ];
  const frames: [string, Buffer, new () => ThriftStruct][] = [
    ...client.map((m) => [`client ${m.kind}`, encodeClientMessage(m), gen.ClientMessage as never] as [string, Buffer, new () => ThriftStruct]),
    ...server.map((m) => [`server ${m.kind}`, encodeServerMessage(m), gen.ServerMessage as never] as [string, Buffer, new () => ThriftStruct]),
    ...step.map(([f, Type], i) => [`step message ${i}`, f, Type] as [string, Buffer, new () => ThriftStruct]),
  ];

  it.each(frames)('%s (200 scrambles)', (_, frame, Type) => {
    // The message as sent decodes to what thrift's writer would have sent.
    const decoded = decodeFrame(frame, Type, 'T', MAX_CONTROL_FRAME_BYTES);
    const ref = thriftWriter();
    decoded.write(ref.p);
    expect(frame.subarray(4).toString('hex')).toBe(ref.bytes().toString('hex'));
    const r = prng(frame.length);
    for (let i = 0; i < 200; i++) {
      const m = decodeFrame(frame, Type, 'T', MAX_CONTROL_FRAME_BYTES);
      scramble(m, r);
      same((p) => m.write(p));
    }
  });

  it('encodeFrame puts the payload behind its length and refuses one over the limit', () => {
    const m = decodeFrame(encodeServerMessage({ kind: 'fault', message: 'x'.repeat(100) }), gen.ServerMessage as never, 'T', MAX_CONTROL_FRAME_BYTES) as ThriftStruct;
    const f = encodeFrame(m, 1000);
    expect(f.readUInt32BE(0)).toBe(f.length - 4);
    expect(() => encodeFrame(m, 50)).toThrow(/frame of \d+ bytes exceeds the 50-byte limit/);
  });
});
