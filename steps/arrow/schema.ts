// The schema of an untrusted Arrow IPC file: decoded from its flatbuffer (format/Schema.fbs) into
// apache-arrow Fields, plus, for each column, the physical layout the record batches must match.
// Only types whose every buffer this validator checks are accepted; any other is 'bad-schema'.
import {
  Binary,
  Bool,
  DataType,
  Date_,
  Decimal,
  Dictionary,
  Duration,
  Field,
  FixedSizeBinary,
  FixedSizeList,
  Float,
  Int,
  Interval,
  LargeBinary,
  LargeList,
  LargeUtf8,
  List,
  Map_,
  Null,
  Schema,
  Struct,
  Time,
  Timestamp,
  Union,
  Utf8,
} from 'apache-arrow';
import { refuse, type ResolvedArrowCaps } from './caps.js';
import type { FbTable } from './flatbuffer.js';

type ArrayCtor = Int8ArrayConstructor | Uint8ArrayConstructor | Int16ArrayConstructor | Uint16ArrayConstructor | Int32ArrayConstructor | Uint32ArrayConstructor | Float32ArrayConstructor | Float64ArrayConstructor | BigInt64ArrayConstructor | BigUint64ArrayConstructor;

/** An integer layout: dictionary indices. */
export interface IndexLayout {
  bytes: 1 | 2 | 4 | 8;
  signed: boolean;
  array: ArrayCtor;
}

/**
 * How one array is laid out in a record batch's body (format/Columnar.rst, "Buffer Listing for
 * Each Layout"). Every kind but null and union starts with a validity bitmap.
 */
export type Layout =
  | { kind: 'null' } // no buffers
  | { kind: 'bool' } // validity, bits
  | { kind: 'fixed'; bytes: number; array: ArrayCtor; safe?: SafeRange } // validity, values of `bytes` each
  | { kind: 'binary'; large: boolean; utf8: boolean } // validity, offsets, data
  | { kind: 'list'; large: boolean } // validity, offsets; one child (list, large list, map)
  | { kind: 'fixed-list'; size: number } // validity; one child of size values per slot
  | { kind: 'struct' } // validity; children
  | { kind: 'union'; dense: boolean; typeIds: Int32Array; childOf: Int16Array } // type ids (, offsets); children
  | { kind: 'dictionary'; id: number; index: IndexLayout }; // validity, indices

/**
 * Int64 values apache-arrow's getter converts to a JS number, throwing a TypeError when that is
 * not exact: a date or timestamp in (milli)seconds beyond ±2^53 ('raw'), a timestamp in
 * microseconds whose milliseconds are ('per-1000'). Nanoseconds always fit.
 */
export type SafeRange = 'raw' | 'per-1000';

/** A column (or nested field) as the record batches hold it. */
export interface Column {
  /** Dotted path from the top-level column, for messages. */
  path: string;
  field: Field;
  layout: Layout;
  /** The physical children in a record batch (none for a dictionary-encoded field). */
  children: Column[];
}

/** The values of one dictionary id, as its dictionary batches hold them. */
export interface DictionaryValues {
  id: number;
  /** The values' column (its path names the first field that uses the id). */
  values: Column;
  signature: string;
}

export interface ParsedSchema {
  schema: Schema;
  columns: Column[];
  dictionaries: Map<number, DictionaryValues>;
}

/** Field names and metadata strings longer than this are refused (V8 strings have a maximum). */
const MAX_STRING_BYTES = 1 << 20;
const MAX_METADATA_ENTRIES = 10_000;

// Type union tags of format/Schema.fbs.
const TYPE_NAMES = ['NONE', 'Null', 'Int', 'FloatingPoint', 'Binary', 'Utf8', 'Bool', 'Decimal', 'Date', 'Time', 'Timestamp', 'Interval', 'List', 'Struct', 'Union', 'FixedSizeBinary', 'FixedSizeList', 'Map', 'Duration', 'LargeBinary', 'LargeUtf8', 'LargeList', 'RunEndEncoded', 'BinaryView', 'Utf8View', 'ListView', 'LargeListView'];

