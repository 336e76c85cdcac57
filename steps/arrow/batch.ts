// One record batch or dictionary batch of an untrusted Arrow IPC file: its header (format/Message.fbs
// RecordBatch) checked against the schema, and its body turned into apache-arrow Data that view
// the file's bytes (no copy), once every buffer has been checked against what the layout needs.
//
// 'full' checks every value an apache-arrow getter would trust: offsets within their data and in
// order, UTF-8, null counts against the bitmaps, union type ids and offsets, dictionary indices.
// 'structure' (a trusted file) checks only the metadata and buffer bounds, in time independent of
// the data's size; a lying value there gives wrong answers or a getter's TypeError later, never
// a view past its buffer.
import { isUtf8 } from 'node:buffer';
import { makeData, type Data, type DataType, type Vector } from 'apache-arrow';
import { refuse, type ArrowRefusalReason, type ResolvedArrowCaps } from './caps.js';
import type { FbTable } from './flatbuffer.js';
import type { Column, IndexLayout, SafeRange } from './schema.js';

export type CheckMode = 'full' | 'structure';

/** The largest array length: apache-arrow indexes with numbers and offsets are 32-bit. */
const MAX_LENGTH = 2 ** 31 - 1;

/** A RecordBatch header: lengths and null counts per field node, offset and length per buffer. */
export interface BatchHeader {
  length: number;
  /** [length, nullCount] per node, in the schema's depth-first order. */
  nodes: Float64Array;
  /** [offset, length] per buffer, relative to the body. */
  buffers: Float64Array;
}

/** Reads a RecordBatch table and checks it against the node and buffer counts the schema needs. */
export function readBatchHeader(rb: FbTable, bodyLength: number, expected: { nodes: number; buffers: number }, where: string, reason: ArrowRefusalReason): BatchHeader {
  const bad = (what: string): never => refuse(reason, `${where} ${what}`);
  const length = rb.i64(0, 0, `${where}'s length`);
  if (length < 0 || length > MAX_LENGTH) bad(`declares ${length} rows; a batch holds 0 to ${MAX_LENGTH}`);
  // A compressed body would have to be inflated into memory the file does not bound, and could
  // not be viewed in place: refused rather than decompressed.
  const compression = rb.table(3, `${where}'s compression`);
  if (compression !== null) {
    const codec = compression.u8(0, 0, `${where}'s compression codec`);
    bad(`is compressed (${codec === 0 ? 'LZ4_FRAME' : codec === 1 ? 'ZSTD' : `codec ${codec}`}); compressed Arrow files are refused, write it uncompressed`);
  }
  const variadic = rb.vector(4, 8, `${where}'s variadic buffer counts`);
  if (variadic !== null && variadic.length > 0) bad('has variadic buffers, which no supported type uses');
  const nodeVector = rb.vector(1, 16, `${where}'s field nodes`);
  const bufferVector = rb.vector(2, 16, `${where}'s buffers`);
  const nodeCount = nodeVector?.length ?? 0;
  const bufferCount = bufferVector?.length ?? 0;
  if (nodeCount !== expected.nodes) bad(`has ${nodeCount} field nodes; its schema needs ${expected.nodes}`);
  if (bufferCount !== expected.buffers) bad(`has ${bufferCount} buffers; its schema needs ${expected.buffers}`);
  const fb = rb.fb;
  const nodes = new Float64Array(2 * nodeCount);
  for (let i = 0; i < nodeCount; i++) {
    const at = nodeVector!.pos + 16 * i;
    const n = fb.i64(at, `${where}'s field node ${i} length`);
    const nulls = fb.i64(at + 8, `${where}'s field node ${i} null count`);
    if (n < 0 || n > MAX_LENGTH) bad(`field node ${i} declares length ${n}; an array holds 0 to ${MAX_LENGTH}`);
    if (nulls < 0 || nulls > n) bad(`field node ${i} declares ${nulls} nulls in ${n} values`);
    nodes[2 * i] = n;
    nodes[2 * i + 1] = nulls;
  }
  // The body is "a flat sequence of memory buffers written end-to-end with appropriate padding to
  // ensure a minimum of 8-byte alignment" (format/Columnar.rst): every writer lays them out in
  // order. Requiring that (no overlap) keeps the work of checking a file linear in its size.
  const buffers = new Float64Array(2 * bufferCount);
  let end = 0;
  for (let i = 0; i < bufferCount; i++) {
    const at = bufferVector!.pos + 16 * i;
    const off = fb.i64(at, `${where}'s buffer ${i} offset`);
    const len = fb.i64(at + 8, `${where}'s buffer ${i} length`);
    if (off < 0 || len < 0 || off + len > bodyLength) bad(`buffer ${i} (offset ${off}, ${len} bytes) lies outside its ${bodyLength}-byte body`);
    if (len > 0) {
      if (off % 8 !== 0) bad(`buffer ${i} starts at offset ${off}, not on an 8-byte boundary`);
      if (off < end) bad(`buffer ${i} (offset ${off}) overlaps the buffer before it (which ends at ${end})`);
      end = off + len;
    }
    buffers[2 * i] = off;
    buffers[2 * i + 1] = len;
  }
  return { length, nodes, buffers };
}

