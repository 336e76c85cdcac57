// Arrow files: a step's output is validated before the renderer trusts it, and every malformed
// file is refused with its own reason and a message that says where. Each attack sits beside a
// positive control: apache-arrow's tableFromIPC on the same bytes, which does not refuse it
// (garbage values, a silent empty table, a non-descriptive TypeError, or gigabytes reserved).
//
// Malformed files are valid tableToIPC outputs patched at positions found by parsing them
// (test/fixtures/arrow-files.ts, layoutOf), never at hardcoded offsets.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompressionType, RecordBatchFileWriter, Table, compressionRegistry, tableFromIPC, tableToIPC, vectorFromArray, Int32, List, Field } from 'apache-arrow';
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ARROW_CAPS, InvalidOutputError, mapArrowFile, readArrowOutput, validateArrowFile, writeArrowFile, type ArrowCaps, type InvalidOutputReason } from '../../dist/index.js';
import { columnIn, fuzzArrowValidator, layoutOf, readEveryCell, setInt32, setInt64, sharedFieldsFile, validTables, wideTable } from '../fixtures/arrow-files.js';
import { fdsOf, ROOT } from '../helpers/index.js';

const CAPS: ArrowCaps = { maxBytes: 1 << 20, maxColumns: 100, maxRows: 100_000 };
const TABLES = validTables();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'zygote-arrow-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh tableToIPC file of a corpus table (or of table), with its layout. */
function fileOf(table: Table | string) {
  const t = typeof table === 'string' ? TABLES[table] : table;
  const bytes = tableToIPC(t, 'file');
  return { bytes, layout: layoutOf(bytes), fields: t.schema.fields };
}

/** validateArrowFile refuses bytes for reason; returns the error. */
function refused(bytes: Uint8Array, reason: InvalidOutputReason, caps: ArrowCaps = CAPS): InvalidOutputError {
  let err: unknown = null;
  try {
    validateArrowFile(bytes, caps, 'out.arrow');
  } catch (e) {
    err = e;
  }
  expect(err, 'the file was accepted').toBeInstanceOf(InvalidOutputError);
  expect((err as InvalidOutputError).message).toMatch(/^Arrow file "out\.arrow" refused: /);
  expect((err as InvalidOutputError).reason, (err as Error).message).toBe(reason);
  expect((err as InvalidOutputError).file).toBe('out.arrow');
  return err as InvalidOutputError;
}

/** What is wrong, without the "Arrow file ... refused: " prefix. */
function why(bytes: Uint8Array, reason: InvalidOutputReason, caps: ArrowCaps = CAPS): string {
  return refused(bytes, reason, caps).message.replace('Arrow file "out.arrow" refused: ', '');
}

/** tableFromIPC's outcome: the table, or the error it threw. */
function arrowReads(bytes: Uint8Array): { table: Table } | { error: Error } {
  try {
    return { table: tableFromIPC(bytes) };
  } catch (error) {
    return { error: error as Error };
  }
}

