// A step maps a 2 GiB file under a 256 MiB memory limit and reads every page: a read-only
// mapping's pages are page cache the kernel drops and re-reads within the cgroup's limit, not
// the step's own memory. The positive control copies the same file into Buffers under the same
// limit and is OOM-killed.
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startZygote, type Zygote } from '../../dist/client/index.js';
import { collect } from '../helpers/index.js';
import { describeNeeds, freeSpace } from '../helpers/host.js';

const MAIN = new URL('../fixtures/mmap-main.mjs', import.meta.url);
const FILE_BYTES = 2 * 2 ** 30;
const MEMORY_LIMIT = 256 * 2 ** 20;
const CHUNK = 64 << 20;
const PAGE = 4096;
// Not the host's /tmp (the child has a private one) and not the checkout (CI's is in a 0700
// directory the sandboxed uid cannot traverse): /var/tmp, in a fresh 0755 directory.
const SCRATCH = '/var/tmp';
const NEEDED_BYTES = 5 * 2 ** 30;


/** The first byte of page p of the file: never 0, so a page that reads as zeros shows in the sum. */
const pageByte = (p: number) => (p % 251) + 1;
let expectedSum = 0;
for (let p = 0; p < FILE_BYTES / PAGE; p++) expectedSum += pageByte(p);

describeNeeds(freeSpace(SCRATCH, NEEDED_BYTES), 'reading a 2 GiB file under a 256 MiB memory limit', () => {
  let z: Zygote;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(SCRATCH, 'zygote-mmap-'));
    chmodSync(dir, 0o755);
    file = join(dir, 'big.bin');
    // A real file of non-zero data, not a sparse one: a hole maps the shared zero page and
    // would cost nothing to read, mapped or not.
    const chunk = Buffer.alloc(CHUNK, 0x5a);
    const fd = openSync(file, 'w', 0o644);
    try {
      for (let c = 0; c < FILE_BYTES / CHUNK; c++) {
        for (let i = 0; i < CHUNK / PAGE; i++) chunk[i * PAGE] = pageByte(c * (CHUNK / PAGE) + i);
        writeSync(fd, chunk);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // Drop the file's (now clean) pages from the page cache: the child's reads then bring
    // them in charged to its own cgroup, which must reclaim them to stay within its limit,
    // instead of finding them charged to this process.
    const drop = spawnSync('python3', ['-c', 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)', file], { encoding: 'utf8' });
    if (drop.status !== 0) throw new Error(`posix_fadvise(DONTNEED) through python3 failed: ${drop.stderr || drop.error}`);
    z = await startZygote({ main: MAIN });
  }, 180_000);
  afterAll(async () => {
    await z?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function run(action: string) {
    // The file's directory is mounted read-only into the child's root at the same path.
    const child = await z.spawn({ args: [action, file], mounts: [{ source: dirname(file), target: dirname(file) }], limits: { memoryBytes: MEMORY_LIMIT, wallTimeMs: 120_000 } });
    const [stdout, stderr, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    return { stdout, stderr, status };
  }

  it('mapped with mmapFile, every page is read and the step exits normally', async () => {
    const { stdout, stderr, status } = await run('map-sum');
    expect(status, stderr).toMatchObject({ code: 0, reason: 'exit' });
    expect(JSON.parse(stdout)).toEqual({ size: FILE_BYTES, sum: expectedSum });
    // The pages came and went: it never held the whole file resident (about 280 MiB at peak
    // here). Had the pages stayed cached, charged to this process, it would be all 2 GiB.
    expect(status.maxRssBytes).toBeLessThan(FILE_BYTES / 2);
  }, 150_000);

  it("positive control: copied into Buffers under the same limit, the step is OOM-killed ('oom')", async () => {
    const { stdout, status } = await run('copy-sum');
    expect(status).toMatchObject({ reason: 'oom', signal: 'SIGKILL' });
    expect(stdout).toBe('');
  }, 150_000);
});
