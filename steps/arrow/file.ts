// The Arrow IPC file format (format/Columnar.rst, "IPC File Format"), read from untrusted bytes:
//
//   "ARROW1" <pad to 8> <schema message> <dictionary and record batch messages> <footer>
//   <footer length: int32> "ARROW1"
//
// The footer (format/File.fbs) holds the schema again and one Block { offset, metaDataLength,
// bodyLength } per dictionary batch and record batch. Each block is an encapsulated message:
// 0xFFFFFFFF, an int32 metadata length, the Message flatbuffer padded to 8 bytes, then the body.
// Everything is reached through the footer, as readers do; the leading schema message is not read.
import { RecordBatch, Struct, Table, Vector, makeData, vectorFromArray, type Data } from 'apache-arrow';
import { BatchLoader, readBatchHeader, type BatchHeader, type CheckMode, type ValueBudget } from './batch.js';
import { ArrowRefusal, refuse, type ArrowRefusalReason, type ResolvedArrowCaps } from './caps.js';
import { Flatbuffer, FlatbufferError, type FbTable } from './flatbuffer.js';
import { countNodesAndBuffers, parseSchema, type Column, type ParsedSchema } from './schema.js';

const MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31]; // "ARROW1"
/** Leading magic and padding (8), footer length (4), trailing magic (6): the smallest possible file has these and a footer. */
const MIN_FILE = 8 + 4 + 6;
const CONTINUATION = 0xffffffff;
// MessageHeader union tags of format/Message.fbs.
const HEADER_NAMES = ['NONE', 'Schema', 'DictionaryBatch', 'RecordBatch', 'Tensor', 'SparseTensor'];
const DICTIONARY_BATCH = 2;
const RECORD_BATCH = 3;
// MetadataVersion: V4 (Arrow 0.8 to 0.17) and V5 (1.0 on) are the ones a reader can meet.
const V4 = 3;
const V5 = 4;

interface Block {
  offset: number;
  metaDataLength: number;
  bodyLength: number;
  /** "record batch 3" or "dictionary batch 0". */
  name: string;
}

interface Message {
  block: Block;
  header: FbTable;
  version: number;
  metadata: Map<string, string>;
}

/** Decodes and checks an Arrow IPC file; throws ArrowRefusal (or, for a bug of ours, anything else). */
export function decodeArrowFile(bytes: Uint8Array, caps: ResolvedArrowCaps, mode: CheckMode): Table {
  const size = bytes.length;
  if (size > caps.maxBytes) refuse('too-large', `it is ${size} bytes, more than maxBytes (${caps.maxBytes})`);
  checkMagic(bytes);

  const footerLength = new DataView(bytes.buffer, bytes.byteOffset + size - 10, 4).getInt32(0, true);
  const footerStart = size - 10 - footerLength;
  if (footerLength <= 0 || footerStart < 8) refuse('bad-footer', `its footer length (${footerLength}) points outside the file (${size} bytes)`);
  const footer = section('bad-footer', 'its footer', () => new Flatbuffer(bytes.subarray(footerStart, size - 10)).root());

  const version = section('bad-footer', 'its footer', () => footer.i16(0, 0, 'the metadata version'));
  if (version !== V4 && version !== V5) refuse('bad-footer', `its footer has metadata version ${version + 1}; only V4 and V5 are read`);
  const schemaTable = section('bad-footer', 'its footer', () => footer.table(1, 'the schema'));
  if (schemaTable === null) refuse('bad-schema', 'its footer has no schema');
  const schema = section('bad-schema', 'its schema', () => parseSchema(schemaTable, caps));

  const dictionaryBlocks = section('bad-footer', 'its footer', () => readBlocks(footer, 2, 'dictionary batch', caps));
  const batchBlocks = section('bad-footer', 'its footer', () => readBlocks(footer, 3, 'record batch', caps));
  checkBlockPlacement([...dictionaryBlocks, ...batchBlocks], footerStart);

  const dictionaryMessages = dictionaryBlocks.map((b) => readMessage(bytes, b, DICTIONARY_BATCH, 'bad-dictionary'));
  const batchMessages = batchBlocks.map((b) => readMessage(bytes, b, RECORD_BATCH, 'bad-batch'));

  // Rows first, before any body is looked at: a huge declared count is refused as such.
  let rows = 0;
  for (const m of batchMessages) {
    const n = section('bad-batch', m.block.name, () => m.header.i64(0, 0, `${m.block.name}'s length`));
    if (n < 0) refuse('bad-batch', `${m.block.name} declares ${n} rows`);
    rows += n;
  }
  if (rows > caps.maxRows) refuse('too-many-rows', `its record batches declare ${rows} rows in all, more than maxRows (${caps.maxRows})`);

  const budget: ValueBudget = { values: 0, caps };
  const dictionaries = loadDictionaries(bytes, schema, dictionaryMessages, mode, budget);
  const expected = (v4: boolean) => {
    const n = { nodes: 0, buffers: 0 };
    for (const c of schema.columns) {
      const cn = countNodesAndBuffers(c, v4);
      n.nodes += cn.nodes;
      n.buffers += cn.buffers;
    }
    return n;
  };
  const counts = { v4: expected(true), v5: expected(false) };
  const batches = batchMessages.map((m) => loadRecordBatch(bytes, schema, m, m.version === V4 ? counts.v4 : counts.v5, mode, budget, dictionaries));
  return new Table(schema.schema, batches);
}

