// native/files.cc: openat2 beneath a directory (errors like Node's own), fstat, and read-only
// mappings that are unmapped when the buffer goes (by unmapFile, or by a GC).
import { spawnSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../../dist/native/index.js';
import { ROOT } from '../helpers/index.js';

let dir: string;
let dirFd: number;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'zygote-files-'));
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'data'), 'hello, mapped world');
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(join(dir, 'outside'), 'renderer file');
  symlinkSync(join(dir, 'outside'), join(dir, 'sub', 'link'));
  const fifo = spawnSync('mkfifo', [join(dir, 'fifo')]);
  if (fifo.status !== 0) throw new Error(`mkfifo failed: ${fifo.stderr}`);
  dirFd = native.openDirectory(join(dir, 'sub'));
});
afterAll(() => {
  if (dirFd !== undefined) native.close(dirFd);
  rmSync(dir, { recursive: true, force: true });
});

/** The error fn throws (it must throw). */
function thrown(fn: () => unknown): NodeJS.ErrnoException {
  try {
    fn();
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  throw new Error('expected a throw');
}

/** Whether this process maps the file at path (/proc/self/maps names mapped files). */
function isMapped(path: string): boolean {
  return readFileSync('/proc/self/maps', 'utf8').includes(path);
}

describe('openBeneath', () => {
  it("throws errors with code, syscall and path, like Node's: ELOOP for a symlink, EXDEV out of the directory", () => {
    expect(readFileSync(join(dir, 'sub', 'link'), 'utf8')).toBe('renderer file');
    expect(thrown(() => native.openBeneath(dirFd, 'link', 'read'))).toMatchObject({
      code: 'ELOOP',
      syscall: 'openat2',
      path: 'link',
      message: "openat2 'link' failed: ELOOP (Too many levels of symbolic links)",
    });
    expect(thrown(() => native.openBeneath(dirFd, '../outside', 'read'))).toMatchObject({ code: 'EXDEV', syscall: 'openat2' });
    expect(thrown(() => native.openBeneath(dirFd, join(dir, 'outside'), 'read'))).toMatchObject({ code: 'EXDEV' });
    expect(thrown(() => native.openBeneath(dirFd, 'nope', 'read'))).toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a path with a NUL byte instead of opening what comes before it', () => {
    writeFileSync(join(dir, 'sub', 'ok'), 'ok');
    expect(thrown(() => native.openBeneath(dirFd, 'ok\0../../x', 'read')).message).toBe('openBeneath: path must not contain a NUL byte');
  });

  it("'write' creates a new file only: a planted symlink or an existing file is EEXIST, never written through", () => {
    const fd = native.openBeneath(dirFd, 'new', 'write');
    writeFileSync(fd, 'made');
    native.close(fd);
    expect(readFileSync(join(dir, 'sub', 'new'), 'utf8')).toBe('made');
    expect(thrown(() => native.openBeneath(dirFd, 'new', 'write'))).toMatchObject({ code: 'EEXIST' });
    expect(thrown(() => native.openBeneath(dirFd, 'link', 'write'))).toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(join(dir, 'outside'), 'utf8')).toBe('renderer file');
  });

  it("rejects flags other than 'read' and 'write'", () => {
    expect(thrown(() => native.openBeneath(dirFd, 'ok', 'rw' as 'read')).message).toBe("openBeneath: flags must be 'read' or 'write'");
  });
});

describe('fstatFile', () => {
  it('says what an fd is: type, size, links, owner', () => {
    const fd = openSync(join(dir, 'data'), 'r');
    const fifoFd = openSync(join(dir, 'fifo'), constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      expect(native.fstatFile(fd)).toMatchObject({ type: 'file', size: 19, nlink: 1, uid: 0 });
      expect(native.fstatFile(dirFd).type).toBe('dir');
      expect(native.fstatFile(fifoFd).type).toBe('fifo');
    } finally {
      closeSync(fd);
      closeSync(fifoFd);
    }
  });
});

