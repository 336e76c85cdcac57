// Output files: what a step leaves in its directory is read only if it is a plain regular file
// with one link, inside the directory, within the cap. Each trap sits beside a positive control
// showing that a plain fs read would have fallen into it.
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOutputError, mapOutputFile, readOutputFile, type InvalidOutputReason } from '../../dist/client/index.js';
import { fdsOf, ROOT } from '../helpers/index.js';

const SECRET = 'renderer secret';
const MAX = 1 << 20;
let root: string;
let out: string;
let secretFile: string;
let socketServer: Server;

beforeAll(async () => {
  // root/secret.txt and root/secrets/key are the renderer's; root/out is the step's directory.
  root = mkdtempSync(join(tmpdir(), 'zygote-output-'));
  out = join(root, 'out');
  mkdirSync(join(out, 'sub'), { recursive: true });
  mkdirSync(join(root, 'secrets'));
  secretFile = join(root, 'secret.txt');
  writeFileSync(secretFile, SECRET);
  writeFileSync(join(root, 'secrets', 'key'), SECRET);
  writeFileSync(join(root, 'x'), SECRET);
  writeFileSync(join(out, 'result.txt'), 'the result');
  writeFileSync(join(out, 'sub', 'part-1.txt'), 'part one');
  writeFileSync(join(out, 'empty'), '');
  writeFileSync(join(out, 'exactly-1k'), Buffer.alloc(1024, 0x61));
  writeFileSync(join(out, 'over-1k'), Buffer.alloc(1025, 0x61));
  symlinkSync(secretFile, join(out, 'link'));
  symlinkSync(join(root, 'secrets'), join(out, 'dirlink'));
  linkSync(secretFile, join(out, 'hardlink'));
  const fifo = spawnSync('mkfifo', [join(out, 'fifo')]);
  if (fifo.status !== 0) throw new Error(`mkfifo failed: ${fifo.stderr}`);
  socketServer = createServer();
  await new Promise<void>((resolve) => socketServer.listen(join(out, 'socket'), resolve));
});
afterAll(async () => {
  await new Promise((r) => socketServer?.close(r));
  rmSync(root, { recursive: true, force: true });
});

/** Both readOutputFile and mapOutputFile refuse name for reason; returns the error. */
async function refused(name: string, reason: InvalidOutputReason, maxBytes = MAX): Promise<InvalidOutputError> {
  const err = await readOutputFile(out, name, { maxBytes }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidOutputError);
  expect((err as InvalidOutputError).reason).toBe(reason);
  expect((err as InvalidOutputError).file).toBe(name);
  let mapErr: unknown = null;
  try {
    mapOutputFile(out, name, { maxBytes }).unmap();
  } catch (e) {
    mapErr = e;
  }
  expect(mapErr).toBeInstanceOf(InvalidOutputError);
  expect((mapErr as InvalidOutputError).message).toBe((err as InvalidOutputError).message);
  return err as InvalidOutputError;
}

/** Runs an ES module in a fresh node, killed after timeoutMs: for calls that could block. */
function runNode(source: string, timeoutMs: number) {
  return spawnSync(process.execPath, ['--input-type=module', '-e', source], { encoding: 'utf8', timeout: timeoutMs });
}

const CLIENT = JSON.stringify(`${ROOT}dist/client/index.js`);

describe('a plain output file', () => {
  it('is read whole and mapped with the same bytes, at the top or in a subdirectory', async () => {
    expect((await readOutputFile(out, 'result.txt', { maxBytes: MAX })).toString()).toBe('the result');
    expect((await readOutputFile(out, 'sub/part-1.txt', { maxBytes: MAX })).toString()).toBe('part one');
    const mapped = mapOutputFile(out, 'result.txt', { maxBytes: MAX });
    expect(mapped.size).toBe(10);
    expect(Buffer.from(mapped.buffer).toString()).toBe('the result');
    mapped.unmap();
    mapped.unmap();
    expect(mapped.buffer.byteLength).toBe(0);
  });

  it('may be exactly maxBytes long, or empty', async () => {
    expect((await readOutputFile(out, 'exactly-1k', { maxBytes: 1024 })).length).toBe(1024);
    expect(mapOutputFile(out, 'exactly-1k', { maxBytes: 1024 }).size).toBe(1024);
    expect((await readOutputFile(out, 'empty', { maxBytes: 0 })).length).toBe(0);
    const empty = mapOutputFile(out, 'empty', { maxBytes: 0 });
    expect([empty.size, empty.buffer.byteLength]).toEqual([0, 0]);
  });
});