interface State {
  caps: ResolvedArrowCaps;
  fields: number;
  dictionaries: Map<number, DictionaryValues>;
}

/** Decodes a Schema table; refuses what cannot be validated or is past a cap. */
export function parseSchema(table: FbTable, caps: ResolvedArrowCaps): ParsedSchema {
  const endianness = table.i16(0, 0, 'the schema\'s endianness');
  if (endianness !== 0) refuse('bad-schema', 'its schema is big-endian; only little-endian Arrow files are read');
  const fields = table.vector(1, 4, 'the schema\'s fields');
  const count = fields?.length ?? 0;
  if (count > caps.maxColumns) refuse('too-many-columns', `it has ${count} columns, more than maxColumns (${caps.maxColumns})`);
  const metadata = keyValues(table, 2, 'the schema\'s custom metadata');
  const state: State = { caps, fields: 0, dictionaries: new Map() };
  const columns: Column[] = [];
  for (let i = 0; i < count; i++) columns.push(parseField(table.tableAt(fields!, i, `field ${i}`), 1, '', state, false));
  checkUniqueNames(columns, 'its columns');
  const dictionaryTypes = new Map<number, DataType>();
  for (const [id, d] of state.dictionaries) dictionaryTypes.set(id, d.values.field.type);
  return { schema: new Schema(columns.map((c) => c.field), metadata, dictionaryTypes), columns, dictionaries: state.dictionaries };
}

function parseField(ft: FbTable, depth: number, parentPath: string, state: State, inDictionary: boolean): Column {
  const { caps } = state;
  if (depth > caps.maxDepth) refuse('bad-schema', `field ${JSON.stringify(parentPath)} nests types deeper than maxDepth (${caps.maxDepth})`);
  if (++state.fields > caps.maxFields) refuse('too-many-columns', `its schema has more than maxFields (${caps.maxFields}) fields, nested ones included`);
  const name = ft.string(0, MAX_STRING_BYTES, 'a field name') ?? '';
  const path = parentPath === '' ? name : `${parentPath}.${name}`;
  const nullable = ft.bool(1, false, `field ${JSON.stringify(path)}'s nullable flag`);
  const typeTag = ft.u8(2, 0, `field ${JSON.stringify(path)}'s type tag`);
  const typeTable = ft.table(3, `field ${JSON.stringify(path)}'s type`);
  const dictionary = ft.table(4, `field ${JSON.stringify(path)}'s dictionary encoding`);
  if (dictionary !== null && inDictionary) {
    refuse('bad-schema', `field ${JSON.stringify(path)} is dictionary-encoded inside a dictionary's values, which is not supported`);
  }
  const childVector = ft.vector(5, 4, `field ${JSON.stringify(path)}'s children`);
  const metadata = keyValues(ft, 6, `field ${JSON.stringify(path)}'s custom metadata`);
  const children: Column[] = [];
  for (let i = 0; i < (childVector?.length ?? 0); i++) {
    children.push(parseField(ft.tableAt(childVector!, i, `a child of field ${JSON.stringify(path)}`), depth + 1, path, state, inDictionary || dictionary !== null));
  }
  const { type, layout } = decodeType(typeTag, typeTable, children, path);
  if (dictionary === null) return { path, field: new Field(name, type, nullable, metadata), layout, children };

  const id = dictionary.i64(0, 0, `field ${JSON.stringify(path)}'s dictionary id`);
  const indexTable = dictionary.table(1, `field ${JSON.stringify(path)}'s dictionary index type`);
  const index = indexTable === null ? { bytes: 4 as const, signed: true, array: Int32Array } : intLayout(indexTable, `field ${JSON.stringify(path)}'s dictionary index`);
  const isOrdered = dictionary.bool(2, false, `field ${JSON.stringify(path)}'s dictionary ordering`);
  const kind = dictionary.i16(3, 0, `field ${JSON.stringify(path)}'s dictionary kind`);
  if (kind !== 0) refuse('bad-schema', `field ${JSON.stringify(path)} has dictionary kind ${kind}; only DenseArray (0) exists`);
  const values: Column = { path: `${path} (dictionary ${id})`, field: new Field(name, type, nullable, metadata), layout, children };
  const signature = signatureOf(values);
  let known = state.dictionaries.get(id);
  if (known === undefined) {
    known = { id, values, signature };
    state.dictionaries.set(id, known);
  } else if (known.signature !== signature) {
    refuse('bad-schema', `fields ${JSON.stringify(known.values.path.replace(/ \(dictionary .*$/, ''))} and ${JSON.stringify(path)} share dictionary ${id} but their value types differ (${known.values.field.type} and ${type})`);
  }
  // As apache-arrow's own reader: every field of one id shares the first field's value type.
  const dictType = new Dictionary(known.values.field.type, new Int(index.signed, (index.bytes * 8) as 8 | 16 | 32 | 64) as never, id, isOrdered);
  return { path, field: new Field(name, dictType, nullable, metadata), layout: { kind: 'dictionary', id, index }, children: [] };
}

