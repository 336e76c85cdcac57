// The child's own mount namespace: the whole filesystem read-only, a private size-capped
// /tmp and /dev/shm, nothing seen by or leaked to the host. Each with its positive control.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type SandboxLayer, type Zygote } from '../../dist/client/index.js';
import { collect } from '../helpers/index.js';

const MAIN = new URL('../fixtures/sandbox-main.mjs', import.meta.url);
const TMP_BYTES = 1 << 20;
let z: Zygote;
let hostDir: string;

beforeAll(async () => {
  z = await startZygote({ main: MAIN, dangerouslyAllowUnsandboxed: true, sandbox: { tmpBytes: TMP_BYTES } });
  // Outside /tmp, so the child's private /tmp does not hide it; world-writable, so only the
  // mount layer can stop a write.
  hostDir = mkdtempSync('/var/tmp/zygote-fs-');
  chmodSync(hostDir, 0o777);
});
afterAll(async () => {
  await z?.close();
  rmSync(hostDir, { recursive: true, force: true });
});

async function run<T>(args: unknown[], skip: SandboxLayer[] = []): Promise<T> {
  const child = await z.spawn({ args, sandbox: { dangerouslySkip: skip } });
  const [out, err, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  expect(status.code, err).toBe(0);
  return JSON.parse(out) as T;
}

describe('read-only view', () => {
  it('cannot write anywhere outside /tmp, even into a world-writable directory: EROFS', async () => {
    const target = join(hostDir, 'planted');
    expect(await run(['write', target, 10])).toEqual({ ok: false, code: 'EROFS' });
    expect(existsSync(target)).toBe(false);
  });

  it('positive control (skips mount-namespace): the same write lands on the host', async () => {
    const target = join(hostDir, 'planted-control');
    expect(await run(['write', target, 10], ['mount-namespace'])).toEqual({ ok: true, code: null });
    expect(readFileSync(target, 'utf8')).toBe('z'.repeat(10));
  });
});

describe('private /tmp', () => {
  it("does not see the host's /tmp, and what it writes there never reaches the host", async () => {
    const hostFile = join(tmpdir(), `zygote-host-visible-${process.pid}`);
    writeFileSync(hostFile, 'host');
    try {
      expect(await run(['exists', hostFile])).toBe(false);
      expect(await run(['exists', hostFile], ['mount-namespace'])).toBe(true); // positive control
      const childFile = join('/tmp', `zygote-child-wrote-${process.pid}`);
      expect(await run(['write', childFile, 100])).toEqual({ ok: true, code: null });
      expect(existsSync(childFile)).toBe(false);
    } finally {
      rmSync(hostFile, { force: true });
    }
  });

  it('filling /tmp stops at its size with ENOSPC; the host is untouched', async () => {
    const target = `/tmp/zygote-fill-${process.pid}`;
    expect(await run(['write', target, 4 * TMP_BYTES])).toEqual({ ok: false, code: 'ENOSPC' });
    expect(await run(['write', target, TMP_BYTES / 2])).toEqual({ ok: true, code: null });
    expect(existsSync(target)).toBe(false);
  });

  it('positive control (skips mount-namespace): the same large write goes to the host /tmp', async () => {
    const target = join(tmpdir(), `zygote-fill-control-${process.pid}`);
    try {
      expect(await run(['write', target, 4 * TMP_BYTES], ['mount-namespace', 'credentials'])).toEqual({ ok: true, code: null });
      expect(existsSync(target)).toBe(true);
    } finally {
      rmSync(target, { force: true });
    }
  });
});