/** "ARROW1" at both ends; says whether a file without it is something else or cut short. */
function checkMagic(bytes: Uint8Array): void {
  const size = bytes.length;
  for (let i = 0; i < Math.min(size, MAGIC.length); i++) {
    if (bytes[i] !== MAGIC[i]) {
      if (size >= 8 && new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) === CONTINUATION) {
        refuse('not-arrow', 'it is an Arrow IPC stream, not an Arrow IPC file (it starts with a message, not the magic "ARROW1"); write it with tableToIPC(table, \'file\')');
      }
      refuse('not-arrow', `it is not an Arrow IPC file: it starts with ${hexAndText(bytes.subarray(0, 8))}, not the magic "ARROW1"`);
    }
  }
  if (size === 0) refuse('truncated', 'it is empty (0 bytes)');
  if (size < MIN_FILE) refuse('truncated', `it is ${size} bytes, too short for an Arrow IPC file (its magic numbers and footer length alone take ${MIN_FILE})`);
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[size - MAGIC.length + i] !== MAGIC[i]) {
      refuse('truncated', `it does not end with the magic "ARROW1" an Arrow IPC file ends with (it ends with ${hexAndText(bytes.subarray(size - 6))}): it was cut short, or never finished`);
    }
  }
}

function hexAndText(b: Uint8Array): string {
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
  const text = Array.from(b, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
  return `${hex} (${JSON.stringify(text)})`;
}

/** Runs f, turning a malformed flatbuffer into a refusal with this reason. */
function section<T>(reason: ArrowRefusalReason, where: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof FlatbufferError) refuse(reason, `${where} is malformed: ${err.message}`);
    throw err;
  }
}

/** The footer's dictionaries (slot 2) or recordBatches (slot 3): Block structs of 24 bytes. */
function readBlocks(footer: FbTable, slot: number, kind: string, caps: ResolvedArrowCaps): Block[] {
  const v = footer.vector(slot, 24, `the ${kind} blocks`);
  const count = v?.length ?? 0;
  if (count > caps.maxBatches) refuse('too-many-batches', `it has ${count} ${kind}es, more than maxBatches (${caps.maxBatches})`);
  const blocks: Block[] = [];
  for (let i = 0; i < count; i++) {
    const at = v!.pos + 24 * i;
    const name = `${kind} ${i}`;
    blocks.push({
      offset: footer.fb.i64(at, `${name}'s offset`),
      metaDataLength: footer.fb.i32(at + 8, `${name}'s metadata length`),
      bodyLength: footer.fb.i64(at + 16, `${name}'s body length`),
      name,
    });
  }
  return blocks;
}

/** Each block lies between the leading magic and the footer, 8-aligned, and no two overlap. */
function checkBlockPlacement(blocks: Block[], footerStart: number): void {
  for (const b of blocks) {
    const where = `${b.name}'s block (offset ${b.offset}, metadata ${b.metaDataLength} bytes, body ${b.bodyLength} bytes)`;
    if (b.offset < 8 || b.metaDataLength < 8 || b.bodyLength < 0 || b.offset + b.metaDataLength + b.bodyLength > footerStart) {
      refuse('bad-footer', `${where} points outside the file's messages (bytes 8 to ${footerStart})`);
    }
    if (b.offset % 8 !== 0 || b.metaDataLength % 8 !== 0) refuse('bad-footer', `${where} is not aligned to 8 bytes`);
  }
  const sorted = [...blocks].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (prev.offset + prev.metaDataLength + prev.bodyLength > sorted[i].offset) refuse('bad-footer', `${prev.name} and ${sorted[i].name} overlap`);
  }
}