/** The running count of values against maxValues, shared by all batches of a file. */
export interface ValueBudget {
  values: number;
  caps: ResolvedArrowCaps;
}

const EMPTY = new Uint8Array(0);

/** Turns one batch's body into Data, checking each buffer as it is taken. */
export class BatchLoader {
  private node = 0;
  private buffer = 0;
  private readonly base: number;

  constructor(
    private readonly file: Uint8Array,
    bodyStart: number,
    private readonly header: BatchHeader,
    private readonly mode: CheckMode,
    private readonly where: string,
    private readonly reason: ArrowRefusalReason,
    private readonly budget: ValueBudget,
    /** Final dictionaries by id (all deltas applied), for dictionary-encoded columns. */
    private readonly dictionaries: Map<number, Vector>,
    /** Unions have a validity bitmap in V4 metadata. */
    private readonly v4: boolean,
  ) {
    this.base = file.byteOffset + bodyStart;
  }

  load(c: Column): Data {
    const { layout } = c;
    const type = c.field.type;
    const { length, nullCount } = this.nextNode(c);
    switch (layout.kind) {
      case 'null':
        return makeData({ type, length } as never);
      case 'bool': {
        const nullBitmap = this.validity(c, length, nullCount);
        const data = this.fixedBuffer(c, Uint8Array, Math.ceil(length / 8), 'bit');
        return makeData({ type, length, nullCount, nullBitmap, data } as never);
      }
      case 'fixed': {
        const nullBitmap = this.validity(c, length, nullCount);
        const data = this.fixedBuffer(c, layout.array, length * layout.bytes, 'value');
        if (layout.safe !== undefined && this.mode === 'full') this.checkSafe(c, layout.safe, data as BigInt64Array, nullBitmap, nullCount, length);
        return makeData({ type, length, nullCount, nullBitmap, data } as never);
      }
      case 'binary': {
        const nullBitmap = this.validity(c, length, nullCount);
        const valueOffsets = this.offsets(c, length, layout.large);
        const [off, len] = this.nextBuffer();
        const data = this.view(Uint8Array, off, len);
        const [first, last] = this.checkOffsets(c, valueOffsets, length, len, 'its data buffer', 'bytes');
        if (layout.utf8 && this.mode === 'full') this.checkUtf8(c, valueOffsets, length, data, first, last);
        return makeData({ type, length, nullCount, nullBitmap, valueOffsets, data } as never);
      }
      case 'list': {
        const nullBitmap = this.validity(c, length, nullCount);
        const valueOffsets = this.offsets(c, length, layout.large);
        const child = this.load(c.children[0]);
        this.checkOffsets(c, valueOffsets, length, child.length, `its child ${JSON.stringify(c.children[0].field.name)}`, 'values');
        return makeData({ type, length, nullCount, nullBitmap, valueOffsets, child } as never);
      }
      case 'fixed-list': {
        const nullBitmap = this.validity(c, length, nullCount);
        const child = this.load(c.children[0]);
        if (child.length < length * layout.size) this.bad(c, `holds ${length} lists of ${layout.size}, but its child has only ${child.length} values`);
        return makeData({ type, length, nullCount, nullBitmap, child } as never);
      }
      case 'struct': {
        const nullBitmap = this.validity(c, length, nullCount);
        const children = c.children.map((cc) => this.load(cc));
        children.forEach((child, i) => {
          if (child.length < length) this.bad(c, `has ${length} values, but its child ${JSON.stringify(c.children[i].field.name)} has only ${child.length}`);
        });
        return makeData({ type, length, nullCount, nullBitmap, children } as never);
      }
      case 'union': {
        if (this.v4) this.nextBuffer(); // the pre-V5 validity bitmap, which readers ignore
        const typeIds = this.fixedBuffer(c, Int8Array, length, 'type id') as Int8Array;
        const valueOffsets = layout.dense ? (this.fixedBuffer(c, Int32Array, 4 * length, 'offset') as Int32Array) : undefined;
        const children = c.children.map((cc) => this.load(cc));
        // A sparse union's children should be as long as it is, but apache-arrow's own builder
        // leaves them shorter: only the slots each value selects are checked.
        if (this.mode === 'full') this.checkUnion(c, layout.childOf, typeIds, valueOffsets, children, length);
        return makeData({ type, length, nullCount, typeIds, valueOffsets, children } as never);
      }
      case 'dictionary': {
        const nullBitmap = this.validity(c, length, nullCount);
        const data = this.fixedBuffer(c, layout.index.array, length * layout.index.bytes, 'index');
        const dictionary = this.dictionaries.get(layout.id)!;
        if (this.mode === 'full') this.checkIndices(c, layout.index, data, nullBitmap, nullCount, length, dictionary.length, layout.id);
        return makeData({ type, length, nullCount, nullBitmap, data, dictionary } as never);
      }
    }
  }