describe('mmapFile', () => {
  it('maps the whole file without a copy: the bytes are the file, the pages are the file', () => {
    const path = join(dir, 'data');
    const fd = openSync(path, 'r');
    const buffer = native.mmapFile(fd);
    closeSync(fd);
    expect(Buffer.from(buffer).toString()).toBe('hello, mapped world');
    // A copy would be anonymous memory; this is the file itself, still mapped after close.
    expect(isMapped(path)).toBe(true);
    native.unmapFile(buffer);
  });

  it('maps the first length bytes if asked, and refuses a length past the end (which would SIGBUS)', () => {
    const fd = openSync(join(dir, 'data'), 'r');
    try {
      const head = native.mmapFile(fd, 5);
      expect(Buffer.from(head).toString()).toBe('hello');
      native.unmapFile(head);
      expect(thrown(() => native.mmapFile(fd, 20)).message).toBe('mmapFile: length 20 is past the end of the file (19 bytes)');
    } finally {
      closeSync(fd);
    }
  });

  it('gives an empty buffer for an empty file (mmap of 0 bytes would be EINVAL)', () => {
    const fd = openSync(join(dir, 'empty'), 'r');
    try {
      expect(native.mmapFile(fd).byteLength).toBe(0);
    } finally {
      closeSync(fd);
    }
  });

  it('refuses what is not a regular file, and a file larger than one ArrayBuffer may be', () => {
    expect(thrown(() => native.mmapFile(dirFd)).message).toBe(`mmapFile: fd ${dirFd} is a dir, not a regular file`);
    // Sparse: no disk blocks. Node would refuse the buffer after the mapping was made; the
    // addon must refuse first (Node's refusal path double-frees in node-addon-api).
    const big = join(dir, 'big');
    writeFileSync(big, '');
    truncateSync(big, 5 * 2 ** 30);
    const fd = openSync(big, 'r');
    try {
      expect(thrown(() => native.mmapFile(fd)).message).toBe('mmapFile: 5368709120 bytes is more than one ArrayBuffer may hold here (4294967296); map less with the length argument');
      const max = native.mmapFile(fd, 2 ** 32);
      expect(max.byteLength).toBe(2 ** 32);
      native.unmapFile(max);
    } finally {
      closeSync(fd);
    }
  });
});

describe('unmapFile', () => {
  it("detaches the buffer at once and unmaps it on the event loop's next turn", async () => {
    const path = join(dir, 'data');
    const fd = openSync(path, 'r');
    const buffer = native.mmapFile(fd);
    closeSync(fd);
    const view = new Uint8Array(buffer);
    expect(isMapped(path)).toBe(true);
    native.unmapFile(buffer);
    expect([buffer.byteLength, view.length]).toEqual([0, 0]);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(isMapped(path)).toBe(false);
  });

  it('refuses a buffer it did not map, and one already unmapped', () => {
    expect(thrown(() => native.unmapFile(new ArrayBuffer(8))).message).toBe('unmapFile: the buffer is not a mapping from mmapFile');
    const fd = openSync(join(dir, 'data'), 'r');
    const buffer = native.mmapFile(fd);
    closeSync(fd);
    native.unmapFile(buffer);
    expect(thrown(() => native.unmapFile(buffer)).message).toBe('unmapFile: the buffer is already detached (unmapped or transferred)');
  });

  it('a mapping nothing refers to any more is unmapped by a GC (in a node with --expose-gc)', () => {
    const path = join(dir, 'data');
    const r = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        '--input-type=module',
        '-e',
        `import fs from 'node:fs';
         import { native } from ${JSON.stringify(`${ROOT}dist/native/index.js`)};
         const mapped = () => fs.readFileSync('/proc/self/maps', 'utf8').includes(${JSON.stringify(path)});
         const fd = fs.openSync(${JSON.stringify(path)}, 'r');
         let buffer = native.mmapFile(fd);
         fs.closeSync(fd);
         const before = mapped();
         buffer = null;
         for (let i = 0; i < 5 && mapped(); i++) {
           globalThis.gc();
           await new Promise((r) => setTimeout(r, 10));
         }
         process.stdout.write(JSON.stringify({ before, after: mapped() }));`,
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(JSON.parse(r.stdout || 'null'), r.stderr).toEqual({ before: true, after: false });
  });
});
