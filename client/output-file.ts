// Reading the files a sandboxed step wrote: opened beneath their directory without following any
// link (native/files.cc), and refused unless each is a regular file with one name, within a cap.
//
// The step could write the directory, so any name in it may be a symlink or a hard link to a
// file of the renderer's, a FIFO that blocks a read for ever, a directory, or a huge file. The
// checks run on the opened fd, so nothing can be swapped in between a check and the read.
import { read } from 'node:fs';
import { promisify } from 'node:util';
import { native, type NativeFileStat } from '../native/index.js';
import { ChildOutput } from './child-output.js';
import { refuseUnknownKeys } from '../protocol/options.js';
import { InvalidOutputError, type InvalidOutputReason } from './errors.js';
import { InvalidOptionError } from '../protocol/errors.js';

const readAt = promisify(read);

/** PATH_MAX less its NUL: a longer name cannot be opened at all. */
const MAX_NAME_BYTES = 4095;

export interface OutputFileOptions {
  /** The largest file accepted, in bytes; a bigger one is refused as 'too-large'. */
  maxBytes: number;
}

/** A step's output file mapped into memory read-only, without a copy. */
export interface MappedOutputFile {
  /**
   * The file's bytes. Read-only: a write through a view of it ends this process (SIGSEGV).
   * Truncating the file while it is mapped makes reading past the new end a SIGBUS, so map
   * only files no running process can write (the step has exited, and its uid was its own).
   */
  buffer: ArrayBuffer;
  size: number;
  /** Unmaps it on the event loop's next turn instead of whenever a GC gets to it; views of
   * buffer then read as empty. Calling it again does nothing. */
  unmap(): void;
}

/** Where output files are read from: a directory's path, or a child's output filesystem (child.output). */
export type OutputDir = string | ChildOutput;

/**
 * Reads the output file `name` (a relative path such as 'out/result.arrow') from `dir`, refusing
 * it with an InvalidOutputError unless it is a regular file with one link, reached without
 * following a link or crossing a mount, of at most maxBytes. Never reads more than maxBytes,
 * even if the file grows while it is read.
 */
export async function readOutputFile(dir: OutputDir, name: string, opts: OutputFileOptions): Promise<Buffer> {
  const maxBytes = checkMaxBytes(opts, 'readOutputFile()');
  const { fd, stat } = openOutput(dir, name, maxBytes);
  try {
    return await readAtMost(fd, stat.size, maxBytes, () => refuse(typeof dir === 'string' ? dir : "the child's output", name, 'too-large', `it grew past maxBytes (${maxBytes}) while being read`));
  } finally {
    native.close(fd);
  }
}

/** Like readOutputFile, but maps the file (its size when it was opened) instead of reading it. */
export function mapOutputFile(dir: OutputDir, name: string, opts: OutputFileOptions): MappedOutputFile {
  const maxBytes = checkMaxBytes(opts, 'mapOutputFile()');
  const { fd, stat } = openOutput(dir, name, maxBytes);
  try {
    // The size checked, not the size now: the mapping never reaches past what was validated.
    const buffer = native.mmapFile(fd, stat.size);
    let mapped = true;
    const unmap = () => {
      if (mapped) native.unmapFile(buffer);
      mapped = false;
    };
    return { buffer, size: stat.size, unmap };
  } finally {
    native.close(fd);
  }
}

/** Opens and checks the file; the caller closes the fd it returns. */
function openOutput(where: OutputDir, name: string, maxBytes: number): { fd: number; stat: NativeFileStat } {
  if (typeof where !== 'string' && !(where instanceof ChildOutput)) throw new InvalidOptionError(`Expected the output directory to be a path or a child's output (child.output), got ${describe(where)}`);
  const dir = typeof where === 'string' ? where : "the child's output";
  checkName(dir, name);
  // A child's output is its fd already (O_PATH, the tmpfs's root): beneath it, no path at all.
  const dirFd = typeof where === 'string' ? native.openDirectory(where) : where.open();
  let fd: number;
  try {
    fd = native.openBeneath(dirFd, name, 'read');
  } catch (err) {
    throw refusalFor(dir, name, err);
  } finally {
    if (typeof where === 'string') native.close(dirFd);
  }
  try {
    const stat = native.fstatFile(fd);
    if (stat.type !== 'file') refuse(dir, name, 'not-regular', `it is ${TYPE_NAMES[stat.type]}, not a regular file`);
    if (stat.nlink === 0) refuse(dir, name, 'not-found', 'it was removed while being opened');
    if (stat.nlink > 1) refuse(dir, name, 'hard-link', `it has ${stat.nlink} hard links, and an output must have exactly one (another could be a file of the renderer's)`);
    if (stat.size > maxBytes) refuse(dir, name, 'too-large', `it is ${stat.size} bytes, more than maxBytes (${maxBytes})`);
    return { fd, stat };
  } catch (err) {
    native.close(fd);
    throw err;
  }
}