describe('refused outputs', () => {
  it("a symlink to a renderer file is refused as 'symlink'", async () => {
    // Positive control: a plain read follows the link to the secret.
    expect(readFileSync(join(out, 'link'), 'utf8')).toBe(SECRET);
    const err = await refused('link', 'symlink');
    expect(err.message).toBe(`output file "link" in ${out} refused: it is a symbolic link, or a directory on its way is (outputs are opened without following links)`);
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ELOOP');
  });

  it('a symlink in a middle component of the path is refused too', async () => {
    expect(readFileSync(join(out, 'dirlink', 'key'), 'utf8')).toBe(SECRET);
    await refused('dirlink/key', 'symlink');
  });

  it("a hard link to a renderer file is refused as 'hard-link'", async () => {
    expect(readFileSync(join(out, 'hardlink'), 'utf8')).toBe(SECRET);
    const err = await refused('hardlink', 'hard-link');
    expect(err.message).toBe(`output file "hardlink" in ${out} refused: it has 2 hard links, and an output must have exactly one (another could be a file of the renderer's)`);
  });

  it("a FIFO is refused as 'not-regular' at once, without waiting for a writer", () => {
    // In a separate node, bounded: a blocking open would hang this worker beyond any test timeout.
    const r = runNode(
      `import { readOutputFile, mapOutputFile } from ${CLIENT};
       const reasons = [];
       await readOutputFile(${JSON.stringify(out)}, 'fifo', { maxBytes: 1024 }).catch((e) => reasons.push(e.reason));
       try { mapOutputFile(${JSON.stringify(out)}, 'fifo', { maxBytes: 1024 }); } catch (e) { reasons.push(e.reason); }
       process.stdout.write(JSON.stringify(reasons));`,
      10_000,
    );
    expect(r.signal, r.stderr).toBeNull();
    expect(JSON.parse(r.stdout)).toEqual(['not-regular', 'not-regular']);
  });

  it('positive control: a plain read of that FIFO blocks (and is killed by the timeout)', () => {
    const r = runNode(`import fs from 'node:fs'; fs.readFileSync(${JSON.stringify(join(out, 'fifo'))});`, 1000);
    expect(r.signal).toBe('SIGTERM');
  });

  it("a directory and a socket are refused as 'not-regular'", async () => {
    expect((await refused('sub', 'not-regular')).message).toBe(`output file "sub" in ${out} refused: it is a directory, not a regular file`);
    await refused('socket', 'not-regular');
  });

  it("a file over maxBytes is refused as 'too-large', naming both sizes", async () => {
    const err = await refused('over-1k', 'too-large', 1024);
    expect(err.message).toBe(`output file "over-1k" in ${out} refused: it is 1025 bytes, more than maxBytes (1024)`);
  });

  it("a missing file is refused as 'not-found'", async () => {
    expect((await refused('missing', 'not-found')).message).toBe(`output file "missing" in ${out} refused: it does not exist`);
    await refused('result.txt/x', 'not-found');
  });

  it("names that are not plain relative paths are refused as 'bad-name', saying what is wrong", async () => {
    // Positive control: '../x' and the absolute path really name readable files.
    expect(readFileSync(join(out, '../x'), 'utf8')).toBe(SECRET);
    expect(readFileSync(secretFile, 'utf8')).toBe(SECRET);
    const why = async (name: string) => (await refused(name, 'bad-name')).message.replace(`output file ${JSON.stringify(name)} in ${out} refused: its name `, '');
    const hint = "; give a relative path such as 'result.arrow' or 'out/part-1.arrow'";
    expect(await why('../x')).toBe(`has a '..' component, which leads out of the directory${hint}`);
    expect(await why('sub/../../x')).toBe(`has a '..' component, which leads out of the directory${hint}`);
    expect(await why(secretFile)).toBe(`is an absolute path${hint}`);
    expect(await why('result.txt\0.png')).toBe(`contains a NUL byte${hint}`);
    expect(await why('')).toBe(`is empty${hint}`);
    expect(await why('sub//part-1.txt')).toBe(`has an empty or '.' component${hint}`);
    expect(await why('./result.txt')).toBe(`has an empty or '.' component${hint}`);
    expect(await why('a'.repeat(4096))).toBe(`is longer than 4095 bytes${hint}`);
  });

  it("a path across a mount point is refused as 'outside'", () => {
    // A mount inside the directory, in a throwaway mount namespace so nothing is left mounted.
    const mnt = join(root, 'mnt-out');
    mkdirSync(join(mnt, 'inner'), { recursive: true });
    const script = `import { readOutputFile } from ${CLIENT};
      await readOutputFile(${JSON.stringify(mnt)}, 'inner/f', { maxBytes: 1024 }).then((b) => console.log(JSON.stringify(b.toString())), (e) => console.log(JSON.stringify(e.reason)));`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs tmpfs "$1/inner" && echo mounted > "$1/inner/f" && cat "$1/inner/f" && exec "$2" --input-type=module -e "$3"`, 'sh', mnt, process.execPath, script], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    // Positive control (first line): the file is there, readable through the mount point.
    expect(r.stdout.split('\n').slice(0, 2), r.stderr).toEqual(['mounted', '"outside"']);
  });

  it('rejects a maxBytes that is not a non-negative integer, naming it', async () => {
    await expect(readOutputFile(out, 'result.txt', { maxBytes: -1 })).rejects.toThrow('Expected `maxBytes` to be a non-negative integer, got -1 (number)');
    expect(() => mapOutputFile(out, 'result.txt', { maxBytes: 1.5 })).toThrow('Expected `maxBytes` to be a non-negative integer, got 1.5 (number)');
  });
});

describe('file descriptors', () => {
  // (No FIFO here: a regression that blocked on it would hang this worker; the FIFO test runs apart.)
  it('are all closed again after 200 refused opens, reads and maps', async () => {
    const names: [string, InvalidOutputReason][] = [
      ['link', 'symlink'],
      ['dirlink/key', 'symlink'],
      ['hardlink', 'hard-link'],
      ['socket', 'not-regular'],
      ['sub', 'not-regular'],
      ['over-1k', 'too-large'],
      ['missing', 'not-found'],
      ['../x', 'bad-name'],
    ];
    const before = fdsOf(process.pid);
    for (let i = 0; i < 200; i++) {
      const [name, reason] = names[i % names.length];
      const err = await readOutputFile(out, name, { maxBytes: 1024 }).catch((e: InvalidOutputError) => e);
      expect(err).toMatchObject({ reason });
      expect(() => mapOutputFile(out, name, { maxBytes: 1024 })).toThrow(InvalidOutputError);
    }
    for (let i = 0; i < 20; i++) {
      await readOutputFile(out, 'result.txt', { maxBytes: 1024 });
      mapOutputFile(out, 'result.txt', { maxBytes: 1024 }).unmap();
    }
    expect([...fdsOf(process.pid).keys()]).toEqual([...before.keys()]);
  });
});