  /** Whether every node and buffer of the header was used (the counts were checked up front). */
  finished(): boolean {
    return 2 * this.node === this.header.nodes.length && 2 * this.buffer === this.header.buffers.length;
  }

  private bad(c: Column, what: string): never {
    return refuse(this.reason, `${this.where}, column ${JSON.stringify(c.path)} (${describeType(c.field.type)}): ${what}`);
  }

  private nextNode(c: Column): { length: number; nullCount: number } {
    const i = this.node++;
    if (2 * i >= this.header.nodes.length) this.bad(c, 'has no field node left for it');
    const length = this.header.nodes[2 * i];
    const nullCount = this.header.nodes[2 * i + 1];
    this.budget.values += length;
    if (this.budget.values > this.budget.caps.maxValues) {
      refuse('too-many-values', `its arrays hold more than maxValues (${this.budget.caps.maxValues}) values in all (at ${this.where}, column ${JSON.stringify(c.path)})`);
    }
    return { length, nullCount };
  }

  private nextBuffer(): [number, number] {
    const i = this.buffer++;
    if (2 * i >= this.header.buffers.length) refuse(this.reason, `${this.where} has fewer buffers than its schema needs`);
    return [this.header.buffers[2 * i], this.header.buffers[2 * i + 1]];
  }

  /** A typed view of count elements at off in the body (the offset is 8-aligned, the file mapping page-aligned). */
  private view<T extends ArrayLike<unknown>>(array: new (buffer: ArrayBuffer, byteOffset: number, length: number) => T, off: number, count: number): T {
    // An empty buffer may sit anywhere (its offset is not checked for alignment): view the body's start.
    return new array(this.file.buffer as ArrayBuffer, count === 0 ? this.base : this.base + off, count);
  }

