// The compact protocol's varint reads, for thrift's TCompactProtocol: the same values it reads,
// without a `new Buffer()` per varint. Thrift reads every varint (field ids, lengths, sizes, i16,
// i32) through readVarint64, which builds a node-int64 Int64 (a Buffer) for each, and an i64
// through two more. A `spawned` answer with its limits cost 25 of them. For the first 10,000
// such calls in a process Node walks the caller's stack on each one to decide whether to warn
// (DEP0005), which the renderer paid on its first runSteps (the write side is
// protocol/compact-writer.ts). What thrift does at the edges is kept: bits past the 64th are
// dropped, an eleventh byte is a TProtocolException, and readVarint32 gives the 64-bit value as
// a signed number, infinite from 2^53 on (node-int64's toNumber).
import { createRequire } from 'node:module';
import thrift from 'thrift';

/** thrift's Int64 (node-int64): given a Buffer, it keeps it and allocates nothing. */
const Int64 = createRequire(import.meta.url)('thrift').Int64 as new (buf: Buffer) => thrift.Int64;

/** The most bytes a 64-bit varint takes. */
const MAX_VARINT_BYTES = 10;
const TWO_53 = 2n ** 53n;

/** The rest of a varint whose first `have` bytes gave `low`: all 64 bits, unsigned. */
function varint64Rest(readByte: () => number, low: number, have: number): bigint {
  let z = BigInt(low);
  for (let i = have; ; i++) {
    const b = readByte();
    z |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) return BigInt.asUintN(64, z);
    if (i + 1 >= MAX_VARINT_BYTES) {
      throw new thrift.Thrift.TProtocolException(thrift.Thrift.TProtocolExceptionType.INVALID_DATA, 'Variable-length int over 10 bytes.');
    }
  }
}

/** TCompactProtocol.readVarint32: small values without BigInt, longer ones as thrift reads them. */
export function readCompactVarint32(readByte: () => number): number {
  let x = 0;
  for (let i = 0; i < 4; i++) {
    const b = readByte();
    x += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return x;
  }
  const v = BigInt.asIntN(64, varint64Rest(readByte, x, 4));
  if (v >= TWO_53 || -v >= TWO_53) return v < 0n ? -Infinity : Infinity;
  return Number(v);
}

/** TCompactProtocol.readI64: a zigzag varint, as thrift's Int64. */
export function readCompactI64(readByte: () => number): thrift.Int64 {
  const z = varint64Rest(readByte, 0, 0);
  const buf = Buffer.allocUnsafe(8);
  buf.writeBigInt64BE(BigInt.asIntN(64, (z >> 1n) ^ -(z & 1n)));
  return new Int64(buf);
}

/** Makes protocol read its varints with these (its other reads stay thrift's). */
export function withCompactVarintReads(protocol: thrift.TCompactProtocol, transport: { readByte(): number }): thrift.TCompactProtocol {
  const readByte = () => transport.readByte();
  const p = protocol as thrift.TCompactProtocol & { readVarint32(): number };
  p.readVarint32 = () => readCompactVarint32(readByte);
  p.readI64 = () => readCompactI64(readByte);
  return protocol;
}