/** The apache-arrow type and the layout of one field, from its type union. */
function decodeType(tag: number, t: FbTable | null, children: Column[], path: string): { type: DataType; layout: Layout } {
  const where = `field ${JSON.stringify(path)}`;
  const typeName = TYPE_NAMES[tag] ?? `#${tag}`;
  const bad = (what: string): never => refuse('bad-schema', `${where} (${typeName}) ${what}`);
  const leaf = () => {
    if (children.length > 0) bad(`has ${children.length} children; the type has none`);
  };
  const one = (): Column => {
    if (children.length !== 1) bad(`has ${children.length} children; the type has exactly one`);
    return children[0];
  };
  const i16 = (slot: number, dflt: number, what: string) => (t === null ? dflt : t.i16(slot, dflt, `${where}'s ${what}`));
  const i32 = (slot: number, dflt: number, what: string) => (t === null ? dflt : t.i32(slot, dflt, `${where}'s ${what}`));
  // Writers always write the type's table, empty for a type without parameters; without it the
  // field is malformed (apache-arrow's reader dereferences null).
  if (t === null && tag !== 0 && tag < TYPE_NAMES.length) bad('has no type table');
  const fixed = (type: DataType, bytes: number, array: ArrayCtor, safe?: SafeRange) => ({ type, layout: { kind: 'fixed' as const, bytes, array, safe } });
  switch (tag) {
    case 1:
      leaf();
      return { type: new Null(), layout: { kind: 'null' } };
    case 2: {
      leaf();
      const index = intLayout(t!, where);
      return fixed(new Int(index.signed, (index.bytes * 8) as 8 | 16 | 32 | 64), index.bytes, index.array);
    }
    case 3: {
      leaf();
      const precision = i16(0, 0, 'precision');
      if (precision === 0) return fixed(new Float(0), 2, Uint16Array);
      if (precision === 1) return fixed(new Float(1), 4, Float32Array);
      if (precision === 2) return fixed(new Float(2), 8, Float64Array);
      return bad(`has an unknown precision ${precision}`);
    }
    case 4:
    case 5:
    case 19:
    case 20: {
      leaf();
      const large = tag >= 19;
      const utf8 = tag === 5 || tag === 20;
      const type = tag === 4 ? new Binary() : tag === 5 ? new Utf8() : tag === 19 ? new LargeBinary() : new LargeUtf8();
      return { type, layout: { kind: 'binary', large, utf8 } };
    }
    case 6:
      leaf();
      return { type: new Bool(), layout: { kind: 'bool' } };
    case 7: {
      leaf();
      const precision = i32(0, 0, 'precision');
      const scale = i32(1, 0, 'scale');
      const bitWidth = i32(2, 128, 'bit width');
      if (![32, 64, 128, 256].includes(bitWidth)) bad(`has bit width ${bitWidth}; it must be 32, 64, 128 or 256`);
      return fixed(new Decimal(scale, precision, bitWidth), bitWidth / 8, Uint32Array);
    }
    case 8: {
      leaf();
      const unit = i16(0, 1, 'unit');
      if (unit === 0) return fixed(new Date_(0), 4, Int32Array);
      if (unit === 1) return fixed(new Date_(1), 8, BigInt64Array, 'raw');
      return bad(`has an unknown unit ${unit}`);
    }
    case 9: {
      leaf();
      const unit = i16(0, 1, 'unit');
      const bitWidth = i32(1, 32, 'bit width');
      if ((unit === 0 || unit === 1) && bitWidth === 32) return fixed(new Time(unit, 32), 4, Int32Array);
      if ((unit === 2 || unit === 3) && bitWidth === 64) return fixed(new Time(unit, 64), 8, BigInt64Array);
      return bad(`has unit ${unit} with bit width ${bitWidth}; seconds and milliseconds take 32 bits, micro- and nanoseconds 64`);
    }
    case 10: {
      leaf();
      const unit = i16(0, 0, 'unit');
      if (unit < 0 || unit > 3) bad(`has an unknown unit ${unit}`);
      const timezone = t === null ? null : t.string(1, MAX_STRING_BYTES, `${where}'s timezone`);
      return fixed(new Timestamp(unit, timezone), 8, BigInt64Array, unit <= 1 ? 'raw' : unit === 2 ? 'per-1000' : undefined);
    }
    case 11: {
      leaf();
      const unit = i16(0, 0, 'unit');
      if (unit === 0) return fixed(new Interval(0), 4, Int32Array);
      if (unit === 1) return fixed(new Interval(1), 8, Int32Array);
      if (unit === 2) return fixed(new Interval(2), 16, Int32Array);
      return bad(`has an unknown unit ${unit}`);
    }
    case 18: {
      leaf();
      const unit = i16(0, 1, 'unit');
      if (unit < 0 || unit > 3) bad(`has an unknown unit ${unit}`);
      return fixed(new Duration(unit), 8, BigInt64Array);
    }
    case 15: {
      leaf();
      const byteWidth = i32(0, 0, 'byte width');
      if (byteWidth < 1) bad(`has byte width ${byteWidth}; it must be at least 1`);
      return fixed(new FixedSizeBinary(byteWidth), byteWidth, Uint8Array);
    }
    case 12:
      return { type: new List(one().field), layout: { kind: 'list', large: false } };
    case 21:
      return { type: new LargeList(one().field), layout: { kind: 'list', large: true } };
    case 16: {
      const child = one();
      const size = i32(0, 0, 'list size');
      if (size < 1) bad(`has list size ${size}; it must be at least 1`);
      return { type: new FixedSizeList(size, child.field), layout: { kind: 'fixed-list', size } };
    }
    case 17: {
      const entries = one();
      if (entries.layout.kind !== 'struct' || entries.children.length !== 2) bad('must have one child, a struct of two fields (key and value)');
      const keysSorted = t !== null && t.bool(0, false, `${where}'s keysSorted`);
      return { type: new Map_(entries.field as Field<Struct>, keysSorted), layout: { kind: 'list', large: false } };
    }
    case 13:
      checkUniqueNames(children, `the fields of struct ${JSON.stringify(path)}`);
      return { type: new Struct(children.map((c) => c.field)), layout: { kind: 'struct' } };
    case 14: {
      const mode = i16(0, 0, 'mode');
      if (mode !== 0 && mode !== 1) bad(`has an unknown mode ${mode}`);
      const ids = t === null ? null : t.vector(1, 4, `${where}'s type ids`);
      const typeIds = new Int32Array(children.length);
      if (ids !== null && ids.length !== children.length) bad(`has ${ids.length} type ids for ${children.length} children`);
      const childOf = new Int16Array(128).fill(-1);
      for (let i = 0; i < children.length; i++) {
        const id = ids === null ? i : t!.fb.i32(ids.pos + 4 * i, `${where}'s type id ${i}`);
        if (id < 0 || id > 127) bad(`has type id ${id}; type ids are 0 to 127`);
        if (childOf[id] !== -1) bad(`has type id ${id} twice`);
        typeIds[i] = id;
        childOf[id] = i;
      }
      return { type: new Union(mode, Array.from(typeIds), children.map((c) => c.field)), layout: { kind: 'union', dense: mode === 1, typeIds, childOf } };
    }
    default:
      return refuse('bad-schema', `${where} has type ${typeName}, which is not supported${tag === 0 ? '' : ' (supported: null, bool, int, float, decimal, date, time, timestamp, interval, duration, binary, utf8 and their large forms, fixed-size binary, list, large list, fixed-size list, struct, map, union and dictionary-encoded fields)'}`);
  }
}