  /** The next buffer, at least bytes long, as count = bytes / element size elements. */
  private fixedBuffer(c: Column, array: new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayLike<unknown> & { BYTES_PER_ELEMENT: number }, bytes: number, what: string) {
    const [off, len] = this.nextBuffer();
    if (len < bytes) this.bad(c, `its ${what} buffer is ${len} bytes, less than the ${bytes} its length needs`);
    const per = (array as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
    return this.view(array, off, Math.ceil(bytes / per));
  }

  private validity(c: Column, length: number, nullCount: number): Uint8Array {
    const [off, len] = this.nextBuffer();
    if (nullCount === 0) return EMPTY; // as apache-arrow's reader: no nulls, no bitmap to consult
    const need = Math.ceil(length / 8);
    if (len < need) this.bad(c, `declares ${nullCount} nulls, but its validity bitmap is ${len} bytes, less than the ${need} its ${length} values need`);
    const bits = this.view(Uint8Array, off, need);
    if (this.mode === 'full') {
      const zeros = countZeros(bits, length);
      if (zeros !== nullCount) this.bad(c, `declares ${nullCount} nulls, but its validity bitmap has ${zeros}`);
    }
    return bits;
  }

  /** The next buffer as length + 1 offsets (an empty buffer is allowed for an empty array). */
  private offsets(c: Column, length: number, large: boolean): Int32Array | BigInt64Array {
    const [off, len] = this.nextBuffer();
    if (length === 0 && len === 0) return large ? BigInt64Array.of(0n) : Int32Array.of(0);
    const need = (length + 1) * (large ? 8 : 4);
    if (len < need) this.bad(c, `its offsets buffer is ${len} bytes, less than the ${need} its ${length} values need`);
    return large ? this.view(BigInt64Array, off, length + 1) : this.view(Int32Array, off, length + 1);
  }

  /**
   * Checks offsets[0..length] against limit (the data's bytes or the child's length): in 'full'
   * mode each one, in order; in 'structure' mode the first and last. Returns those two.
   */
  private checkOffsets(c: Column, offsets: Int32Array | BigInt64Array, length: number, limit: number, of: string, unit: string): [number, number] {
    // 64-bit offsets are read as (low, high) 32-bit pairs: no BigInt per value.
    const large = offsets instanceof BigInt64Array;
    const words = large ? new Int32Array(offsets.buffer, offsets.byteOffset, 2 * (length + 1)) : (offsets as Int32Array);
    const at = (i: number): number => {
      if (!large) return words[i];
      const hi = words[2 * i + 1];
      return hi === 0 ? words[2 * i] >>> 0 : hi < 0 ? -1 : Infinity;
    };
    const first = at(0);
    const last = at(length);
    if (first < 0) this.bad(c, `its first offset is ${first}; offsets cannot be negative`);
    if (this.mode === 'full') {
      let prev = first;
      if (large) {
        for (let i = 1; i <= length; i++) {
          const o = at(i);
          if (o < prev) this.bad(c, `offset ${i} (${o}) is less than offset ${i - 1} (${prev}); offsets must not decrease`);
          prev = o;
        }
      } else {
        for (let i = 1; i <= length; i++) {
          const o = words[i];
          if (o < prev) this.bad(c, `offset ${i} (${o}) is less than offset ${i - 1} (${prev}); offsets must not decrease`);
          prev = o;
        }
      }
    } else if (last < first) {
      this.bad(c, `its last offset (${last}) is less than its first (${first})`);
    }
    if (last > limit) this.bad(c, `its last offset (${last}) is past the end of ${of} (${limit} ${unit})`);
    return [first, last];
  }

  /** The data from first to last is UTF-8 and each value starts on a character (so each is UTF-8). */
  private checkUtf8(c: Column, offsets: Int32Array | BigInt64Array, length: number, data: Uint8Array, first: number, last: number): void {
    if (!isUtf8(data.subarray(first, last))) this.bad(c, 'its values are not valid UTF-8');
    const words = offsets instanceof BigInt64Array ? new Int32Array(offsets.buffer, offsets.byteOffset, 2 * (length + 1)) : offsets;
    const step = offsets instanceof BigInt64Array ? 2 : 1;
    for (let i = 1; i < length; i++) {
      const o = words[i * step] >>> 0;
      if (o < last && (data[o] & 0xc0) === 0x80) this.bad(c, `value ${i} starts in the middle of a UTF-8 character (offset ${o})`);
    }
  }

  private checkUnion(c: Column, childOf: Int16Array, typeIds: Int8Array, offsets: Int32Array | undefined, children: Data[], length: number): void {
    for (let i = 0; i < length; i++) {
      const id = typeIds[i];
      const child = id < 0 ? -1 : childOf[id];
      if (child === -1) this.bad(c, `value ${i} has type id ${id}, which is not one of the union's`);
      if (offsets !== undefined) {
        const o = offsets[i];
        if (o < 0 || o >= children[child].length) this.bad(c, `value ${i} has offset ${o} into child ${JSON.stringify(c.children[child].field.name)}, which has ${children[child].length} values`);
      } else if (i >= children[child].length) {
        this.bad(c, `value ${i} selects child ${JSON.stringify(c.children[child].field.name)}, which has only ${children[child].length} values`);
      }
    }
  }

  /** Int64 dates and timestamps that apache-arrow's getter can turn into a number without throwing. */
  private checkSafe(c: Column, safe: SafeRange, data: BigInt64Array, bitmap: Uint8Array, nullCount: number, length: number): void {
    const words = new Int32Array(data.buffer, data.byteOffset, 2 * length);
    for (let i = 0; i < length; i++) {
      const hi = words[2 * i + 1];
      // |value| < 2^53 whenever -2^21 < hi < 2^21 - 1: the common case, no BigInt.
      if (hi > -(2 ** 21) && hi < 2 ** 21 - 1) continue;
      if (nullCount > 0 && (bitmap[i >> 3] & (1 << (i & 7))) === 0) continue;
      const v = data[i];
      const n = safe === 'raw' ? v : v / 1000n;
      if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) {
        this.bad(c, `value ${v} at row ${i} is beyond what apache-arrow can read as a number (${safe === 'raw' ? '±2^53' : '±2^53 milliseconds'}): its getter would throw`);
      }
    }
  }

