// Unit tests of the control messages (protocol/control.ts): every ClientMessage and
// ServerMessage kind round-trips, and every malformed frame is refused with a ProtocolError
// whose reason is exact and whose message says what was wrong.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  decodeClientMessage,
  decodeServerMessage,
  encodeClientMessage,
  encodeServerMessage,
  MAX_CONTROL_FRAME_BYTES,
  MAX_NETWORK_ALLOW,
  PROTOCOL_VERSION,
  type ClientMessage,
  type ServerMessage,
} from '../../dist/protocol/control.js';
import type { ProtocolErrorReason } from '../../dist/protocol/errors.js';
import { decodePayload, encodeFrame } from '../../dist/protocol/framing.js';
import { compactString, CT, expectProtocolError, field, frameOf, gen, prng, zigzagVarint } from './helpers.js';

const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

/** Little-endian IEEE double, as the compact protocol writes it. */
function doubleLE(x: number): number[] {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x, 0);
  return [...b];
}

describe('control protocol constants', () => {
  it('speaks protocol version 2 (1 had no Refused or Queued) with a 128 KiB frame limit', () => {
    expect(PROTOCOL_VERSION).toBe(2);
    expect(MAX_CONTROL_FRAME_BYTES).toBe(128 * 1024);
  });
});

describe('ClientMessage round-trips', () => {
  const cases: [string, ClientMessage][] = [
    ['a stats request', { kind: 'stats', id: 7 }],
    ['a health request', { kind: 'health', id: 8 }],
    ['a spawn with a name', { kind: 'spawn', id: 1, argsJson: '["echo-args",1,{"a":[true,null]}]', name: 'step one', sandbox: { skip: [] }, limits: {} }],
    [
      'a spawn with a full sandbox request',
      { kind: 'spawn', id: 9, argsJson: '[]', name: 's', sandbox: { nofile: 64, fsize: 2 ** 40, skip: ['seccomp', 'credentials'], injectStep: 'setresuid', injectErrno: 'EPERM' }, limits: { wallTimeMs: 1000, cpuTimeMs: 2 ** 40 } },
    ],
    ['a spawn with an empty name', { kind: 'spawn', id: 2, argsJson: '[]', name: '', sandbox: { skip: [] }, limits: {} }],
    ['a networked spawn with allow entries', { kind: 'spawn', id: 4, argsJson: '[]', name: '', sandbox: { skip: [], network: { allow: ['203.0.113.7:443', '10.0.0.0/8:5432'] } }, limits: {} }],
    ['a networked spawn without allow entries', { kind: 'spawn', id: 5, argsJson: '[]', name: '', sandbox: { skip: [], network: { allow: [] } }, limits: {} }],
    ['a spawn with non-ASCII arguments', { kind: 'spawn', id: 3, argsJson: JSON.stringify(['ü', '日本', '\u{1f600}', '\0']), name: 'naïve', sandbox: { skip: [] }, limits: {} }],
    ['a spawn with the extreme i32 ids', { kind: 'spawn', id: I32_MIN, argsJson: '[]', name: '', sandbox: { skip: [] }, limits: {} }],
    ['a spawn with the largest i32 id', { kind: 'spawn', id: I32_MAX, argsJson: '[]', name: '', sandbox: { skip: [] }, limits: {} }],
    ['a kill', { kind: 'kill', id: 7, signal: 15 }],
    ['a kill with negative numbers', { kind: 'kill', id: -1, signal: -9 }],
  ];
  it.each(cases)('%s', (_, msg) => {
    const frame = encodeClientMessage(msg);
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    expect(decodeClientMessage(frame)).toEqual(msg);
  });

  it('a spawn whose optional name is absent on the wire decodes with name ""', () => {
    const m = new gen.ClientMessage({ spawn: new gen.SpawnRequest({ id: 4, argsJson: '[1]' }) });
    expect(decodeClientMessage(encodeFrame(m, MAX_CONTROL_FRAME_BYTES))).toEqual({ kind: 'spawn', id: 4, argsJson: '[1]', name: '', sandbox: { skip: [] }, limits: {} });
  });

  it('a spawn just under the frame limit', () => {
    const msg: ClientMessage = { kind: 'spawn', id: 1, argsJson: JSON.stringify(['x'.repeat(MAX_CONTROL_FRAME_BYTES - 64)]), name: '', sandbox: { skip: [] }, limits: {} };
    const frame = encodeClientMessage(msg);
    expect(frame.length - 4).toBeLessThanOrEqual(MAX_CONTROL_FRAME_BYTES);
    expect(decodeClientMessage(frame)).toEqual(msg);
  });
});