/** The encapsulated message a block points at, checked against the block. */
function readMessage(bytes: Uint8Array, block: Block, headerType: number, reason: ArrowRefusalReason): Message {
  const { name } = block;
  const view = new DataView(bytes.buffer, bytes.byteOffset + block.offset, 8);
  // Since 0.15 a message starts with 0xFFFFFFFF; before, with the length alone.
  const legacy = view.getUint32(0, true) !== CONTINUATION;
  const length = legacy ? view.getInt32(0, true) : view.getInt32(4, true);
  const start = block.offset + (legacy ? 4 : 8);
  if (length <= 0 || start + length !== block.offset + block.metaDataLength) {
    refuse(reason, `${name}'s message says its metadata is ${length} bytes, but its block says ${block.metaDataLength - (legacy ? 4 : 8)}`);
  }
  return section(reason, `${name}'s metadata`, () => {
    const msg = new Flatbuffer(bytes.subarray(start, start + length)).root();
    const version = msg.i16(0, 0, 'the metadata version');
    if (version !== V4 && version !== V5) refuse(reason, `${name} has metadata version ${version + 1}; only V4 and V5 are read`);
    const type = msg.u8(1, 0, 'the header type');
    if (type !== headerType) refuse(reason, `${name} is a ${HEADER_NAMES[type] ?? `#${type}`} message, not a ${HEADER_NAMES[headerType]}`);
    const header = msg.table(2, 'the header');
    if (header === null) refuse(reason, `${name} has no header`);
    const bodyLength = msg.i64(3, 0, 'the body length');
    if (bodyLength !== block.bodyLength) refuse(reason, `${name}'s message says its body is ${bodyLength} bytes, but its block says ${block.bodyLength}`);
    return { block, header, version, metadata: new Map() };
  });
}

function bodyStart(b: Block): number {
  return b.offset + b.metaDataLength;
}

/**
 * Dictionary batches in footer order: the first for an id defines it, later ones must be deltas
 * (the file format has no replacement: format/Columnar.rst, "IPC File Format"). Returns the final
 * dictionary of every id in the schema; an id no batch defines is an empty dictionary, so any
 * index into it is refused.
 */
function loadDictionaries(bytes: Uint8Array, schema: ParsedSchema, messages: Message[], mode: CheckMode, budget: ValueBudget): Map<number, Vector> {
  const chunks = new Map<number, Data[]>();
  for (const m of messages) {
    const { name } = m.block;
    const { id, isDelta, data } = section('bad-dictionary', name, () => ({
      id: m.header.i64(0, 0, 'the dictionary id'),
      isDelta: m.header.bool(2, false, 'the delta flag'),
      data: m.header.table(1, 'the dictionary\'s record batch'),
    }));
    const where = `${name} (id ${id})`;
    const spec = schema.dictionaries.get(id);
    if (spec === undefined) refuse('bad-dictionary', `${where} is for dictionary id ${id}, which no field of the schema uses`);
    if (data === null) refuse('bad-dictionary', `${where} has no data`);
    const seen = chunks.get(id);
    if (seen === undefined && isDelta) refuse('bad-dictionary', `${where} is a delta, but no dictionary batch before it defines id ${id}`);
    if (seen !== undefined && !isDelta) refuse('bad-dictionary', `${where} replaces dictionary ${id}, which the Arrow file format does not allow (only deltas may follow the first)`);
    const header = section('bad-dictionary', where, () => readBatchHeader(data, m.block.bodyLength, countNodesAndBuffers(spec.values, m.version === V4), where, 'bad-dictionary'));
    const loader = new BatchLoader(bytes, bodyStart(m.block), header, mode, where, 'bad-dictionary', budget, new Map(), m.version === V4);
    const values = loader.load(spec.values);
    if (values.length !== header.length) refuse('bad-dictionary', `${where} declares ${header.length} values, but its field node has ${values.length}`);
    if (seen === undefined) chunks.set(id, [values]);
    else seen.push(values);
  }
  const out = new Map<number, Vector>();
  for (const [id, spec] of schema.dictionaries) {
    // Memoized, as apache-arrow's reader does: each dictionary value is decoded once. An empty
    // one comes from a builder, which gives even a list or map type its (empty) children.
    const data = chunks.get(id);
    out.set(id, (data === undefined ? vectorFromArray([], spec.values.field.type) : new Vector(data)).memoize());
  }
  return out;
}

function loadRecordBatch(bytes: Uint8Array, schema: ParsedSchema, m: Message, expected: { nodes: number; buffers: number }, mode: CheckMode, budget: ValueBudget, dictionaries: Map<number, Vector>): RecordBatch {
  const { name } = m.block;
  const header: BatchHeader = section('bad-batch', name, () => readBatchHeader(m.header, m.block.bodyLength, expected, name, 'bad-batch'));
  const loader = new BatchLoader(bytes, bodyStart(m.block), header, mode, name, 'bad-batch', budget, dictionaries, m.version === V4);
  const children = schema.columns.map((c: Column) => {
    const data = loader.load(c);
    if (data.length !== header.length) refuse('bad-batch', `${name}, column ${JSON.stringify(c.path)}: it has ${data.length} values, but the batch declares ${header.length} rows`);
    return data;
  });
  if (!loader.finished()) throw new ArrowRefusal('bad-batch', `${name} has field nodes or buffers its schema does not use`);
  const data = makeData({ type: new Struct(schema.schema.fields), length: header.length, nullCount: 0, children });
  return new RecordBatch(schema.schema, data, m.metadata);
}