/**
 * A table's rows and a struct's values are apache-arrow row proxies keyed by field name: with a
 * name twice, Object.keys, spreading or for...in on a row throws a TypeError ("ownKeys ...
 * duplicate entries") and getChild finds only the first. Arrow allows it; this validator does not.
 */
function checkUniqueNames(columns: Column[], what: string): void {
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c.field.name)) refuse('bad-schema', `${what} have the name ${JSON.stringify(c.field.name)} twice; names must be unique, as rows are objects keyed by them`);
    seen.add(c.field.name);
  }
}

function intLayout(t: FbTable, where: string): IndexLayout {
  const bitWidth = t.i32(0, 0, `${where}'s bit width`);
  const signed = t.bool(1, false, `${where}'s signedness`);
  switch (bitWidth) {
    case 8:
      return { bytes: 1, signed, array: signed ? Int8Array : Uint8Array };
    case 16:
      return { bytes: 2, signed, array: signed ? Int16Array : Uint16Array };
    case 32:
      return { bytes: 4, signed, array: signed ? Int32Array : Uint32Array };
    case 64:
      return { bytes: 8, signed, array: signed ? BigInt64Array : BigUint64Array };
    default:
      return refuse('bad-schema', `${where} has integer bit width ${bitWidth}; it must be 8, 16, 32 or 64`);
  }
}

