// The write half of Thrift's compact protocol, into one growing Buffer: what the generated
// structs call to serialise themselves, producing byte for byte what thrift's TCompactProtocol
// writes (test/protocol/compact-writer.test.ts compares the two on every message kind and on
// random values).
//
// Why not thrift's own writer: TCompactProtocol (0.24.0) builds every byte, varint, string and
// i64 it writes with the deprecated `new Buffer()`, then copies them all into a frame. For the
// first 10,000 such calls in a process Node walks the caller's stack to decide whether to warn
// (DEP0005), so each message cost its writer a stack walk per field: measured here, a
// renderer's first runSteps spent 0.7 ms more sending the spawn request and 0.35 ms more on the
// step request than later ones. The zygote settles that check for itself and its children
// (zygote/buffer-warning.ts); a library must not silence its host's deprecation warnings, so
// the client writes without Buffer() instead. Its double is also exact, where thrift's
// TCompactProtocol computes the exponent with Math.log and is wrong for some tiny values.
import type thrift from 'thrift';

/** Thrift's own type ids (TType), as the generated code passes them. */
const T_BOOL = 2;

/** TType -> compact type id (the compact protocol's table; 0 where TType has no value). */
const COMPACT_TYPE = [0, 0, 1, 3, 7, 0, 4, 0, 5, 0, 6, 8, 12, 11, 10, 9, 13];
const CT_BOOLEAN_TRUE = 1;
const CT_BOOLEAN_FALSE = 2;
const CT_STOP = 0;

const TWO_32 = 2 ** 32;
const TWO_64 = 2n ** 64n;

/** What the generated code may hand writeI64: a number, a decimal string, or thrift's Int64. */
type I64Value = number | string | { buffer: Uint8Array; offset?: number };

/** A Thrift TProtocol for writing only: read methods are not there. */
export class CompactWriter {
  private buf: Buffer;
  private len = 0;
  private lastFieldId = 0;
  private readonly lastFieldIds: number[] = [];
  /** A bool field's header waits for its value: the compact protocol puts the value in the header's type. */
  private pendingBoolFieldId: number | null = null;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** The bytes written so far (a view of this writer's buffer). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  /** This writer as the TProtocol the generated structs' write() takes. */
  asProtocol(): thrift.TProtocol {
    return this as unknown as thrift.TProtocol;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.len);
    this.buf = grown;
  }