describe('ServerMessage round-trips', () => {
  const exitedBase = { kind: 'exited' as const, id: 3, pid: 4242, wallMs: 12.375, cpuMs: 3.5, maxRssBytes: 45 * 1024 * 1024, memoryPeakBytes: null, limit: null };
  const cases: [string, ServerMessage][] = [
    ['a hello', { kind: 'hello', protocolVersion: PROTOCOL_VERSION, zygotePid: 1234, nodeVersion: 'v20.20.2' }],
    ['a startupFailed', { kind: 'startupFailed', message: 'Cannot find module /x/main.mjs' }],
    ['a spawned', { kind: 'spawned', id: 5, pid: 99_999 }],
    [
      'a spawned with the limits it was granted, none where null',
      { kind: 'spawned', id: 5, pid: 99_999, limits: { wallTimeMs: 60_000, cpuTimeMs: null, memoryBytes: 2 ** 40, pids: 32, tmpBytes: 64 << 20, fileBytes: 2 ** 30, nofile: 256, outputBytes: 2 ** 30, outputFiles: 4096 } },
    ],
    ['a spawnFailed for a limit above its cap', { kind: 'spawnFailed', id: 8, step: 'limits', errnoName: '', message: 'above the cap', sandbox: false, aboveCap: { field: 'memoryBytes', requested: 2 ** 33, cap: 2 ** 30 } }],
    ['a spawnFailed for no limit where there is a cap', { kind: 'spawnFailed', id: 9, step: 'limits', errnoName: '', message: 'above the cap', sandbox: false, aboveCap: { field: 'pids', requested: null, cap: 64 } }],
    ['a spawnFailed with an errno', { kind: 'spawnFailed', id: 6, step: 'fork', errnoName: 'EAGAIN', message: 'fork failed: Resource temporarily unavailable', sandbox: false }],
    ['a spawnFailed without an errno', { kind: 'spawnFailed', id: 7, step: 'arguments', errnoName: '', message: 'argsJson is not a JSON array', sandbox: false }],
    ['an exited with a code and no signal', { ...exitedBase, code: 0, signal: null }],
    ['an exited with a non-zero code', { ...exitedBase, code: 255, signal: null }],
    ['an exited with a signal and no code', { ...exitedBase, code: null, signal: 9 }],
    ['an exited with neither code nor signal', { ...exitedBase, code: null, signal: null }],
    ['an exited with zero measurements', { ...exitedBase, code: 1, signal: null, wallMs: 0, cpuMs: 0, maxRssBytes: 0 }],
    // A double Thrift's own compact writer gets wrong (found by the mutation fuzzer below).
    ['an exited with a double near a power of two', { ...exitedBase, code: 0, signal: null, maxRssBytes: 1.656084321055619e-170, memoryPeakBytes: 1.780059086805762e-307 }],
    ['an exited with its cgroup\'s peak memory', { ...exitedBase, code: 0, signal: null, memoryPeakBytes: 812 * 1024 * 1024 }],
    ['an exited the zygote ended for a limit', { ...exitedBase, code: null, signal: 9, limit: 'timeout' as const }],
    ['a stats answer', { kind: 'stats', id: 12, busy: 3, queued: 1, poolIdle: 2, poolSize: 4, claimed: 900, forked: 17, retired: 2 }],
    ['a health answer', { kind: 'health', id: 13, healthy: false, problems: ['cannot fork: EAGAIN', 'the memory cgroup /x is gone'], checks: ['serving', 'fork', 'cgroups'] }],
    ['an exit at the end of a drain', { kind: 'exited', id: 3, pid: 4, code: null, signal: 9, wallMs: 10, cpuMs: 1, maxRssBytes: 4096, memoryPeakBytes: null, limit: 'shutdown' }],
    ['a fault', { kind: 'fault', message: 'frame header claims 9 bytes but 3 followed' }],
    ['a spawnFailed for lack of room', { kind: 'spawnFailed', id: 10, step: 'admission', errnoName: '', message: 'full', sandbox: false, capacity: { cap: 'children-per-uid', limit: 3 } }],
    ['a spawnFailed after a queue timeout', { kind: 'spawnFailed', id: 11, step: 'admission', errnoName: '', message: 'waited', sandbox: false, capacity: { cap: 'queue-timeout', limit: 30_000 } }],
    ['a queued', { kind: 'queued', id: 12, timeoutMs: 30_000 }],
    ['a refused connection', { kind: 'refused', reason: 'not-allowed', message: 'uid 5 is not in --allow-uid' }],
    ['a refused connection with its cap', { kind: 'refused', reason: 'connections-per-uid', message: 'too many', limit: 64 }],
  ];
  it.each(cases)('%s', (_, msg) => {
    const frame = encodeServerMessage(msg);
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    expect(decodeServerMessage(frame)).toEqual(msg);
  });

  it('an exited with code null carries no code field on the wire (and signal null no signal field)', () => {
    const bySignal = encodeServerMessage({ ...exitedBase, code: null, signal: 9 });
    const byCode = encodeServerMessage({ ...exitedBase, code: 0, signal: null });
    // Each leaves out exactly one optional i32 field: the same size, different contents.
    expect(bySignal.length).toBe(byCode.length);
    expect(bySignal.equals(byCode)).toBe(false);
    const rawBySignal = decodePayload(bySignal.subarray(4), gen.ServerMessage, 'ServerMessage').exited!;
    const rawByCode = decodePayload(byCode.subarray(4), gen.ServerMessage, 'ServerMessage').exited!;
    expect([rawBySignal.code, rawBySignal.signal]).toEqual([null, 9]);
    expect([rawByCode.code, rawByCode.signal]).toEqual([0, null]);
    expect(decodeServerMessage(bySignal)).toMatchObject({ code: null, signal: 9 });
    expect(decodeServerMessage(byCode)).toMatchObject({ code: 0, signal: null });
  });
});