/** Values as JSON, BigInts as strings, for comparing tables. */
function json(table: Table): string {
  return JSON.stringify(table.toArray(), (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
}

const CLIENT = JSON.stringify(`${ROOT}dist/index.js`);

describe('valid files', () => {
  it.each(Object.keys(TABLES))('a table of %s round-trips with the values apache-arrow reads, and every cell can be read', (name) => {
    const { bytes } = fileOf(name);
    const table = validateArrowFile(bytes, CAPS);
    expect(json(table)).toBe(json(tableFromIPC(bytes)));
    expect(json(table)).toBe(json(TABLES[name]));
    expect(table.schema.fields.map((f) => `${f.name}: ${f.type} ${f.nullable}`)).toEqual(TABLES[name].schema.fields.map((f) => `${f.name}: ${f.type} ${f.nullable}`));
    expect(table.numRows).toBe(TABLES[name].numRows);
    readEveryCell(table);
  });

  it('views the bytes it was given, without a copy', () => {
    const { bytes } = fileOf('ints');
    const table = validateArrowFile(bytes, CAPS);
    const values = table.getChild('i32')!.data[0].values;
    expect(values.buffer).toBe(bytes.buffer);
    expect(new Int32Array(bytes.buffer, values.byteOffset, 1)[0]).toBe(1);
  });

  it('keeps record batches and dictionary deltas as they are in the file', () => {
    expect(validateArrowFile(fileOf('batches').bytes, CAPS).batches.map((b) => b.numRows)).toEqual([5, 3, 7]);
    const { bytes, layout } = fileOf('dictionaryDelta');
    expect(layout.dictionaries.map((d) => d.isDelta)).toEqual([false, true]);
    expect([...validateArrowFile(bytes, CAPS).getChild('color')!]).toEqual(['red', 'green', 'red', 'red', 'blue', null, 'green', 'violet']);
  });

  it('accepts a file exactly at each cap, and refuses it one below, naming the cap', () => {
    const { bytes } = fileOf('batches'); // 15 rows in 3 batches, 2 columns
    const at: ArrowCaps = { maxBytes: bytes.length, maxColumns: 2, maxRows: 15, maxBatches: 3, maxFields: 2, maxDepth: 1, maxValues: 30 };
    expect(validateArrowFile(bytes, at).numRows).toBe(15);
    expect(why(bytes, 'too-large', { ...at, maxBytes: bytes.length - 1 })).toBe(`it is ${bytes.length} bytes, more than maxBytes (${bytes.length - 1})`);
    expect(why(bytes, 'too-many-columns', { ...at, maxColumns: 1 })).toBe('it has 2 columns, more than maxColumns (1)');
    expect(why(bytes, 'too-many-rows', { ...at, maxRows: 14 })).toBe('its record batches declare 15 rows in all, more than maxRows (14)');
    expect(why(bytes, 'too-many-batches', { ...at, maxBatches: 2 })).toBe('it has 3 record batches, more than maxBatches (2)');
    expect(why(bytes, 'too-many-columns', { ...at, maxFields: 1 })).toBe('its schema has more than maxFields (1) fields, nested ones included');
    expect(why(bytes, 'too-many-values', { ...at, maxValues: 29 })).toBe('its arrays hold more than maxValues (29) values in all (at record batch 2, column "name")');
  });

  it('counts nested fields and depth against maxFields and maxDepth', () => {
    let type: Int32 | List = new Int32();
    for (let i = 0; i < 5; i++) type = new List(new Field('item', type, true));
    let values: unknown = 1;
    for (let i = 0; i < 5; i++) values = [values];
    const bytes = tableToIPC(new Table({ deep: vectorFromArray([values], type) }), 'file');
    expect(validateArrowFile(bytes, { ...CAPS, maxDepth: 6, maxFields: 6 }).getChild('deep')!.get(0)!.get(0)!.get(0)!.get(0)!.get(0)!.get(0)).toBe(1);
    expect(why(bytes, 'bad-schema', { ...CAPS, maxDepth: 5 })).toBe('field "deep.item.item.item.item" nests types deeper than maxDepth (5)');
    expect(why(bytes, 'too-many-columns', { ...CAPS, maxFields: 5 })).toBe('its schema has more than maxFields (5) fields, nested ones included');
  });

  it('rejects caps that are not non-negative integers, naming the cap', () => {
    const { bytes } = fileOf('ints');
    expect(() => validateArrowFile(bytes, { ...CAPS, maxRows: -1 })).toThrow(new TypeError('Expected `maxRows` to be a non-negative integer, got -1 (number)'));
    expect(() => validateArrowFile(bytes, { maxBytes: 10, maxColumns: 1 } as ArrowCaps)).toThrow(new TypeError('Expected `maxRows` to be a non-negative integer, got undefined'));
    expect(() => validateArrowFile(bytes, { ...CAPS, maxValues: 1.5 })).toThrow(new TypeError('Expected `maxValues` to be a non-negative integer, got 1.5 (number)'));
    expect(DEFAULT_ARROW_CAPS).toMatchObject({ maxBytes: 1 << 30, maxColumns: 1000, maxRows: 10_000_000 });
  });
});

describe('files on disk', () => {
  it('writeArrowFile creates a new 0644 file that readArrowOutput maps, validates and unmaps', async () => {
    const out = join(dir, 'out-1');
    mkdirSync(out);
    const umask = process.umask(0o022);
    try {
      writeArrowFile(join(out, 'result.arrow'), TABLES.nested);
    } finally {
      process.umask(umask);
    }
    expect(statSync(join(out, 'result.arrow')).mode & 0o777).toBe(0o644);
    const result = readArrowOutput(out, 'result.arrow', CAPS);
    expect(result.bytes).toBe(statSync(join(out, 'result.arrow')).size);
    expect(json(result.table)).toBe(json(TABLES.nested));
    const list = result.table.getChild('list')!;
    result.unmap();
    result.unmap();
    // After unmap every view of the mapping reads as empty: wrong answers, never a crash.
    expect(list.data[0].valueOffsets.length).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(readFileSync('/proc/self/maps', 'utf8')).not.toContain(join(out, 'result.arrow'));
  });

  it('writeArrowFile never overwrites a file nor follows a symlink at the path', () => {
    const target = join(dir, 'renderer-file');
    writeFileSync(target, 'keep me');
    symlinkSync(target, join(dir, 'link.arrow'));
    expect(() => writeArrowFile(target, TABLES.ints)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(() => writeArrowFile(join(dir, 'link.arrow'), TABLES.ints)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(readFileSync(target, 'utf8')).toBe('keep me');
  });

  it('readArrowOutput refuses a malformed file naming it and its directory, and leaves no fd or mapping behind', async () => {
    const out = join(dir, 'out-2');
    mkdirSync(out);
    const { bytes } = fileOf('strings');
    writeFileSync(join(out, 'cut.arrow'), bytes.subarray(0, bytes.length - 20));
    const before = fdsOf(process.pid);
    for (let i = 0; i < 50; i++) {
      expect(() => readArrowOutput(out, 'cut.arrow', CAPS)).toThrow(
        expect.objectContaining({ reason: 'truncated', file: 'cut.arrow', message: expect.stringMatching(new RegExp(`^output file "cut\\.arrow" in ${out} refused: it does not end with the magic "ARROW1"`)) }),
      );
    }
    await new Promise((r) => setImmediate(r));
    expect([...fdsOf(process.pid).keys()]).toEqual([...before.keys()]);
    expect(readFileSync('/proc/self/maps', 'utf8')).not.toContain(join(out, 'cut.arrow'));
    // The file checks of mapOutputFile still come first.
    symlinkSync(join(out, 'cut.arrow'), join(out, 'link.arrow'));
    expect(() => readArrowOutput(out, 'link.arrow', CAPS)).toThrow(expect.objectContaining({ reason: 'symlink' }));
    expect(() => readArrowOutput(out, 'cut.arrow', { ...CAPS, maxBytes: 100 })).toThrow(expect.objectContaining({ reason: 'too-large' }));
  });

  it('mapArrowFile maps a trusted file and builds its table over the mapping', () => {
    const path = join(dir, 'input.arrow');
    writeArrowFile(path, TABLES.dictionaries);
    const mapped = mapArrowFile(path);
    expect(json(mapped.table)).toBe(json(TABLES.dictionaries));
    // The values view the mapping (an ArrayBuffer of the file's size), not a copy.
    expect(mapped.table.getChild('city')!.data[0].values.buffer.byteLength).toBe(statSync(path).size);
    mapped.unmap();
  });

  it('mapArrowFile refuses a file whose metadata is malformed, and unmaps it', () => {
    const { bytes, layout } = fileOf('ints');
    setInt64(bytes, layout.batches[0].block.pos, 1 << 30);
    writeFileSync(join(dir, 'bad-input.arrow'), bytes);
    expect(() => mapArrowFile(join(dir, 'bad-input.arrow'))).toThrow(expect.objectContaining({ reason: 'bad-footer', message: expect.stringContaining(`input file "${join(dir, 'bad-input.arrow')}" refused: record batch 0's block`) }));
  });
});

describe('malformed files: where the file is', () => {
  it("a zero-byte file is 'truncated'; positive control: tableFromIPC returns an empty table", () => {
    expect(why(new Uint8Array(0), 'truncated')).toBe('it is empty (0 bytes)');
    const r = arrowReads(new Uint8Array(0));
    expect('table' in r && r.table.numRows).toBe(0);
  });

  it("a file cut at any byte is 'truncated'; positive control: tableFromIPC returns empty tables or TypeErrors", () => {
    const { bytes, layout } = fileOf('batches');
    const cuts = new Set<number>();
    for (let k = 0; k < bytes.length; k += 7) cuts.add(k);
    for (const m of [...layout.dictionaries, ...layout.batches]) [m.block.offset, m.metadataStart, m.bodyStart, m.bodyStart + m.block.bodyLength].forEach((k) => cuts.add(k));
    for (let k = bytes.length - 12; k < bytes.length; k++) cuts.add(k);
    cuts.add(layout.footerStart);
    const arrow: Record<string, number> = {};
    for (const k of cuts) {
      refused(bytes.subarray(0, k), 'truncated');
      const r = arrowReads(bytes.slice(0, k));
      const outcome = 'table' in r ? `a table of ${r.table.numRows} rows` : `${r.error.name}: ${r.error.message}`;
      arrow[outcome] = (arrow[outcome] ?? 0) + 1;
    }
    expect(cuts.size).toBeGreaterThan(180);
    expect(arrow['a table of 0 rows']).toBeGreaterThan(0);
    expect(arrow["TypeError: Cannot read properties of null (reading 'fieldsLength')"]).toBeGreaterThan(100);
    expect(Object.keys(arrow).some((o) => /truncat/i.test(o))).toBe(false);
    expect(why(bytes.subarray(0, 12), 'truncated')).toBe('it is 12 bytes, too short for an Arrow IPC file (its magic numbers and footer length alone take 18)');
  });

  it("bad magic is 'not-arrow', showing what the file starts with", () => {
    const { bytes } = fileOf('ints');
    bytes[0] = 0x50;
    expect(why(bytes, 'not-arrow')).toBe('it is not an Arrow IPC file: it starts with 50 52 52 4f 57 31 00 00 ("PRROW1.."), not the magic "ARROW1"');
    expect(why(new TextEncoder().encode('{"rows": []}'), 'not-arrow')).toMatch(/^it is not an Arrow IPC file: it starts with 7b 22 72 6f 77 73 22 3a \("\{\\"rows\\":"\)/);
  });

  it("a stream instead of a file is 'not-arrow', saying how to write a file; positive control: tableFromIPC reads either", () => {
    const stream = tableToIPC(TABLES.ints, 'stream');
    expect(why(stream, 'not-arrow')).toBe("it is an Arrow IPC stream, not an Arrow IPC file (it starts with a message, not the magic \"ARROW1\"); write it with tableToIPC(table, 'file')");
    expect(tableFromIPC(stream).numRows).toBe(4);
  });

  it("a footer length pointing outside the file is 'bad-footer'; positive control: tableFromIPC throws a TypeError", () => {
    const { bytes, layout } = fileOf('ints');
    setInt32(bytes, layout.footerLengthPos, 1 << 30);
    expect(why(bytes, 'bad-footer')).toBe(`its footer length (1073741824) points outside the file (${bytes.length} bytes)`);
    expect(arrowReads(bytes)).toEqual({ error: new TypeError("Cannot read properties of null (reading 'fieldsLength')") });
  });

  it("a record batch block pointing outside the file is 'bad-footer'; positive control: tableFromIPC silently drops the batch", () => {
    const { bytes, layout } = fileOf('ints');
    setInt64(bytes, layout.batches[0].block.pos, 1 << 30);
    expect(why(bytes, 'bad-footer')).toBe(`record batch 0's block (offset 1073741824, metadata ${layout.batches[0].block.metaDataLength} bytes, body ${layout.batches[0].block.bodyLength} bytes) points outside the file's messages (bytes 8 to ${layout.footerStart})`);
    const r = arrowReads(bytes);
    expect('table' in r && r.table.numRows).toBe(0);
  });

  it("two blocks over the same bytes are 'bad-footer'", () => {
    const { bytes, layout } = fileOf('batches');
    setInt64(bytes, layout.batches[1].block.pos, layout.batches[0].block.offset);
    expect(why(bytes, 'bad-footer')).toMatch(/^record batch [01] and record batch [01] overlap$/);
  });

  it("a block whose metadata length disagrees with its message is 'bad-batch'", () => {
    const { bytes, layout } = fileOf('ints');
    const m = layout.batches[0];
    setInt32(bytes, m.block.offset + 4, m.block.metaDataLength - 16);
    expect(why(bytes, 'bad-batch')).toBe(`record batch 0's message says its metadata is ${m.block.metaDataLength - 16} bytes, but its block says ${m.block.metaDataLength - 8}`);
  });
});

describe('malformed files: schema', () => {
  it("a footer without a schema is 'bad-schema'; positive control: tableFromIPC throws a TypeError", () => {
    const { bytes, layout } = fileOf('strings');
    // Footer slot 1 (schema): zero its vtable entry, as if the writer left it out.
    new DataView(bytes.buffer).setUint16(layout.footerVtable + 4 + 2 * 1, 0, true);
    expect(why(bytes, 'bad-schema')).toBe('its footer has no schema');
    expect(arrowReads(bytes)).toEqual({ error: new TypeError("Cannot read properties of null (reading 'fieldsLength')") });
  });

  it("an unsupported type is 'bad-schema', naming the field and the type", () => {
    const { bytes, layout } = fileOf('strings');
    bytes[layout.fields[0].typeTagPos] = 22; // RunEndEncoded
    expect(why(bytes, 'bad-schema')).toMatch(/^field "s" has type RunEndEncoded, which is not supported \(supported: null, bool, int/);
    bytes[layout.fields[0].typeTagPos] = 99;
    expect(why(bytes, 'bad-schema')).toMatch(/^field "s" has type #99, which is not supported/);
    expect(arrowReads(bytes)).toEqual({ error: new Error('Unrecognized type: "undefined" (99)') });
  });

  it("a type whose parameters are missing is 'bad-schema' (utf8 relabelled int: no bit width)", () => {
    const { bytes, layout } = fileOf('strings');
    bytes[layout.fields[0].typeTagPos] = 2;
    expect(why(bytes, 'bad-schema')).toBe('field "s" has integer bit width 0; it must be 8, 16, 32 or 64');
  });

  it("a schema whose columns all share one long name is 'bad-schema' at once; positive control: it crashes tableFromIPC out of memory", () => {
    // 2,000 columns that are one Field table named by one 256 KiB string: a 270 KB file whose
    // names are 512 MB decoded. Flatbuffers allow the sharing; no writer does it.
    const bytes = sharedFieldsFile(2000, 256 * 1024);
    const t0 = performance.now();
    expect(why(bytes, 'bad-schema', { ...CAPS, maxColumns: 10_000 })).toBe('its schema is malformed: its strings add up to more bytes than it holds (strings shared between tables)');
    expect(performance.now() - t0).toBeLessThan(200);
    writeFileSync(join(dir, 'shared-fields.arrow'), bytes);
    const script = `import { readFileSync } from 'node:fs';
      import { tableFromIPC } from 'apache-arrow';
      tableFromIPC(readFileSync(${JSON.stringify(join(dir, 'shared-fields.arrow'))}));
      console.log('read');`;
    const r = spawnSync(process.execPath, ['--max-old-space-size=256', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, cwd: ROOT });
    expect(bytes.length).toBeLessThan(280_000);
    expect(r.stdout).not.toContain('read');
    expect(r.stderr).toContain('JavaScript heap out of memory');
  });

  it("too many columns is 'too-many-columns', before any of them is decoded", () => {
    const { bytes } = fileOf(wideTable(150));
    expect(why(bytes, 'too-many-columns')).toBe('it has 150 columns, more than maxColumns (100)');
    expect(validateArrowFile(bytes, { ...CAPS, maxColumns: 150 }).numCols).toBe(150);
  });
});

describe('malformed files: record batches', () => {
  it("a batch whose lengths lie (1000 rows, buffers for 4) is 'bad-batch'; positive control: tableFromIPC returns undefined cells", () => {
    const { bytes, layout } = fileOf(wideTable(1, 4));
    const m = layout.batches[0];
    setInt64(bytes, m.lengthPos!, 1000);
    setInt64(bytes, m.nodes[0].pos, 1000);
    expect(why(bytes, 'bad-batch')).toBe('record batch 0, column "c0" (Int32): its value buffer is 16 bytes, less than the 4000 its length needs');
    const r = arrowReads(bytes) as { table: Table };
    expect(r.table.numRows).toBe(1000);
    expect(r.table.getChild('c0')!.get(500)).toBeUndefined();
  });

  it("a column shorter than its batch is 'bad-batch'; positive control: tableFromIPC pads it with nulls", () => {
    const { bytes, layout } = fileOf(wideTable(1, 4));
    setInt64(bytes, layout.batches[0].lengthPos!, 6);
    expect(why(bytes, 'bad-batch')).toBe('record batch 0, column "c0": it has 4 values, but the batch declares 6 rows');
    expect([...(arrowReads(bytes) as { table: Table }).table.getChild('c0')!]).toEqual([0, 1, 2, 3, null, null]);
  });

  it("a huge declared row count is 'too-many-rows'; positive control: an 11 KB file makes tableFromIPC reserve 12.8 GB", () => {
    const { bytes, layout } = fileOf(wideTable(100, 2));
    setInt64(bytes, layout.batches[0].lengthPos!, 2 ** 30);
    expect(why(bytes, 'too-many-rows')).toBe('its record batches declare 1073741824 rows in all, more than maxRows (100000)');
    // In a child process: the reservation is lazily committed here, but it is there.
    const script = `import { tableFromIPC } from 'apache-arrow';
      const t = tableFromIPC(Buffer.from(${JSON.stringify(Buffer.from(bytes).toString('base64'))}, 'base64'));
      console.log(JSON.stringify({ rows: t.numRows, arrayBuffers: process.memoryUsage().arrayBuffers }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000, cwd: ROOT });
    const out = JSON.parse(r.stdout);
    expect(bytes.length).toBeLessThan(12_000);
    expect(out.rows).toBe(2 ** 30);
    expect(out.arrayBuffers).toBeGreaterThan(100 * 2 ** 27);
  });

  it("null counts that lie are 'bad-batch'", () => {
    const { bytes, layout, fields } = fileOf('ints');
    const col = columnIn(layout.batches[0], fields, 2); // i32: [1, 2, null, min]: one null
    setInt64(bytes, col.nodes[0].pos + 8, 3);
    expect(why(bytes, 'bad-batch')).toBe('record batch 0, column "i32" (Int32): declares 3 nulls, but its validity bitmap has 1');
    setInt64(bytes, col.nodes[0].pos + 8, 5);
    expect(why(bytes, 'bad-batch')).toBe('record batch 0 field node 2 declares 5 nulls in 4 values');
  });

  it("utf8 offsets past the data buffer are 'bad-batch'; positive control: tableFromIPC returns the padding's bytes", () => {
    const { bytes, layout, fields } = fileOf('strings');
    const col = columnIn(layout.batches[0], fields, 0);
    const [, offsets, data] = col.buffers;
    setInt32(bytes, offsets.start + 4 * col.nodes[0].length, data.length + 5);
    expect(why(bytes, 'bad-batch')).toBe(`record batch 0, column "s" (Utf8): its last offset (${data.length + 5}) is past the end of its data buffer (${data.length} bytes)`);
    const last = [...(arrowReads(bytes) as { table: Table }).table.getChild('s')!].at(-1);
    expect(last).toMatch(/^🎉\0+$/);
  });

  it("offsets that go backwards are 'bad-batch'", () => {
    const { bytes, layout, fields } = fileOf('strings');
    const [, offsets] = columnIn(layout.batches[0], fields, 0).buffers;
    // ['', 'héllo', ...]: offsets [0, 0, 6, ...] become [0, 3, 0, ...].
    setInt32(bytes, offsets.start + 4 * 1, 3);
    setInt32(bytes, offsets.start + 4 * 2, 0);
    expect(why(bytes, 'bad-batch')).toBe('record batch 0, column "s" (Utf8): offset 2 (0) is less than offset 1 (3); offsets must not decrease');
  });

  it("list offsets past the child are 'bad-batch'", () => {
    const { bytes, layout, fields } = fileOf('nested');
    const col = columnIn(layout.batches[0], fields, 0); // list<int32>: [[1, 2], null, [], [3]]
    setInt32(bytes, col.buffers[1].start + 4 * 4, 9);
    expect(why(bytes, 'bad-batch')).toBe('record batch 0, column "list" (List<Int32>): its last offset (9) is past the end of its child "item" (3 values)');
  });

  it("invalid UTF-8 is 'bad-batch'; positive control: tableFromIPC returns replacement characters", () => {
    const { bytes, layout, fields } = fileOf('strings');
    const [, , data] = columnIn(layout.batches[0], fields, 0).buffers;
    bytes[data.start + 1] = 0xff; // inside "héllo"
    expect(why(bytes, 'bad-batch')).toBe('record batch 0, column "s" (Utf8): its values are not valid UTF-8');
    expect([...(arrowReads(bytes) as { table: Table }).table.getChild('s')!][1]).toContain('\ufffd');
  });

  it("a buffer outside its body is 'bad-batch'; positive control: tableFromIPC reads a shorter buffer as it is", () => {
    const { bytes, layout, fields } = fileOf(wideTable(1, 4));
    const data = columnIn(layout.batches[0], fields, 0).buffers[1];
    setInt64(bytes, data.pos, layout.batches[0].block.bodyLength - 8);
    expect(why(bytes, 'bad-batch')).toBe(`record batch 0 buffer 1 (offset ${layout.batches[0].block.bodyLength - 8}, 16 bytes) lies outside its ${layout.batches[0].block.bodyLength}-byte body`);
    expect('table' in arrowReads(bytes)).toBe(true);
  });

  it("a misaligned buffer is 'bad-batch'; positive control: tableFromIPC throws a RangeError", () => {
    const { bytes, layout, fields } = fileOf(wideTable(1, 5)); // 20 bytes of values in a 24-byte body
    const data = columnIn(layout.batches[0], fields, 0).buffers[1];
    setInt64(bytes, data.pos, data.offset + 2);
    setInt64(bytes, data.pos + 8, data.length - 8);
    expect(why(bytes, 'bad-batch')).toBe(`record batch 0 buffer 1 starts at offset ${data.offset + 2}, not on an 8-byte boundary`);
    const r = arrowReads(bytes) as { error: Error };
    expect(r.error).toBeInstanceOf(RangeError);
  });

  it("union type ids that are not the union's are 'bad-batch'; positive control: tableFromIPC throws a TypeError when the cell is read", () => {
    const { bytes, layout, fields } = fileOf('unions');
    const types = columnIn(layout.batches[0], fields, 0).buffers[0];
    bytes[types.start + 1] = 3;
    expect(why(bytes, 'bad-batch')).toBe('record batch 0, column "dense" (Union<Int32 | Utf8>): value 1 has type id 3, which is not one of the union\'s');
    const t = (arrowReads(bytes) as { table: Table }).table;
    expect(() => t.getChild('dense')!.get(1)).toThrow(TypeError);
  });

  it("a compressed body is 'bad-batch': refused, never inflated", () => {
    // apache-arrow writes compressed files through a registered codec; this one only has to look
    // like LZ4 to its check, since the file is refused before anything is decompressed.
    compressionRegistry.set(CompressionType.LZ4_FRAME, { encode: (data: Uint8Array) => Uint8Array.from([4, 34, 77, 24, 0x40, 0x40, 0, ...data]) });
    try {
      const bytes = RecordBatchFileWriter.writeAll(TABLES.ints, { compressionType: CompressionType.LZ4_FRAME } as never).toUint8Array(true);
      expect(why(bytes, 'bad-batch')).toBe('record batch 0 is compressed (LZ4_FRAME); compressed Arrow files are refused, write it uncompressed');
    } finally {
      compressionRegistry.set(CompressionType.LZ4_FRAME, null as never);
    }
  });
});

describe('malformed files: dictionaries', () => {
  it("an index past the dictionary is 'bad-dictionary'; positive control: tableFromIPC reads a non-null cell as null", () => {
    const { bytes, layout, fields } = fileOf('dictionaries');
    const indices = columnIn(layout.batches[0], fields, 0).buffers[1];
    const id = layout.dictionaries[0].id;
    setInt32(bytes, indices.start + 4 * 1, 1000);
    expect(why(bytes, 'bad-dictionary')).toBe(`record batch 0, column "city" (Dictionary<Int32, Utf8>): index 1000 at row 1 is outside dictionary ${id}, which has 3 values`);
    expect([...(arrowReads(bytes) as { table: Table }).table.getChild('city')!]).toEqual(['Lyon', null, null, 'Lyon', 'Kyiv', 'Oslo']);
    setInt32(bytes, indices.start + 4 * 1, -1);
    expect(why(bytes, 'bad-dictionary')).toMatch(new RegExp(`index -1 at row 1 is outside dictionary ${id},`));
  });

  it("a dictionary batch for an id the schema does not use is 'bad-dictionary'; positive control: tableFromIPC throws a TypeError", () => {
    const { bytes, layout } = fileOf('dictionaries');
    setInt64(bytes, layout.dictionaries[1].idPos!, 42);
    expect(why(bytes, 'bad-dictionary')).toBe('dictionary batch 1 (id 42) is for dictionary id 42, which no field of the schema uses');
    expect((arrowReads(bytes) as { error: Error }).error).toBeInstanceOf(TypeError);
  });

  it("a second non-delta dictionary batch (a replacement) is 'bad-dictionary'; positive control: tableFromIPC silently replaces the first", () => {
    const { bytes, layout } = fileOf('dictionaryDelta');
    const id = layout.dictionaries[1].id;
    bytes[layout.dictionaries[1].isDeltaPos!] = 0;
    expect(why(bytes, 'bad-dictionary')).toBe(`dictionary batch 1 (id ${id}) replaces dictionary ${id}, which the Arrow file format does not allow (only deltas may follow the first)`);
    expect([...(arrowReads(bytes) as { table: Table }).table.getChild('color')!].slice(0, 4)).toEqual(['blue', 'violet', 'blue', 'blue']);
  });

  it("a delta before any definition is 'bad-dictionary'", () => {
    const { bytes, layout } = fileOf('dictionaryDelta');
    // Swap the two dictionary blocks in the footer: the delta comes first.
    const [a, b] = layout.dictionaries.map((d) => d.block.pos);
    const first = bytes.slice(a, a + 24);
    bytes.copyWithin(a, b, b + 24);
    bytes.set(first, b);
    const id = layout.dictionaries[0].id;
    expect(why(bytes, 'bad-dictionary')).toBe(`dictionary batch 0 (id ${id}) is a delta, but no dictionary batch before it defines id ${id}`);
  });
});

describe('an unforeseen failure', () => {
  it("is 'corrupt', with the cause kept, never another exception", () => {
    // Bytes whose ArrayBuffer is not 8-aligned are copied first; a getter that throws on the
    // way in is the kind of failure the catch-all turns into 'corrupt'.
    const { bytes } = fileOf('ints');
    const hostile = new Proxy(bytes, {
      get(target, key) {
        if (key === 'buffer') throw new Error('hostile getter');
        const v = Reflect.get(target, key, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const err = refused(hostile as Uint8Array, 'corrupt');
    expect(err.message).toBe('Arrow file "out.arrow" refused: it could not be decoded (Error: hostile getter)');
    expect((err.cause as Error).message).toBe('hostile getter');
  });
});

describe('fuzzing (fast-check, bounded; npm run fuzz:arrow runs long)', () => {
  it('1,000 mutated valid files are each accepted with every cell readable, or refused with an InvalidOutputError, within 250 ms', () => {
    const report = fuzzArrowValidator({ fc, validate: validateArrowFile, InvalidOutputError, runs: 1000, seed: 20250601, msLimit: 250 });
    console.log(`arrow fuzz: ${report.cases} cases, slowest ${report.maxMs.toFixed(1)} ms, outcomes ${JSON.stringify(report.outcomes)}; of the accepted, apache-arrow throws on ${report.arrowThrows} and reads different values from ${report.arrowDisagrees}`);
    expect(report.cases).toBe(1000);
    expect(report.outcomes.accepted).toBeGreaterThan(0);
    expect(Object.keys(report.outcomes).length).toBeGreaterThan(5);
    expect(report.arrowDisagrees).toBe(0);
  });

  it('a malformed file cannot crash a fresh renderer process either (the worst fuzzing cases, in a child)', () => {
    // The cases that crash apache-arrow's reader hardest, read by a separate node with the
    // validator: it must print each reason and exit 0.
    const cases: Uint8Array[] = [];
    const wide = fileOf(wideTable(100, 2));
    setInt64(wide.bytes, wide.layout.batches[0].lengthPos!, 2 ** 31 - 1);
    cases.push(wide.bytes);
    const deep = fileOf('nested');
    setInt64(deep.bytes, deep.layout.batches[0].nodes[1].pos, 2 ** 31 - 1);
    cases.push(deep.bytes);
    const script = `import { validateArrowFile } from ${CLIENT};
      const cases = ${JSON.stringify(cases.map((c) => Buffer.from(c).toString('base64')))};
      for (const c of cases) {
        try { validateArrowFile(Buffer.from(c, 'base64'), { maxBytes: 1 << 20, maxColumns: 1000, maxRows: 2 ** 31 }); console.log('accepted'); }
        catch (e) { console.log(e.reason); }
      }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['bad-batch', 'bad-batch']);
  });
});