  private checkIndices(c: Column, index: IndexLayout, data: ArrayLike<unknown>, bitmap: Uint8Array, nullCount: number, length: number, size: number, id: number): void {
    const words = index.bytes === 8 ? new Int32Array((data as BigInt64Array).buffer, (data as BigInt64Array).byteOffset, 2 * length) : null;
    const values = data as ArrayLike<number>;
    for (let i = 0; i < length; i++) {
      if (nullCount > 0 && (bitmap[i >> 3] & (1 << (i & 7))) === 0) continue;
      let v: number;
      if (words !== null) {
        const hi = words[2 * i + 1];
        v = hi === 0 ? words[2 * i] >>> 0 : hi < 0 && index.signed ? -1 : Infinity;
      } else {
        v = values[i];
      }
      if (!(v >= 0 && v < size)) {
        refuse('bad-dictionary', `${this.where}, column ${JSON.stringify(c.path)} (${describeType(c.field.type)}): index ${v === Infinity ? '≥ 2^32' : v} at row ${i} is outside dictionary ${id}, which has ${size} values`);
      }
    }
  }
}

const ZEROS_IN_BYTE = (() => {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) {
    let z = 0;
    for (let k = 0; k < 8; k++) if ((b & (1 << k)) === 0) z++;
    t[b] = z;
  }
  return t;
})();

/** Null slots (0 bits) among the first length bits, least significant bit first. */
function countZeros(bits: Uint8Array, length: number): number {
  const full = length >> 3;
  let zeros = 0;
  for (let i = 0; i < full; i++) zeros += ZEROS_IN_BYTE[bits[i]];
  const rest = length & 7;
  if (rest > 0) zeros += ZEROS_IN_BYTE[bits[full] | (0xff << rest) & 0xff];
  return zeros;
}

/** The type for a message, short: "Utf8", "Dictionary<Int32, Utf8>", "List<Int64>". */
export function describeType(type: DataType): string {
  const s = String(type);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
