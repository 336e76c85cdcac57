// Nothing a child writes can be executed or mapped executable: its /tmp and writable mounts are
// noexec (and Landlock grants no EXECUTE there), memfd_create is refused, and no host Unix socket
// is reachable (socket(AF_UNIX) is refused; a read-only mount would not stop connect()). Each
// attack runs in a fully sandboxed child, beside its positive control with the smallest set of
// layers skipped that lets it work.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type Mount, type SandboxLayer, type Zygote } from '../../dist/client/index.js';
import { ATTACK_ADDON_PATH } from '../native/attack.js';
import { itNeeds, landlockAbi } from '../helpers/host.js';
import { ATTACK_MAIN, collectRun, type AttackRun } from './attack-helpers.js';

let z: Zygote;
let dir: string;
let server: Server;
/**
 * Host files: a copy of the attack addon, echo, a host service's socket. The child sees them
 * read-only at /in; with the mount namespace skipped (no mounts then) at their host paths.
 */
const IN = '/in';
const ADDON = 'addon.node';
const ECHO = 'echo';
const SOCKET = 'serve.sock';

interface DlopenResult {
  ok: boolean;
  error?: string;
  memfd?: { ok: boolean; errno: string | null; value: number };
}

beforeAll(async () => {
  z = await startZygote({ main: ATTACK_MAIN, dangerouslyAllowUnsandboxed: true });
  // Not the host's /tmp (the child has a private one) and world-traversable (the checkout may be
  // in a 0700 directory): a fresh 0755 directory under /var/tmp.
  dir = mkdtempSync('/var/tmp/zygote-noexec-');
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'in'), { mode: 0o755 });
  mkdirSync(join(dir, 'out'), { mode: 0o755 });
  copyFileSync(ATTACK_ADDON_PATH, join(dir, 'in', 'addon.node'));
  copyFileSync('/usr/bin/echo', join(dir, 'in', 'echo'));
  chmodSync(join(dir, 'in', 'addon.node'), 0o644);
  chmodSync(join(dir, 'in', 'echo'), 0o755);
  // A host service's socket, world-connectable, in a directory the child gets read-only.
  server = createServer((s) => s.end('hello from the host'));
  await new Promise<void>((resolve) => server.listen(join(dir, 'in', 'serve.sock'), resolve));
  chmodSync(join(dir, 'in', 'serve.sock'), 0o777);
});
afterAll(async () => {
  await z?.close();
  await new Promise((resolve) => server?.close(resolve));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * The fixture with the named layers skipped and /in (read-only) and /out (writable) mounted, args
 * naming host files by name: ['copy-dlopen', ADDON, '/tmp'] becomes ['copy-dlopen', '/in/addon.node', '/tmp'].
 */
async function run<R>([action, file, ...rest]: [string, string, ...unknown[]], skip: SandboxLayer[] = []): Promise<AttackRun<R>> {
  const hostView = skip.includes('mount-namespace');
  const mounts: Mount[] = hostView
    ? []
    : [
        { source: join(dir, 'in'), target: IN },
        { source: join(dir, 'out'), target: '/out', writable: true },
      ];
  const args = [action, hostView ? join(dir, 'in', file) : `${IN}/${file}`, ...rest];
  return collectRun<R>(await z.spawn({ args, mounts, sandbox: { dangerouslySkip: skip } }));
}

function expectRefusedMapping(r: AttackRun<DlopenResult>): void {
  expect(r.status, r.stderr).toMatchObject({ code: 0, reason: 'exit' });
  expect(r.result?.ok).toBe(false);
  // glibc's words for an mmap(PROT_EXEC) refused by a noexec mount (EPERM).
  expect(r.result?.error).toMatch(/failed to map segment from shared object/);
}

describe('a shared object the child wrote', () => {
  it('positive control: the same addon dlopens from the read-only mount it was copied from', async () => {
    const r = await run<DlopenResult>(['dlopen', ADDON]);
    expect(r.result, r.stderr).toEqual({ ok: true });
  });

  it('copied into /tmp, fails to load: the mmap with PROT_EXEC is refused (noexec)', async () => {
    expectRefusedMapping(await run<DlopenResult>(['copy-dlopen', ADDON, '/tmp']));
  });

  it('copied into a writable mount, fails to load the same way', async () => {
    expectRefusedMapping(await run<DlopenResult>(['copy-dlopen', ADDON, '/out']));
  });

  it("positive control (skips mount-namespace): copied into the host's /tmp, where nothing is noexec, it loads", async () => {
    const r = await run<DlopenResult>(['copy-dlopen', ADDON, '/tmp'], ['mount-namespace']);
    expect(r.result, r.stderr).toEqual({ ok: true });
  });

  it('copied into a memfd: memfd_create is refused (seccomp), so no /proc/self/fd/N to dlopen', async () => {
    const r = await run<DlopenResult>(['memfd-dlopen', ADDON]);
    expect(r.status, r.stderr).toMatchObject({ code: 0, reason: 'exit' });
    expect(r.result).toEqual({ memfd: { ok: false, errno: 'EPERM', value: -1 } });
  });

  it('positive control (skips seccomp): the memfd copy loads, which no noexec mount would have stopped', async () => {
    const r = await run<DlopenResult>(['memfd-dlopen', ADDON], ['seccomp']);
    expect(r.result, r.stderr).toMatchObject({ ok: true, memfd: { ok: true } });
  });
});

describe('a program the child wrote', () => {
  it('execve fails with EPERM in the full sandbox (seccomp)', async () => {
    const r = await run(['copy-exec', ECHO, '/tmp', 'ran']);
    expect(r.result, r.stderr).toEqual({ ok: false, errno: 'EPERM', value: -1 });
  });

  it('with seccomp skipped, execve of the copy in /tmp fails with EACCES (noexec)', async () => {
    const r = await run(['copy-exec', ECHO, '/tmp', 'ran'], ['seccomp']);
    expect(r.result, r.stderr).toEqual({ ok: false, errno: 'EACCES', value: -1 });
  });

  itNeeds(landlockAbi(1), "with seccomp and the mount namespace skipped, execve of the copy in the host's /tmp fails with EACCES (Landlock grants EXECUTE nowhere)", async () => {
    const r = await run(['copy-exec', ECHO, '/tmp', 'ran'], ['seccomp', 'mount-namespace']);
    expect(r.result, r.stderr).toEqual({ ok: false, errno: 'EACCES', value: -1 });
  });

  it('positive control (skips seccomp, mount-namespace and landlock): the copy runs', async () => {
    const r = await run(['copy-exec', ECHO, '/tmp', 'ran'], ['seccomp', 'mount-namespace', 'landlock']);
    expect(r.stdout, r.stderr).toBe('ran\n');
    expect(r.status).toMatchObject({ code: 0, reason: 'exit' });
  });
});

describe("a host service's Unix socket in a directory the child sees", () => {
  it('cannot be reached: socket(AF_UNIX) is refused with EPERM (seccomp)', async () => {
    const r = await run<{ ok: boolean; code?: string }>(['unix-connect', SOCKET]);
    expect(r.result, r.stderr).toEqual({ ok: false, code: 'EPERM' });
  });

  it('positive control (skips seccomp): the same child connects through the read-only mount and reads the greeting', async () => {
    const r = await run<{ ok: boolean; data?: string }>(['unix-connect', SOCKET], ['seccomp']);
    expect(r.result, r.stderr).toEqual({ ok: true, data: 'hello from the host' });
  });
});