describe('decodeClientMessage rejects', () => {
  const spawnFrame = () => encodeClientMessage({ kind: 'spawn', id: 1, argsJson: '["echo-args"]', name: 'n', sandbox: { skip: [] }, limits: {} });

  it.each([0, 1, 3])('attack: a %i-byte frame, shorter than its header, as truncated', (n) => {
    expectProtocolError(() => decodeClientMessage(Buffer.alloc(n)), 'truncated', `frame of ${n} bytes is shorter than its 4-byte header`);
  });

  it('attack: a header claiming more bytes than present, as truncated', () => {
    const f = spawnFrame();
    f.writeUInt32BE(f.length - 4 + 1, 0);
    expectProtocolError(() => decodeClientMessage(f), 'truncated', `frame header claims ${f.length - 3} bytes but ${f.length - 4} followed`);
  });

  it('attack: a header claiming fewer bytes than present, as length-mismatch', () => {
    const f = spawnFrame();
    f.writeUInt32BE(1, 0);
    expectProtocolError(() => decodeClientMessage(f), 'length-mismatch', `frame header claims 1 bytes but ${f.length - 4} followed`);
  });

  it('attack: a header claiming 2 GiB, as too-large, before looking at the (absent) payload', () => {
    expectProtocolError(() => decodeClientMessage(frameOf([], 2 ** 31)), 'too-large', `frame header claims 2147483648 bytes; the limit is ${MAX_CONTROL_FRAME_BYTES}`);
  });

  it('attack: a truthful header over the limit, as too-large', () => {
    expectProtocolError(() => decodeClientMessage(frameOf(Buffer.alloc(MAX_CONTROL_FRAME_BYTES + 1))), 'too-large', `claims ${MAX_CONTROL_FRAME_BYTES + 1} bytes`);
  });

  it('attack: a garbage payload, as undecodable, with the offset where decoding stopped', () => {
    expectProtocolError(
      () => decodeClientMessage(frameOf([0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03])),
      'undecodable',
      /^ClientMessage does not decode at offset \d+ of 7: \S/,
    );
  });

  it('attack: a spawn cut off mid-string, as undecodable at the offset where the string should be, saying input ran out', () => {
    // 1c (spawn) 15 02 (id 1) 18 0d (argsJson, 13 bytes) then only 1 of those 13 bytes.
    const f = spawnFrame();
    const cut = frameOf(f.subarray(4, 10));
    expectProtocolError(() => decodeClientMessage(cut), 'undecodable', 'ClientMessage does not decode at offset 5 of 6: InputBufferUnderrunError');
  });

  it('attack: a valid message followed by extra bytes in the same frame, as trailing-bytes', () => {
    const f = spawnFrame();
    const payload = Buffer.concat([f.subarray(4), Buffer.from([0, 0])]);
    expectProtocolError(() => decodeClientMessage(frameOf(payload)), 'trailing-bytes', `2 bytes follow the ClientMessage that ended at offset ${f.length - 4}`);
  });

  it('attack: a union with no member (an empty struct), as invalid', () => {
    expectProtocolError(() => decodeClientMessage(frameOf([CT.STOP])), 'invalid', 'ClientMessage must have exactly one member set, found none');
  });

  it('attack: a union with only an unknown member, as invalid', () => {
    // Field 9, an i32 the schema does not have: skipped, leaving no member.
    expectProtocolError(() => decodeClientMessage(frameOf([field(9, CT.I32), 2, CT.STOP])), 'invalid', 'found none');
  });

  it('attack: a union with two members (spawn and kill), built with the Thrift library, as invalid naming both', () => {
    const m = new gen.ClientMessage();
    m.spawn = new gen.SpawnRequest({ id: 1, argsJson: '[]' });
    m.kill = new gen.KillRequest({ id: 1, signal: 9 });
    expectProtocolError(() => decodeClientMessage(encodeFrame(m, MAX_CONTROL_FRAME_BYTES)), 'invalid', 'ClientMessage must have exactly one member set, found spawn, kill');
  });

  it(`attack: a network request with more allow entries than MAX_NETWORK_ALLOW, as invalid`, () => {
    const allow = Array.from({ length: MAX_NETWORK_ALLOW + 1 }, (_, i) => `198.51.100.${i % 256}:443`);
    const frame = encodeClientMessage({ kind: 'spawn', id: 1, argsJson: '[]', name: '', sandbox: { skip: [], network: { allow } }, limits: {} });
    expectProtocolError(() => decodeClientMessage(frame), 'invalid', `SandboxRequest.network.allow has ${MAX_NETWORK_ALLOW + 1} entries, more than ${MAX_NETWORK_ALLOW}`);
  });

  it('attack: a spawn missing its required argsJson, built with the Thrift library, as invalid naming the field', () => {
    const s = new gen.SpawnRequest(); // no arguments: the constructor's required-field check does not run
    s.id = 1;
    const m = new gen.ClientMessage();
    m.spawn = s;
    expectProtocolError(() => decodeClientMessage(encodeFrame(m, MAX_CONTROL_FRAME_BYTES)), 'invalid', 'SpawnRequest.argsJson is required and must be a string');
  });

  it('attack: a spawn missing its required id, hand-crafted, as invalid naming the field', () => {
    const payload = [field(1, CT.STRUCT), field(2, CT.BINARY), ...compactString('[]'), CT.STOP, CT.STOP];
    expectProtocolError(() => decodeClientMessage(frameOf(payload)), 'invalid', 'SpawnRequest.id is required and must be an i32');
  });

  it('attack: a kill missing its required signal, hand-crafted, as invalid naming the field', () => {
    const payload = [field(2, CT.STRUCT), field(1, CT.I32), ...zigzagVarint(5), CT.STOP, CT.STOP];
    expectProtocolError(() => decodeClientMessage(frameOf(payload)), 'invalid', 'KillRequest.signal is required and must be an i32');
  });

  it('attack: a spawn whose id has the wrong wire type (a string), as invalid naming the field', () => {
    const payload = [field(1, CT.STRUCT), field(1, CT.BINARY), ...compactString('1'), field(1, CT.BINARY), ...compactString('[]'), CT.STOP, CT.STOP];
    expectProtocolError(() => decodeClientMessage(frameOf(payload)), 'invalid', 'SpawnRequest.id is required and must be an i32');
  });

  it('attack: a server message sent to the zygote, as invalid (no ClientMessage member)', () => {
    // ServerMessage field 1 (hello) is ClientMessage field 1 (spawn): its protocolVersion reads
    // as the id and nodeVersion as the name, but nothing fills argsJson.
    expectProtocolError(() => decodeClientMessage(encodeServerMessage({ kind: 'fault', message: 'x' })), 'invalid', 'found none');
    expectProtocolError(
      () => decodeClientMessage(encodeServerMessage({ kind: 'hello', protocolVersion: 1, zygotePid: 2, nodeVersion: 'v20' })),
      'invalid',
      'SpawnRequest.argsJson is required and must be a string',
    );
  });

  it('attack: 10,000 levels of nested unknown struct fields, as a ProtocolError, not a crash', () => {
    const payload = [...Array(10_000).fill(field(7, CT.STRUCT)), ...Array(10_001).fill(CT.STOP)];
    expectProtocolError(() => decodeClientMessage(frameOf(payload)), 'undecodable', /^ClientMessage does not decode at offset \d+ of 20001: .*(depth|nesting)/i);
  });

  it('attack: 10,000 levels of nested structs inside a known member, as a ProtocolError, not a crash', () => {
    const payload = [field(1, CT.STRUCT), ...Array(10_000).fill(field(5, CT.STRUCT)), ...Array(10_002).fill(CT.STOP)];
    expectProtocolError(() => decodeClientMessage(frameOf(payload)), 'undecodable', /depth|nesting/i);
  });

  it('attack: a string whose length claims 2 GiB inside a small frame, as undecodable', () => {
    const payload = [field(1, CT.STRUCT), field(2, CT.BINARY), 0x80, 0x80, 0x80, 0x80, 0x08, CT.STOP, CT.STOP];
    expectProtocolError(() => decodeClientMessage(frameOf(payload)), 'undecodable', 'ClientMessage does not decode at offset');
  });

  it('attack: an unknown list field claiming 2^31 elements, as undecodable, without looping for long', () => {
    const payload = [field(9, CT.LIST), 0xf5, 0xff, 0xff, 0xff, 0xff, 0x07, 2, 2, 2, CT.STOP];
    const t0 = performance.now();
    expectProtocolError(() => decodeClientMessage(frameOf(payload)), 'undecodable');
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('decodeServerMessage rejects', () => {
  it('attack: a short frame, as truncated', () => {
    expectProtocolError(() => decodeServerMessage(Buffer.from([0, 0])), 'truncated', 'frame of 2 bytes is shorter than its 4-byte header');
  });

  it('attack: a header claiming 2 GiB, as too-large', () => {
    expectProtocolError(() => decodeServerMessage(frameOf([0], 2 ** 31)), 'too-large', 'claims 2147483648 bytes');
  });

  it('attack: a lying header, as truncated or length-mismatch', () => {
    const f = encodeServerMessage({ kind: 'fault', message: 'boom' });
    const more = Buffer.from(f);
    more.writeUInt32BE(f.length, 0);
    expectProtocolError(() => decodeServerMessage(more), 'truncated', `claims ${f.length} bytes but ${f.length - 4} followed`);
    const fewer = Buffer.from(f);
    fewer.writeUInt32BE(0, 0);
    expectProtocolError(() => decodeServerMessage(fewer), 'length-mismatch', `claims 0 bytes but ${f.length - 4} followed`);
  });

  it('attack: garbage, as undecodable with an offset', () => {
    expectProtocolError(() => decodeServerMessage(frameOf([0xff, 0x00])), 'undecodable', /^ServerMessage does not decode at offset \d+ of 2/);
  });

  it('attack: a valid message with trailing bytes, as trailing-bytes', () => {
    const f = encodeServerMessage({ kind: 'spawned', id: 1, pid: 2 });
    expectProtocolError(() => decodeServerMessage(frameOf(Buffer.concat([f.subarray(4), Buffer.from([9])]))), 'trailing-bytes', `1 bytes follow the ServerMessage that ended at offset ${f.length - 4}`);
  });

  it('attack: a union with no member, as invalid', () => {
    expectProtocolError(() => decodeServerMessage(frameOf([CT.STOP])), 'invalid', 'ServerMessage must have exactly one member set, found none');
  });

  it('attack: a union with two members (hello and fault), as invalid naming both', () => {
    const m = new gen.ServerMessage();
    m.hello = new gen.Hello({ protocolVersion: 1, zygotePid: 2, nodeVersion: 'v20' });
    m.fault = new gen.Fault({ message: 'x' });
    expectProtocolError(() => decodeServerMessage(encodeFrame(m, MAX_CONTROL_FRAME_BYTES)), 'invalid', 'ServerMessage must have exactly one member set, found hello, fault');
  });

  it('attack: a hello missing its required nodeVersion, built with the Thrift library, as invalid naming the field', () => {
    const h = new gen.Hello();
    h.protocolVersion = 1;
    h.zygotePid = 2;
    const m = new gen.ServerMessage();
    m.hello = h;
    expectProtocolError(() => decodeServerMessage(encodeFrame(m, MAX_CONTROL_FRAME_BYTES)), 'invalid', 'Hello.nodeVersion is required and must be a string');
  });

  it('attack: an exited missing its required wallMs, hand-crafted, as invalid naming the field', () => {
    const exited = [
      field(1, CT.I32), ...zigzagVarint(1), // id
      field(1, CT.I32), ...zigzagVarint(2), // pid
      field(1, CT.I32), ...zigzagVarint(0), // code
      field(3, CT.DOUBLE), ...doubleLE(1.5), // cpuMs (field 6): wallMs (field 5) is missing
      field(1, CT.DOUBLE), ...doubleLE(1024), // maxRssBytes
      CT.STOP,
    ];
    expectProtocolError(() => decodeServerMessage(frameOf([field(5, CT.STRUCT), ...exited, CT.STOP])), 'invalid', 'Exited.wallMs is required and must be a number');
  });

  it('attack: an exited whose wallMs is NaN, as invalid', () => {
    const f = encodeServerMessage({ kind: 'exited', id: 1, pid: 2, code: 0, signal: null, wallMs: Number.NaN, cpuMs: 0, maxRssBytes: 0, memoryPeakBytes: null, limit: null });
    expectProtocolError(() => decodeServerMessage(f), 'invalid', 'Exited.wallMs is required and must be a number');
  });

  it('attack: a spawnFailed whose aboveCap names no known limit, as invalid', () => {
    const f = encodeServerMessage({ kind: 'spawnFailed', id: 1, step: 'limits', errnoName: '', message: 'm', sandbox: false, aboveCap: { field: 'swapBytes' as never, requested: 1, cap: 0 } });
    expectProtocolError(() => decodeServerMessage(f), 'invalid', 'LimitAboveCap.field must be one of wallTimeMs, cpuTimeMs, memoryBytes, pids, tmpBytes, fileBytes, nofile, outputBytes, outputFiles');
  });

  it('attack: a spawnFailed naming an unknown capacity cap, a refusal with an unknown reason, a queued with no wait: invalid', () => {
    const cap = encodeServerMessage({ kind: 'spawnFailed', id: 1, step: 'admission', errnoName: '', message: 'm', sandbox: false, capacity: { cap: 'cpu' as never, limit: 1 } });
    expectProtocolError(() => decodeServerMessage(cap), 'invalid', 'Capacity.cap must be one of children, children-per-uid, queue-full, queue-timeout');
    const refused = encodeServerMessage({ kind: 'refused', reason: 'bored' as never, message: 'm' });
    expectProtocolError(() => decodeServerMessage(refused), 'invalid', 'Refused.reason must be one of not-allowed, connections-per-uid, fds');
    expectProtocolError(() => decodeServerMessage(encodeServerMessage({ kind: 'queued', id: 1, timeoutMs: 0 })), 'invalid', 'Queued.timeoutMs must be positive');
  });

  it('attack: a spawned whose granted limits are negative, as invalid', () => {
    const f = encodeServerMessage({ kind: 'spawned', id: 1, pid: 2, limits: { wallTimeMs: -1, cpuTimeMs: null, memoryBytes: null, pids: null, tmpBytes: 1, fileBytes: 1, nofile: 1, outputBytes: 1, outputFiles: 1 } });
    expectProtocolError(() => decodeServerMessage(f), 'invalid', 'GrantedLimits.wallTimeMs must not be negative');
  });

  it('attack: a spawnFailed missing its step, as invalid naming the field', () => {
    const s = new gen.SpawnFailed();
    s.id = 1;
    s.errnoName = '';
    s.message = 'm';
    const m = new gen.ServerMessage();
    m.spawnFailed = s;
    expectProtocolError(() => decodeServerMessage(encodeFrame(m, MAX_CONTROL_FRAME_BYTES)), 'invalid', 'SpawnFailed.step is required and must be a string');
  });

  it('attack: 10,000 levels of nested unknown struct fields, as a ProtocolError, not a crash', () => {
    const payload = [...Array(10_000).fill(field(8, CT.STRUCT)), ...Array(10_001).fill(CT.STOP)];
    expectProtocolError(() => decodeServerMessage(frameOf(payload)), 'undecodable', /depth|nesting/i);
  });
});

describe('encoders refuse oversized messages', () => {
  it('encodeClientMessage of a 300 KB spawn throws too-large naming the size and the limit', () => {
    expectProtocolError(
      () => encodeClientMessage({ kind: 'spawn', id: 1, argsJson: JSON.stringify(['y'.repeat(300_000)]), name: '', sandbox: { skip: [] }, limits: {} }),
      'too-large',
      /^frame of \d+ bytes exceeds the 131072-byte limit$/,
    );
  });

  it('encodeServerMessage of a 300 KB fault throws too-large', () => {
    expectProtocolError(() => encodeServerMessage({ kind: 'fault', message: 'z'.repeat(300_000) }), 'too-large', 'exceeds the 131072-byte limit');
  });
});

describe('property: decoding arbitrary bytes', () => {
  const REASONS: ProtocolErrorReason[] = ['too-large', 'truncated', 'length-mismatch', 'undecodable', 'trailing-bytes', 'invalid'];
  const isI32 = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= I32_MIN && v <= I32_MAX;
  const isNum = (v: unknown) => typeof v === 'number' && !Number.isNaN(v);
  const isStr = (v: unknown) => typeof v === 'string';

  function isValidClient(m: ClientMessage): boolean {
    if (m.kind === 'spawn') return isI32(m.id) && isStr(m.argsJson) && isStr(m.name) && isSandbox(m.sandbox) && isLimits(m.limits) && Object.keys(m).length === 6;
    if (m.kind === 'kill') return isI32(m.id) && isI32(m.signal) && Object.keys(m).length === 3;
    if (m.kind === 'stats' || m.kind === 'health') return isI32(m.id) && Object.keys(m).length === 2;
    return false;
  }

  function isSandbox(s: unknown): boolean {
    const r = s as Record<string, unknown>;
    const safe = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isSafeInteger(v));
    const optStr = (v: unknown) => v === undefined || isStr(v);
    return Array.isArray(r.skip) && r.skip.every(isStr) && safe(r.nofile) && safe(r.fsize) && optStr(r.injectStep) && optStr(r.injectErrno);
  }

  function isLimits(l: unknown): boolean {
    const r = l as Record<string, unknown>;
    return Object.values(r).every((v) => typeof v === 'number' && Number.isSafeInteger(v));
  }

  function isValidServer(m: ServerMessage): boolean {
    switch (m.kind) {
      case 'hello':
        return isI32(m.protocolVersion) && isI32(m.zygotePid) && isStr(m.nodeVersion);
      case 'startupFailed':
      case 'fault':
        return isStr(m.message);
      case 'spawned':
        return isI32(m.id) && isI32(m.pid);
      case 'spawnFailed':
        return isI32(m.id) && isStr(m.step) && isStr(m.errnoName) && isStr(m.message) && typeof m.sandbox === 'boolean' && (m.capacity === undefined || Number.isSafeInteger(m.capacity.limit));
      case 'queued':
        return isI32(m.id) && Number.isSafeInteger(m.timeoutMs) && m.timeoutMs > 0;
      case 'refused':
        return isStr(m.reason) && isStr(m.message) && (m.limit === undefined || Number.isSafeInteger(m.limit));
      case 'health':
        return isI32(m.id) && typeof m.healthy === 'boolean' && [m.problems, m.checks].every((l) => Array.isArray(l) && l.every(isStr));
      case 'stats':
        return isI32(m.id) && [m.busy, m.queued, m.poolIdle, m.poolSize, m.claimed, m.forked, m.retired].every((n) => Number.isSafeInteger(n) && n >= 0);
      case 'exited':
        return (
          isI32(m.id) &&
          isI32(m.pid) &&
          (m.code === null || isI32(m.code)) &&
          (m.signal === null || isI32(m.signal)) &&
          isNum(m.wallMs) &&
          isNum(m.cpuMs) &&
          isNum(m.maxRssBytes) &&
          (m.memoryPeakBytes === null || isNum(m.memoryPeakBytes)) &&
          (m.limit === null || ['timeout', 'cpu-limit', 'oom', 'pids-limit', 'shutdown'].includes(m.limit))
        );
      default:
        return false;
    }
  }

  const seeds: Buffer[] = [
    encodeClientMessage({ kind: 'spawn', id: 1, argsJson: '["echo-args",1,"two"]', name: 'seed', sandbox: { skip: [] }, limits: {} }),
    encodeClientMessage({ kind: 'kill', id: 12, signal: 9 }),
    encodeClientMessage({ kind: 'stats', id: 13 }),
    encodeClientMessage({ kind: 'health', id: 14 }),
    encodeServerMessage({ kind: 'health', id: 14, healthy: false, problems: ['cannot fork: EAGAIN'], checks: ['serving', 'fork'] }),
    encodeServerMessage({ kind: 'stats', id: 13, busy: 1, queued: 0, poolIdle: 2, poolSize: 2, claimed: 5, forked: 1, retired: 0 }),
    encodeServerMessage({ kind: 'hello', protocolVersion: 1, zygotePid: 77, nodeVersion: 'v20.20.2' }),
    encodeServerMessage({ kind: 'spawned', id: 3, pid: 4 }),
    encodeServerMessage({ kind: 'spawnFailed', id: 3, step: 'fork', errnoName: 'EAGAIN', message: 'no', sandbox: false }),
    encodeServerMessage({ kind: 'exited', id: 3, pid: 4, code: null, signal: 15, wallMs: 1.25, cpuMs: 0.5, maxRssBytes: 4096, memoryPeakBytes: 8192, limit: 'timeout' }),
    encodeServerMessage({ kind: 'fault', message: 'bad' }),
    encodeServerMessage({ kind: 'spawnFailed', id: 3, step: 'admission', errnoName: '', message: 'full', sandbox: false, capacity: { cap: 'children', limit: 4 } }),
    encodeServerMessage({ kind: 'queued', id: 3, timeoutMs: 100 }),
    encodeServerMessage({ kind: 'refused', reason: 'fds', message: 'short' }),
  ];

  type Decoded =
    | { ok: true; msg: ClientMessage | ServerMessage }
    | { ok: false; isProtocolError: boolean; name: string; reason: unknown; message: string };

  // The decoding runs in a worker thread so that a decoder stuck in a synchronous loop is
  // caught by a deadline (worker.terminate() interrupts it) instead of hanging the test run.
  const WORKER = `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const control = await import(workerData.controlUrl);
      const { ProtocolError } = await import(workerData.errorsUrl);
      const results = [];
      let slowestMs = 0;
      for (const bytes of workerData.frames) {
        const frame = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (const decode of [control.decodeClientMessage, control.decodeServerMessage]) {
          const t0 = performance.now();
          try {
            results.push({ ok: true, msg: decode(frame) });
          } catch (err) {
            results.push({ ok: false, isProtocolError: err instanceof ProtocolError, name: err?.constructor?.name ?? typeof err, reason: err?.reason, message: String(err?.message ?? err) });
          }
          slowestMs = Math.max(slowestMs, performance.now() - t0);
        }
      }
      parentPort.postMessage({ results, slowestMs });
    })().catch((err) => parentPort.postMessage({ crashed: String(err?.stack ?? err) }));
  `;

  async function decodeAllWithDeadline(
    frames: Buffer[],
    deadlineMs: number,
    controlUrl = new URL('../../dist/protocol/control.js', import.meta.url).href,
  ): Promise<{ results: Decoded[]; slowestMs: number }> {
    const worker = new Worker(WORKER, {
      eval: true,
      workerData: {
        controlUrl,
        errorsUrl: new URL('../../dist/protocol/errors.js', import.meta.url).href,
        frames: frames.map((f) => new Uint8Array(f)),
      },
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      const reply = await Promise.race([
        new Promise<{ results?: Decoded[]; slowestMs?: number; crashed?: string }>((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`decoding ${frames.length} frames did not finish within ${deadlineMs} ms: a decoder hangs`)), deadlineMs);
        }),
      ]);
      if (reply.crashed) throw new Error(`the decoding worker crashed: ${reply.crashed}`);
      return { results: reply.results!, slowestMs: reply.slowestMs! };
    } finally {
      clearTimeout(timer);
      await worker.terminate();
    }
  }

  type Outcome = 'ok' | ProtocolErrorReason;

  /** Asserts each frame decoded (by both decoders) to a valid message or a ProtocolError; tallies the outcomes. */
  async function checkAll(frames: Buffer[], labels: string[]): Promise<Map<Outcome, number>> {
    const { results, slowestMs } = await decodeAllWithDeadline(frames, 20_000);
    expect(results).toHaveLength(frames.length * 2);
    expect(slowestMs, 'slowest single decode, ms').toBeLessThan(1000);
    const tally = new Map<Outcome, number>();
    results.forEach((r, i) => {
      const [side, frame, label] = [i % 2 === 0 ? 'client' : 'server', frames[i >> 1], labels[i >> 1]];
      const what = `${side} decoder on ${label} (${frame.toString('hex')})`;
      let outcome: Outcome;
      if (r.ok) {
        const valid = side === 'client' ? isValidClient(r.msg as ClientMessage) : isValidServer(r.msg as ServerMessage);
        expect(valid, `${what} returned ${JSON.stringify(r.msg)}`).toBe(true);
        // Whatever decodes re-encodes to a frame that decodes to the same message.
        const again = side === 'client' ? decodeClientMessage(encodeClientMessage(r.msg as ClientMessage)) : decodeServerMessage(encodeServerMessage(r.msg as ServerMessage));
        expect(again, `re-encoding what the ${what} returned`).toEqual(r.msg);
        outcome = 'ok';
      } else {
        expect(r.isProtocolError, `${what} threw ${r.name}: ${r.message}`).toBe(true);
        expect(REASONS, `reason from ${what}`).toContain(r.reason);
        expect(r.message.length, `message from ${what}`).toBeGreaterThan(10);
        outcome = r.reason as ProtocolErrorReason;
      }
      tally.set(outcome, (tally.get(outcome) ?? 0) + 1);
    });
    return tally;
  }

  it('random byte strings (seeded) decode to a valid message or throw ProtocolError, never another error, never hang', { timeout: 30_000 }, async () => {
    const r = prng(0x2fe1);
    const frames: Buffer[] = [];
    const labels: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const n = r.int(48);
      const bytes = Buffer.alloc(n);
      for (let j = 0; j < n; j++) bytes[j] = r.byte();
      // Two in three get a truthful header, so the payload decoder is exercised, not only the header check.
      if (n >= 4 && r.next() < 0.67) bytes.writeUInt32BE(n - 4, 0);
      frames.push(bytes);
      labels.push(`random #${i}`);
    }
    const tally = await checkAll(frames, labels);
    // The generator reaches the payload decoder, not only the header checks.
    expect(tally.get('undecodable') ?? 0).toBeGreaterThan(100);
    expect(tally.get('too-large') ?? 0).toBeGreaterThan(100);
  });

  it('random mutations of valid frames (seeded) decode to a valid message or throw ProtocolError, never another error, never hang', { timeout: 30_000 }, async () => {
    const r = prng(0xc0ffee);
    const frames: Buffer[] = [];
    const labels: string[] = [];
    for (let i = 0; i < 4000; i++) {
      const seed = seeds[r.int(seeds.length)];
      let payload = Buffer.from(seed.subarray(4));
      const edits = 1 + r.int(4);
      const did: string[] = [];
      for (let e = 0; e < edits; e++) {
        const at = r.int(payload.length + 1);
        switch (r.int(6)) {
          case 0: // flip one bit
            if (payload.length) payload[at % payload.length] ^= 1 << r.int(8);
            did.push(`flip@${at}`);
            break;
          case 1: // replace a byte
            if (payload.length) payload[at % payload.length] = r.byte();
            did.push(`set@${at}`);
            break;
          case 2: // insert random bytes
            payload = Buffer.concat([payload.subarray(0, at), Buffer.from(Array.from({ length: 1 + r.int(4) }, () => r.byte())), payload.subarray(at)]);
            did.push(`insert@${at}`);
            break;
          case 3: // delete a few bytes
            payload = Buffer.concat([payload.subarray(0, at), payload.subarray(at + 1 + r.int(3))]);
            did.push(`delete@${at}`);
            break;
          case 4: // cut the tail
            payload = payload.subarray(0, at);
            did.push(`cut@${at}`);
            break;
          default: // splice in a piece of another valid frame
            payload = Buffer.concat([payload.subarray(0, at), seeds[r.int(seeds.length)].subarray(4 + r.int(6))]);
            did.push(`splice@${at}`);
        }
      }
      const frame = frameOf(payload);
      // Sometimes the header lies as well.
      if (r.next() < 0.2) frame.writeUInt32BE(r.next() < 0.5 ? r.int(payload.length + 8) : Math.floor(r.next() * 2 ** 32), 0);
      frames.push(frame);
      labels.push(`mutation #${i} (${did.join(' ')})`);
    }
    const tally = await checkAll(frames, labels);
    // The mutations reach every kind of outcome, valid messages included.
    for (const outcome of ['ok', 'undecodable', 'invalid', 'trailing-bytes', 'truncated', 'length-mismatch', 'too-large'] as const) {
      expect(tally.get(outcome) ?? 0, outcome).toBeGreaterThan(20);
    }
  });

  it('the hang watchdog itself works: a decoder stuck in a loop fails the check within its deadline', { timeout: 30_000 }, async () => {
    const stuck = 'data:text/javascript,export function decodeClientMessage() { for (;;) {} } export const decodeServerMessage = decodeClientMessage;';
    const t0 = performance.now();
    await expect(decodeAllWithDeadline([frameOf([0])], 500, stuck)).rejects.toThrow('did not finish within 500 ms: a decoder hangs');
    expect(performance.now() - t0).toBeLessThan(10_000);
  });
});
