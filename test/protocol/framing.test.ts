// Unit tests of the frame codec (protocol/framing.ts): a 4-byte big-endian length, then
// exactly that many bytes of one compact-protocol struct, never more than the limit.
import thrift from 'thrift';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProtocolError } from '../../dist/protocol/errors.js';
import { decodeFrame, decodePayload, encodeFrame, FRAME_HEADER_BYTES, frameLength, type ThriftStruct } from '../../dist/protocol/framing.js';
import { CT, expectProtocolError, field, frameOf, gen, zigzagVarint } from './helpers.js';

const LIMIT = 256 * 1024;

function killFrame(id = 7, signal = 15): Buffer {
  return encodeFrame(new gen.KillRequest({ id, signal }), LIMIT);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('encodeFrame', () => {
  it('prefixes the compact-protocol payload with its length as 4 big-endian bytes', () => {
    const frame = killFrame(7, 15);
    expect(FRAME_HEADER_BYTES).toBe(4);
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    // field 1 i32 zigzag(7)=14, field 2 i32 zigzag(15)=30, stop
    expect([...frame.subarray(4)]).toEqual([field(1, CT.I32), ...zigzagVarint(7), field(1, CT.I32), ...zigzagVarint(15), CT.STOP]);
  });

  it('round-trips a struct through decodeFrame', () => {
    const back = decodeFrame(killFrame(-3, 9), gen.KillRequest, 'KillRequest', LIMIT);
    expect(back).toBeInstanceOf(gen.KillRequest);
    expect({ id: back.id, signal: back.signal }).toEqual({ id: -3, signal: 9 });
  });

  it('accepts a payload of exactly the limit', () => {
    const payloadBytes = killFrame().length - 4;
    expect(encodeFrame(new gen.KillRequest({ id: 7, signal: 15 }), payloadBytes).length).toBe(payloadBytes + 4);
  });

  it('refuses to encode a message one byte over the limit with too-large, naming the size and the limit', () => {
    const payloadBytes = killFrame().length - 4;
    expectProtocolError(
      () => encodeFrame(new gen.KillRequest({ id: 7, signal: 15 }), payloadBytes - 1),
      'too-large',
      `frame of ${payloadBytes} bytes exceeds the ${payloadBytes - 1}-byte limit`,
    );
  });

  it('refuses to encode a 300 KB message against the 256 KiB control limit with too-large', () => {
    const big = new gen.SpawnRequest({ id: 1, argsJson: JSON.stringify(['x'.repeat(300_000)]) });
    expectProtocolError(() => encodeFrame(big, LIMIT), 'too-large', /frame of 3\d{5} bytes exceeds the 262144-byte limit/);
  });
});

describe('frameLength', () => {
  it('reads the declared payload length of a header under the limit', () => {
    expect(frameLength(frameOf([], 1234), LIMIT)).toBe(1234);
    expect(frameLength(frameOf([], LIMIT), LIMIT)).toBe(LIMIT);
  });

  it('attack: a header claiming 2 GiB is refused with too-large, naming the claim and the limit', () => {
    expectProtocolError(() => frameLength(frameOf([], 2 ** 31), LIMIT), 'too-large', `frame header claims 2147483648 bytes; the limit is ${LIMIT}`);
  });

  it('attack: a header of 0xFFFFFFFF is read unsigned (4 GiB - 1) and refused, not taken as -1', () => {
    expectProtocolError(() => frameLength(frameOf([], 0xffffffff), LIMIT), 'too-large', 'claims 4294967295 bytes');
  });

  it('attack: a header one byte over the limit is refused', () => {
    expectProtocolError(() => frameLength(frameOf([], LIMIT + 1), LIMIT), 'too-large', `claims ${LIMIT + 1} bytes`);
  });
});

describe('decodeFrame rejects', () => {
  it.each([0, 1, 2, 3])('attack: a frame of %i bytes, shorter than its 4-byte header, as truncated', (n) => {
    expectProtocolError(
      () => decodeFrame(Buffer.alloc(n), gen.KillRequest, 'KillRequest', LIMIT),
      'truncated',
      `frame of ${n} bytes is shorter than its 4-byte header`,
    );
  });

  it('attack: a header claiming more bytes than follow, as truncated, naming both counts', () => {
    const good = killFrame();
    const lying = Buffer.from(good);
    lying.writeUInt32BE(good.length - 4 + 10, 0);
    expectProtocolError(
      () => decodeFrame(lying, gen.KillRequest, 'KillRequest', LIMIT),
      'truncated',
      `frame header claims ${good.length - 4 + 10} bytes but ${good.length - 4} followed`,
    );
  });

  it('attack: a header claiming fewer bytes than follow, as length-mismatch, naming both counts', () => {
    const good = killFrame();
    const lying = Buffer.from(good);
    lying.writeUInt32BE(2, 0);
    expectProtocolError(
      () => decodeFrame(lying, gen.KillRequest, 'KillRequest', LIMIT),
      'length-mismatch',
      `frame header claims 2 bytes but ${good.length - 4} followed`,
    );
  });

  it('attack: a header claiming 2 GiB, as too-large, before reading or allocating for the payload', () => {
    // A 4-byte frame: if the claim were believed, the next complaint would be 'truncated'.
    expectProtocolError(() => decodeFrame(frameOf([], 2 ** 31), gen.KillRequest, 'KillRequest', LIMIT), 'too-large', 'claims 2147483648 bytes');

    // The decoder must not touch the payload at all: no reads from a transport, no slicing.
    const good = killFrame();
    const reads = vi.spyOn(thrift.TFramedTransport.prototype, 'readByte');
    decodeFrame(good, gen.KillRequest, 'KillRequest', LIMIT);
    const readsForAGoodFrame = reads.mock.calls.length;
    expect(readsForAGoodFrame, 'the spy sees the transport framing.ts reads from').toBeGreaterThan(0);

    const frame = frameOf(Buffer.alloc(64, 0xab), 2 ** 31);
    const slicing = vi.fn(() => {
      throw new Error('the payload was read');
    });
    Object.defineProperty(frame, 'subarray', { value: slicing });
    Object.defineProperty(frame, 'slice', { value: slicing });
    const before = process.memoryUsage().arrayBuffers;
    expectProtocolError(() => decodeFrame(frame, gen.KillRequest, 'KillRequest', LIMIT), 'too-large', 'claims 2147483648 bytes; the limit is 262144');
    const grew = process.memoryUsage().arrayBuffers - before;
    expect(slicing).not.toHaveBeenCalled();
    expect(reads.mock.calls.length).toBe(readsForAGoodFrame);
    expect(grew, 'bytes of ArrayBuffer memory allocated while refusing').toBeLessThan(1024 * 1024);
  });

  it('attack: a real payload larger than the limit, as too-large', () => {
    const payload = Buffer.alloc(LIMIT + 1);
    expectProtocolError(() => decodeFrame(frameOf(payload), gen.KillRequest, 'KillRequest', LIMIT), 'too-large', `claims ${LIMIT + 1} bytes`);
  });

  it('attack: a garbage payload, as undecodable, naming the type and the offset where decoding stopped', () => {
    // 0xff: a field header of type 15, which the compact protocol does not have.
    expectProtocolError(
      () => decodeFrame(frameOf([0xff, 0xff, 0xff, 0xff, 0xff]), gen.KillRequest, 'KillRequest', LIMIT),
      'undecodable',
      /^KillRequest does not decode at offset 1 of 5: .+/,
    );
  });

  it('attack: a payload cut mid-struct, as undecodable, saying it ran out of input at the end', () => {
    const good = killFrame();
    const cut = frameOf(good.subarray(4, good.length - 1));
    expectProtocolError(
      () => decodeFrame(cut, gen.KillRequest, 'KillRequest', LIMIT),
      'undecodable',
      `KillRequest does not decode at offset ${cut.length - 4} of ${cut.length - 4}: InputBufferUnderrunError`,
    );
  });

  it('attack: an empty payload, as undecodable at offset 0', () => {
    expectProtocolError(() => decodeFrame(frameOf([]), gen.KillRequest, 'KillRequest', LIMIT), 'undecodable', 'at offset 0 of 0');
  });

  it('attack: a valid struct followed by extra bytes inside the frame, as trailing-bytes, naming the count and where the struct ended', () => {
    const good = killFrame();
    const payload = Buffer.concat([good.subarray(4), Buffer.from([1, 2, 3])]);
    expectProtocolError(
      () => decodeFrame(frameOf(payload), gen.KillRequest, 'KillRequest', LIMIT),
      'trailing-bytes',
      `3 bytes follow the KillRequest that ended at offset ${good.length - 4}`,
    );
  });

  it('attack: 10,000 levels of nested unknown struct fields, as undecodable, without overflowing the stack', () => {
    const payload = [...Array(10_000).fill(field(7, CT.STRUCT)), ...Array(10_001).fill(CT.STOP)];
    const err = expectProtocolError(
      () => decodeFrame(frameOf(payload), gen.KillRequest, 'KillRequest', LIMIT),
      'undecodable',
      /^KillRequest does not decode at offset \d+ of 20001: /,
    );
    expect(err.message).toMatch(/depth|nesting/i);
  });

  it('attack: 10,000 levels of nested unknown lists, as undecodable, without overflowing the stack', () => {
    const payload = [field(7, CT.LIST), ...Array(10_000).fill(0x19), 0x05, 0];
    expectProtocolError(() => decodeFrame(frameOf(payload), gen.KillRequest, 'KillRequest', LIMIT), 'undecodable', /depth|nesting/i);
  });
});

describe('decodePayload', () => {
  it('decodes a payload without a header', () => {
    const back = decodePayload(killFrame(1, 2).subarray(4), gen.KillRequest, 'KillRequest');
    expect({ id: back.id, signal: back.signal }).toEqual({ id: 1, signal: 2 });
  });

  it('attack: a decoder that overflows the stack, as undecodable "nesting too deep", not a RangeError', () => {
    class Bottomless implements ThriftStruct {
      read(input: thrift.TProtocol): void {
        input.readStructBegin();
        new Bottomless().read(input);
      }
      write(): void {}
    }
    const err = expectProtocolError(() => decodePayload(Buffer.from([0]), Bottomless, 'Bottomless'), 'undecodable', 'Bottomless does not decode at offset 0 of 1: nesting too deep');
    expect(err.cause).toBeInstanceOf(RangeError);
  });

  it('attack: a decoder that throws a non-Error, as undecodable naming what was thrown', () => {
    class ThrowsString implements ThriftStruct {
      read(): void {
        throw 'not an Error';
      }
      write(): void {}
    }
    const err = expectProtocolError(() => decodePayload(Buffer.from([0]), ThrowsString, 'ThrowsString'), 'undecodable', /^ThrowsString does not decode at offset 0 of 1: \S+/);
    expect(err).toBeInstanceOf(ProtocolError);
  });
});