  private byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b & 0xff;
  }

  /** An unsigned 32-bit varint; n is taken as int32 bits, as thrift does. */
  private varint32(n: number): void {
    this.reserve(5);
    n |= 0;
    while ((n & ~0x7f) !== 0) {
      this.buf[this.len++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.len++] = n;
  }

  private zigzag32(n: number): number {
    return (n << 1) ^ (n >> 31);
  }

  writeStructBegin(_name?: string): void {
    this.lastFieldIds.push(this.lastFieldId);
    this.lastFieldId = 0;
  }

  writeStructEnd(): void {
    this.lastFieldId = this.lastFieldIds.pop() ?? 0;
  }

  writeFieldBegin(_name: string, type: number, id: number): void {
    if (type === T_BOOL) {
      this.pendingBoolFieldId = id;
      return;
    }
    this.fieldHeader(COMPACT_TYPE[type] ?? 0, id);
  }

  private fieldHeader(compactType: number, id: number): void {
    const delta = id - this.lastFieldId;
    if (id > this.lastFieldId && delta <= 15) {
      this.byte((delta << 4) | compactType);
    } else {
      this.byte(compactType);
      this.writeI16(id);
    }
    this.lastFieldId = id;
  }

  writeFieldEnd(): void {}

  writeFieldStop(): void {
    this.byte(CT_STOP);
  }

  writeMapBegin(keyType: number, valType: number, size: number): void {
    if (size === 0) {
      this.byte(0);
      return;
    }
    this.varint32(size);
    this.byte((COMPACT_TYPE[keyType] << 4) | COMPACT_TYPE[valType]);
  }

  writeMapEnd(): void {}

  writeListBegin(elemType: number, size: number): void {
    this.collectionBegin(elemType, size);
  }

  writeListEnd(): void {}

  writeSetBegin(elemType: number, size: number): void {
    this.collectionBegin(elemType, size);
  }

  writeSetEnd(): void {}

  private collectionBegin(elemType: number, size: number): void {
    if (size <= 14) {
      this.byte((size << 4) | COMPACT_TYPE[elemType]);
    } else {
      this.byte(0xf0 | COMPACT_TYPE[elemType]);
      this.varint32(size);
    }
  }

  writeBool(value: boolean): void {
    const type = value ? CT_BOOLEAN_TRUE : CT_BOOLEAN_FALSE;
    if (this.pendingBoolFieldId !== null) {
      const id = this.pendingBoolFieldId;
      this.pendingBoolFieldId = null;
      this.fieldHeader(type, id);
    } else {
      this.byte(type);
    }
  }

  writeByte(b: number): void {
    this.byte(b);
  }

  writeI16(n: number): void {
    this.varint32(this.zigzag32(n));
  }

  writeI32(n: number): void {
    this.varint32(this.zigzag32(n));
  }

  writeI64(value: I64Value): void {
    const v = toInt64(value);
    // Zigzag, then an unsigned varint of up to 10 bytes.
    let z = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    this.reserve(10);
    while (z >= 0x80n) {
      this.buf[this.len++] = Number(z & 0x7fn) | 0x80;
      z >>= 7n;
    }
    this.buf[this.len++] = Number(z);
  }

  /** Little-endian IEEE 754, as the compact protocol specifies. */
  writeDouble(v: number): void {
    this.reserve(8);
    this.buf.writeDoubleLE(v, this.len);
    this.len += 8;
  }

  writeString(s: string | Uint8Array): void {
    this.stringOrBinary('writeString', 'utf8', s);
  }

  writeBinary(b: string | Uint8Array): void {
    this.stringOrBinary('writeBinary', 'latin1', b);
  }

  private stringOrBinary(name: string, encoding: BufferEncoding, arg: string | Uint8Array): void {
    if (typeof arg === 'string') {
      const n = Buffer.byteLength(arg, encoding);
      this.varint32(n);
      this.reserve(n);
      this.len += this.buf.write(arg, this.len, n, encoding);
    } else if (arg instanceof Uint8Array) {
      this.varint32(arg.length);
      this.reserve(arg.length);
      this.buf.set(arg, this.len);
      this.len += arg.length;
    } else {
      throw new TypeError(`${name} called without a string or Buffer: ${String(arg)}`);
    }
  }

  flush(): void {}
}

/**
 * The 64-bit value thrift's writer would take from value: a number is truncated toward zero
 * and wrapped to 64 bits (NaN is 0; beyond +-2^64 is a RangeError), a string is parsed as a
 * decimal number first, and thrift's Int64 is read as it is stored (big-endian).
 */
function toInt64(value: I64Value): bigint {
  if (typeof value === 'object' && value !== null && value.buffer instanceof Uint8Array) {
    const b = value.buffer;
    const at = value.offset ?? 0;
    return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigInt64(at);
  }
  const n = typeof value === 'string' ? parseInt(value, 10) : value;
  if (typeof n !== 'number') throw new TypeError(`writeI64 expects a number, a decimal string or an Int64, got ${typeof value}`);
  if (Number.isNaN(n)) return 0n;
  const abs = Math.abs(n);
  if (abs / TWO_32 > TWO_32) throw new RangeError(`${abs / TWO_32} is outside Int64 range`);
  const magnitude = BigInt(Math.trunc(abs)) % TWO_64;
  return BigInt.asIntN(64, n < 0 ? -magnitude : magnitude);
}