function keyValues(t: FbTable, slot: number, what: string): Map<string, string> {
  const out = new Map<string, string>();
  const v = t.vector(slot, 4, what);
  if (v === null) return out;
  if (v.length > MAX_METADATA_ENTRIES) refuse('bad-schema', `${what} has ${v.length} entries, more than ${MAX_METADATA_ENTRIES}`);
  for (let i = 0; i < v.length; i++) {
    const kv = t.tableAt(v, i, what);
    const key = kv.string(0, MAX_STRING_BYTES, `a key of ${what}`);
    if (key !== null) out.set(key, kv.string(1, MAX_STRING_BYTES, `a value of ${what}`) ?? '');
  }
  return out;
}

/** The physical shape of a column, names left out: fields sharing a dictionary must agree on it. */
function signatureOf(c: Column): string {
  const { layout } = c;
  const own =
    layout.kind === 'fixed' ? `fixed${layout.bytes}:${c.field.type}` :
    layout.kind === 'union' ? `union${layout.dense ? 'D' : 'S'}:${Array.from(layout.typeIds).join(',')}` :
    layout.kind === 'fixed-list' ? `fixed-list${layout.size}` :
    layout.kind === 'binary' ? `binary${layout.large ? 'L' : ''}${layout.utf8 ? 'U' : ''}` :
    layout.kind === 'list' ? `list${layout.large ? 'L' : ''}${c.field.type instanceof Map_ ? 'M' : ''}` :
    layout.kind === 'dictionary' ? `dict${layout.id}:${layout.index.bytes}${layout.index.signed}` :
    layout.kind;
  return `${own}(${c.children.map(signatureOf).join(',')})`;
}

/** How many field nodes and buffers one batch of this column holds (unions had a validity bitmap before V5). */
export function countNodesAndBuffers(c: Column, v4Unions: boolean): { nodes: number; buffers: number } {
  const { layout } = c;
  let buffers =
    layout.kind === 'null' ? 0 :
    layout.kind === 'binary' ? 3 :
    layout.kind === 'fixed-list' || layout.kind === 'struct' ? 1 :
    layout.kind === 'union' ? (layout.dense ? 2 : 1) + (v4Unions ? 1 : 0) :
    2;
  let nodes = 1;
  for (const child of c.children) {
    const n = countNodesAndBuffers(child, v4Unions);
    nodes += n.nodes;
    buffers += n.buffers;
  }
  return { nodes, buffers };
}
