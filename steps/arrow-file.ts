// Arrow tables on disk: validating a step's output Arrow IPC file before the renderer trusts it,
// mapping a trusted input file into a step without a copy, and writing a table as a new file.
//
// A step's output is hostile input. apache-arrow's reader trusts the offsets, lengths and indices
// in a file: a crafted one yields views of the wrong bytes, garbage values, or an allocation of
// gigabytes (a batch that declares 2^31 rows) long after it was "read". So the footer, each
// message and the schema are parsed here with a bounds-checked flatbuffer reader
// (steps/arrow/flatbuffer.ts), every buffer is checked against what its layout and declared
// length need, and the Table is built from those checked views (apache-arrow's makeData), never
// by apache-arrow's reader. The work is linear in the file's size, and bounded by the caps.
import { closeSync, constants, fstatSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { Table } from 'apache-arrow';
import { writeTableToFd } from './arrow/fd-sink.js';
import { DEFAULT_ARROW_CAPS } from './arrow/caps.js';
import { native } from '../native/index.js';
import { ArrowRefusal, resolveCaps, type ArrowCaps, type ResolvedArrowCaps } from './arrow/caps.js';
import { decodeArrowFile } from './arrow/file.js';
import type { CheckMode } from './arrow/batch.js';
import { InvalidOutputError } from '../client/errors.js';
import { mapOutputFile, type OutputDir } from '../client/output-file.js';
import { InvalidOptionError } from '../protocol/errors.js';

export { DEFAULT_ARROW_CAPS, type ArrowCaps } from './arrow/caps.js';

/** A validated Arrow table over a mapped file. */
export interface ArrowOutput {
  /**
   * The table, viewing the mapped file (no copy). Valid only until unmap(): after it every buffer
   * of the table reads as empty, so values read afterwards are wrong (undefined, empty), never
   * another file's bytes. Copy out what must outlive the mapping.
   */
  table: Table;
  /** The file's size. */
  bytes: number;
  /** Unmaps the file (on the event loop's next turn); calling it again does nothing. */
  unmap(): void;
}

/**
 * Opens the output file `name` beneath `dir` (a path, or a child's output filesystem:
 * child.output) as mapOutputFile does (no link, FIFO or file over
 * caps.maxBytes), maps it, and validates it as an Arrow IPC file within caps. Anything wrong is
 * an InvalidOutputError whose reason says what ('not-arrow', 'truncated', 'bad-footer',
 * 'bad-schema', 'too-many-columns', 'too-many-rows', 'too-many-batches', 'too-many-values',
 * 'bad-batch', 'bad-dictionary', 'corrupt', or one of mapOutputFile's) and whose message says where.
 */
export function readArrowOutput(dir: OutputDir, name: string, caps: ArrowCaps): ArrowOutput {
  const resolved = resolveCaps(caps);
  const mapped = mapOutputFile(dir, name, { maxBytes: resolved.maxBytes });
  try {
    const where = typeof dir === 'string' ? dir : "the child's output";
    const table = decode(new Uint8Array(mapped.buffer), resolved, 'full', `output file ${JSON.stringify(name)} in ${where} refused: `, name);
    return { table, bytes: mapped.size, unmap: mapped.unmap };
  } catch (err) {
    mapped.unmap();
    throw err;
  }
}

/**
 * Validates bytes as an Arrow IPC file within caps and returns the table, which views bytes (no
 * copy; bytes not 8-byte aligned in their ArrayBuffer are copied once). Refusals are
 * InvalidOutputErrors as readArrowOutput's, with `file` set to the name given here.
 */
export function validateArrowFile(bytes: Uint8Array, caps: ArrowCaps, file = ''): Table {
  if (!(bytes instanceof Uint8Array)) throw new InvalidOptionError(`Expected the Arrow file's bytes to be a Uint8Array, got ${bytes === null ? 'null' : typeof bytes}`);
  const resolved = resolveCaps(caps);
  return decode(bytes, resolved, 'full', file === '' ? 'Arrow file refused: ' : `Arrow file ${JSON.stringify(file)} refused: `, file);
}

/** A trusted Arrow file mapped read-only into this process. */
export interface MappedArrowFile {
  /** The table, viewing the mapping (no copy); valid only until unmap(). */
  table: Table;
  bytes: number;
  unmap(): void;
}

/**
 * Maps an Arrow IPC file the renderer wrote (a step's input) and builds its table over the
 * mapping, without copying a byte: the pages are the kernel's page cache, shared and clean, so
 * they do not count as this process's anonymous memory. Its metadata and buffer bounds are
 * checked (a malformed file is an InvalidOutputError, never a read outside the mapping), but not
 * its values, so the time to the first row does not grow with the file.
 */
export function mapArrowFile(path: string): MappedArrowFile {
  if (typeof path !== 'string') throw new InvalidOptionError(`Expected the Arrow file's path to be a string, got ${typeof path}`);
  // O_NONBLOCK: a FIFO at the path cannot block the open (mmapFile then refuses it: not a regular file).
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  let buffer: ArrayBuffer;
  try {
    buffer = native.mmapFile(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
  let mapped = true;
  const unmap = () => {
    if (mapped && buffer.byteLength > 0) native.unmapFile(buffer);
    mapped = false;
  };
  try {
    const caps: ResolvedArrowCaps = { maxBytes: buffer.byteLength, maxColumns: Number.MAX_SAFE_INTEGER, maxRows: Number.MAX_SAFE_INTEGER, maxBatches: Number.MAX_SAFE_INTEGER, maxFields: Number.MAX_SAFE_INTEGER, maxDepth: 64, maxValues: Number.MAX_SAFE_INTEGER };
    const table = decode(new Uint8Array(buffer), caps, 'structure', `input file ${JSON.stringify(path)} refused: `, path);
    return { table, bytes: buffer.byteLength, unmap };
  } catch (err) {
    unmap();
    throw err;
  }
}

/**
 * Checks what may be written as an Arrow IPC file: a Table from this package's apache-arrow (one
 * built by another copy, a second install or a linked package, passes `instanceof` but
 * serializes to a corrupt file through this copy's writer, so it is refused with what to do),
 * or bytes that are an Arrow IPC file in full (checked with the default caps). Throws an
 * InvalidOptionError naming `what` otherwise; nothing is written.
 */
export function checkArrowInput(input: Table | Uint8Array, what = 'the table'): void {
  if (input instanceof Uint8Array) {
    try {
      validateArrowFile(input, DEFAULT_ARROW_CAPS);
    } catch (err) {
      if (!(err instanceof InvalidOutputError)) throw err;
      throw new InvalidOptionError(`Expected ${what} to be the bytes of an Arrow IPC file: ${err.message}`, { cause: err });
    }
    return;
  }
  if (Object.getPrototypeOf(input) !== Table.prototype) {
    const kind = input === null || typeof input !== 'object' ? String(input) : `an object of ${(input as object).constructor?.name ?? 'unknown'} not from this package's apache-arrow`;
    throw new InvalidOptionError(
      `Expected ${what} to be an apache-arrow Table from the copy zygote uses, or Arrow IPC file bytes (a Uint8Array), got ${kind}. ` +
        "A Table from another apache-arrow install cannot be written by this one: pass tableToIPC(table, 'file') from your own copy instead, or import apache-arrow from the same install as zygote.",
    );
  }
}

/**
 * Writes a checked input (checkArrowInput) to fd as an Arrow IPC file: bytes as they are, a
 * Table streamed piece by piece (arrow/fd-sink.ts: never joined into one buffer first).
 * Returns the bytes written.
 */
export function writeArrowFd(fd: number, input: Table | Uint8Array): number {
  if (!(input instanceof Uint8Array)) return writeTableToFd(fd, input);
  for (let off = 0; off < input.length; ) off += writeSync(fd, input, off, input.length - off);
  return input.length;
}

/**
 * Writes a table (see checkArrowInput) as a new Arrow IPC file at path: created exclusively (an
 * existing file, or a symlink at path, is an EEXIST error, never overwritten or followed), mode
 * 0644 less the umask, streamed (writeArrowFd). A failed write removes the partial file.
 */
export function writeArrowFile(path: string, table: Table | Uint8Array): void {
  checkArrowInput(table);
  const fd = openSync(path, 'wx', 0o644);
  try {
    writeArrowFd(fd, table);
  } catch (err) {
    closeSync(fd);
    unlinkSync(path);
    throw err;
  }
  closeSync(fd);
}

/** Runs the decoder; every failure becomes an InvalidOutputError, an unforeseen one 'corrupt'. */
function decode(bytes: Uint8Array, caps: ResolvedArrowCaps, mode: CheckMode, prefix: string, file: string): Table {
  // Typed views need their element alignment, and buffers are 8-aligned within the file.
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes);
  try {
    return decodeArrowFile(aligned, caps, mode);
  } catch (err) {
    if (err instanceof ArrowRefusal) throw new InvalidOutputError(prefix + err.message, err.reason, file);
    // A case the checks above did not foresee: still a refusal, never a crash of the caller.
    const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    throw new InvalidOutputError(`${prefix}it could not be decoded (${what})`, 'corrupt', file, { cause: err });
  }
}
