// A flatbuffer reader for untrusted Arrow IPC metadata: every read is bounds-checked, so a hostile
// footer or message can only make it throw a FlatbufferError, never read outside its bytes.
//
// Wire format (https://flatbuffers.dev/internals/): a buffer starts with a uoffset (u32) to its
// root table. A table starts with an soffset (i32) back to its vtable: u16 vtable size in bytes,
// u16 inline size of the table, then one u16 per field, the field's offset from the table's start
// (0: absent, the schema's default applies). Tables, strings and vectors are reached through a
// uoffset stored in the field, counted from the field's own position, so they always lie ahead:
// no cycle is possible, but one table can be shared by many parents (the caller caps the count).
// A vector or string is a u32 element count followed by the elements (a string also by a NUL).

/** The metadata is not a well-formed flatbuffer; the message says where. */
export class FlatbufferError extends Error {
  override name = 'FlatbufferError';
}

const TWO_32 = 2 ** 32;

/** A flatbuffer over bytes (one message's metadata, or the footer). */
export class Flatbuffer {
  private readonly view: DataView;
  /**
   * Work left: tables opened and string bytes decoded. One table can be the child of many (a
   * DAG), so a small buffer could make a reader visit millions of tables, or decode one long
   * string a million times. Writers never share tables or strings, so each table or string
   * byte is visited once and the buffer's size bounds the work: the budget is that size.
   */
  private tablesLeft: number;
  private stringBytesLeft: number;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.tablesLeft = Math.floor(bytes.length / 4) + 16;
    this.stringBytesLeft = bytes.length + 1024;
  }

  get length(): number {
    return this.bytes.length;
  }

  /** The root table. */
  root(): FbTable {
    return this.table(this.follow(0, 'the root offset'));
  }

  /** Throws unless [pos, pos + size) lies inside the buffer. */
  check(pos: number, size: number, what: string): void {
    if (!(pos >= 0 && size >= 0 && pos + size <= this.bytes.length)) {
      throw new FlatbufferError(`${what} (bytes ${pos} to ${pos + size}) lies outside the ${this.bytes.length}-byte flatbuffer`);
    }
  }

  u8(pos: number, what: string): number {
    this.check(pos, 1, what);
    return this.view.getUint8(pos);
  }
  i16(pos: number, what: string): number {
    this.check(pos, 2, what);
    return this.view.getInt16(pos, true);
  }
  u16(pos: number, what: string): number {
    this.check(pos, 2, what);
    return this.view.getUint16(pos, true);
  }
  i32(pos: number, what: string): number {
    this.check(pos, 4, what);
    return this.view.getInt32(pos, true);
  }
  u32(pos: number, what: string): number {
    this.check(pos, 4, what);
    return this.view.getUint32(pos, true);
  }
  /** A signed 64-bit integer as a number; throws if it is beyond ±2^53 (nothing in a file is). */
  i64(pos: number, what: string): number {
    this.check(pos, 8, what);
    const lo = this.view.getUint32(pos, true);
    const hi = this.view.getInt32(pos + 4, true);
    if (hi >= 2 ** 21 || hi < -(2 ** 21)) throw new FlatbufferError(`${what} (${this.view.getBigInt64(pos, true)}) is beyond ±2^53`);
    return hi * TWO_32 + lo;
  }

  /** The position a uoffset at pos leads to (forward, never to itself). */
  follow(pos: number, what: string): number {
    const off = this.u32(pos, what);
    if (off === 0) throw new FlatbufferError(`${what} at byte ${pos} is a zero offset`);
    const target = pos + off;
    this.check(target, 0, `the target of ${what}`);
    return target;
  }

  /** The table at pos, with its vtable checked. */
  table(pos: number): FbTable {
    if (--this.tablesLeft < 0) throw new FlatbufferError(`it references more tables than its ${this.bytes.length} bytes can hold (tables shared between parents)`);
    const vtable = pos - this.i32(pos, 'a table\'s vtable offset');
    const vtableSize = this.u16(vtable, 'a vtable\'s size');
    const tableSize = this.u16(vtable + 2, 'a vtable\'s table size');
    if (vtableSize < 4 || vtableSize % 2 !== 0) throw new FlatbufferError(`the vtable at byte ${vtable} has a bad size (${vtableSize})`);
    this.check(vtable, vtableSize, 'a vtable');
    if (tableSize < 4) throw new FlatbufferError(`the table at byte ${pos} has a bad inline size (${tableSize})`);
    this.check(pos, tableSize, 'a table');
    return new FbTable(this, pos, vtable, vtableSize, tableSize);
  }

  /** A UTF-8 string at pos (its length prefix), of at most maxBytes bytes. */
  string(pos: number, maxBytes: number, what: string): string {
    const length = this.u32(pos, `the length of ${what}`);
    if (length > maxBytes) throw new FlatbufferError(`${what} is ${length} bytes long, more than ${maxBytes}`);
    this.check(pos + 4, length, what);
    this.stringBytesLeft -= length;
    if (this.stringBytesLeft < 0) throw new FlatbufferError(`its strings add up to more bytes than it holds (strings shared between tables)`);
    try {
      return UTF8.decode(this.bytes.subarray(pos + 4, pos + 4 + length));
    } catch {
      throw new FlatbufferError(`${what} is not valid UTF-8`);
    }
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A vector's elements: count, and where the first one is. */
export interface FbVector {
  length: number;
  pos: number;
}

/** One table of a flatbuffer; fields are addressed by slot (0 for the schema's first field). */
export class FbTable {
  constructor(
    readonly fb: Flatbuffer,
    readonly pos: number,
    private readonly vtable: number,
    private readonly vtableSize: number,
    private readonly tableSize: number,
  ) {}

  /** The field's position, or 0 if absent; checks that size bytes of it lie inside the table. */
  field(slot: number, size: number, what: string): number {
    const entry = 4 + 2 * slot;
    if (entry + 2 > this.vtableSize) return 0;
    const off = this.fb.u16(this.vtable + entry, `the vtable entry of ${what}`);
    if (off === 0) return 0;
    if (off + size > this.tableSize) throw new FlatbufferError(`${what} (at offset ${off}, ${size} bytes) overruns its ${this.tableSize}-byte table at byte ${this.pos}`);
    return this.pos + off;
  }

  bool(slot: number, dflt: boolean, what: string): boolean {
    const p = this.field(slot, 1, what);
    return p === 0 ? dflt : this.fb.u8(p, what) !== 0;
  }
  u8(slot: number, dflt: number, what: string): number {
    const p = this.field(slot, 1, what);
    return p === 0 ? dflt : this.fb.u8(p, what);
  }
  i16(slot: number, dflt: number, what: string): number {
    const p = this.field(slot, 2, what);
    return p === 0 ? dflt : this.fb.i16(p, what);
  }
  i32(slot: number, dflt: number, what: string): number {
    const p = this.field(slot, 4, what);
    return p === 0 ? dflt : this.fb.i32(p, what);
  }
  i64(slot: number, dflt: number, what: string): number {
    const p = this.field(slot, 8, what);
    return p === 0 ? dflt : this.fb.i64(p, what);
  }

  /** A sub-table, or null if absent. */
  table(slot: number, what: string): FbTable | null {
    const p = this.field(slot, 4, what);
    return p === 0 ? null : this.fb.table(this.fb.follow(p, what));
  }

  string(slot: number, maxBytes: number, what: string): string | null {
    const p = this.field(slot, 4, what);
    return p === 0 ? null : this.fb.string(this.fb.follow(p, what), maxBytes, what);
  }

  /**
   * A vector of elemSize-byte elements (structs or scalars inline, 4 for offsets to tables), or
   * null if absent. Checks that all of it lies inside the buffer before anything is read.
   */
  vector(slot: number, elemSize: number, what: string): FbVector | null {
    const p = this.field(slot, 4, what);
    if (p === 0) return null;
    const at = this.fb.follow(p, what);
    const length = this.fb.u32(at, `the length of ${what}`);
    this.fb.check(at + 4, length * elemSize, `${what} (${length} elements of ${elemSize} bytes)`);
    return { length, pos: at + 4 };
  }

  /** Element i of a vector of tables. */
  tableAt(vector: FbVector, i: number, what: string): FbTable {
    return this.fb.table(this.fb.follow(vector.pos + 4 * i, what));
  }
}