const TYPE_NAMES: Record<NativeFileStat['type'], string> = {
  file: 'a regular file',
  dir: 'a directory',
  fifo: 'a FIFO',
  symlink: 'a symbolic link',
  socket: 'a socket',
  char: 'a character device',
  block: 'a block device',
  unknown: 'of an unknown type',
};

/** openat2's refusals, as reasons; any other error (EACCES, EMFILE, ENOSYS) is passed on as it is. */
const OPEN_REFUSALS: Record<string, [InvalidOutputReason, string]> = {
  ENOENT: ['not-found', 'it does not exist'],
  ENOTDIR: ['not-found', 'a component of its path is not a directory'],
  ELOOP: ['symlink', 'it is a symbolic link, or a directory on its way is (outputs are opened without following links)'],
  EXDEV: ['outside', 'its path crosses a mount point, out of the directory'],
  ENXIO: ['not-regular', 'it is a socket or a device, not a regular file'],
};

function refusalFor(dir: string, name: string, err: unknown): unknown {
  const known = OPEN_REFUSALS[(err as NodeJS.ErrnoException).code ?? ''];
  if (known === undefined) return err;
  return new InvalidOutputError(message(dir, name, known[1]), known[0], name, { cause: err });
}

function refuse(dir: string, name: string, reason: InvalidOutputReason, what: string): never {
  throw new InvalidOutputError(message(dir, name, what), reason, name);
}

function message(dir: string, name: string, what: string): string {
  return `output file ${JSON.stringify(name)} in ${dir} refused: ${what}`;
}

/** A plain relative path: no absolute path, no '..', '.' or empty component, no NUL. */
function checkName(dir: string, name: string): void {
  if (typeof name !== 'string') throw new InvalidOptionError(`Expected the output file name to be a string, got ${describe(name)}`);
  const bad = (what: string) => refuse(dir, name, 'bad-name', `its name ${what}; give a relative path such as 'result.arrow' or 'out/part-1.arrow'`);
  if (name === '') bad('is empty');
  if (name.includes('\0')) bad('contains a NUL byte');
  if (name.startsWith('/')) bad('is an absolute path');
  const parts = name.split('/');
  if (parts.includes('..')) bad("has a '..' component, which leads out of the directory");
  if (parts.some((p) => p === '' || p === '.')) bad("has an empty or '.' component");
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) bad(`is longer than ${MAX_NAME_BYTES} bytes`);
}

function checkMaxBytes(opts: OutputFileOptions, where: string): number {
  if (typeof opts === 'object' && opts !== null) refuseUnknownKeys(opts, ['maxBytes'], where);
  const maxBytes = opts?.maxBytes;
  if (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new InvalidOptionError(`Expected \`maxBytes\` to be a non-negative integer, got ${describe(maxBytes)}`);
  }
  return maxBytes;
}

/**
 * Reads from offset 0 to the end, but never more than maxBytes: one read of the size fstat gave
 * plus one byte (to see the end), and more only if the file grew meanwhile.
 */
async function readAtMost(fd: number, expected: number, maxBytes: number, tooLarge: () => never): Promise<Buffer> {
  let buf = Buffer.allocUnsafe(Math.min(expected, maxBytes) + 1);
  let total = 0;
  for (;;) {
    if (total === buf.length) {
      if (total > maxBytes) tooLarge();
      const grown = Buffer.allocUnsafe(Math.min(buf.length * 2, maxBytes + 1));
      buf.copy(grown, 0, 0, total);
      buf = grown;
    }
    const { bytesRead } = await readAt(fd, buf, total, buf.length - total, total);
    if (bytesRead === 0) return buf.subarray(0, total);
    total += bytesRead;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `${JSON.stringify(v)} (string)`;
  if (typeof v === 'object') return 'an object';
  return `${String(v)} (${typeof v})`;
}
