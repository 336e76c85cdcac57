// A zygote's configuration (main, preloads, the children's env, the socket and allowed uids)
// reaches it in a sealed memfd named by `--config-fd=N`, never on argv, where ps and (through
// the fork) every child's /proc/1/cmdline would show it; the zygote reads it once and closes it.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../../dist/native/index.js';
import { startZygote, type Zygote } from '../../dist/index.js';
import { CLI, ECHO_MAIN, waitFor } from '../helpers/index.js';

const O_CLOEXEC = 0o2000000;

/** The targets of a process's open fds. */
function fdTargets(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

describe('sealedDataFd', () => {
  it('holds the bytes from position 0, refuses any change, and is inherited across exec only when asked', () => {
    const closing = native.sealedDataFd(Buffer.from('x'), false);
    const flagsOf = (fd: number) => Number.parseInt(/^flags:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
    expect(flagsOf(closing) & O_CLOEXEC).toBe(O_CLOEXEC);
    native.close(closing);
    const fd = native.sealedDataFd(Buffer.from('encoded config'), true);
    try {
      expect(readFileSync(fd, 'utf8')).toBe('encoded config');
      expect(() => writeSync(fd, 'tampered')).toThrow(/EPERM/);
      expect(flagsOf(fd) & O_CLOEXEC).toBe(0);
      expect(readlinkSync(`/proc/self/fd/${fd}`)).toMatch(/^\/memfd:zygote-config/);
    } finally {
      native.close(fd);
    }
  });
});

describe('a zygote started by startZygote', () => {
  let z: Zygote;
  beforeAll(async () => {
    z = await startZygote({ main: ECHO_MAIN, env: { ZYGOTE_TEST_MARK: 'config-mark' } });
  });
  afterAll(async () => {
    await z?.close();
  });

  it('read its config from the memfd and closed it: no fd of it is left to inherit', () => {
    expect(fdTargets(z.pid).filter((t) => t.includes('zygote-config'))).toEqual([]);
  });

  it('shows no config on its argv', () => {
    const argv = readFileSync(`/proc/${z.pid}/cmdline`, 'utf8');
    expect(argv).not.toContain('config-mark');
    expect(argv).not.toMatch(/[A-Za-z0-9+/=]{200}/);
  });
});

describe('zygote serve', () => {
  it('passes its config across execve in the memfd, which the zygote closes; its argv shows none of it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zygote-config-fd-'));
    const socket = join(dir, 'z.sock');
    const cp = spawn(process.execPath, [CLI, 'serve', '--quiet', '--socket', socket, '--main', fileURLToPath(ECHO_MAIN), '--env', 'ZYGOTE_TEST_MARK=config-mark'], { stdio: 'ignore' });
    try {
      await waitFor(() => existsSync(socket), 20_000, 'the socket');
      // Same pid: serve became the zygote with execve.
      expect(fdTargets(cp.pid!).filter((t) => t.includes('zygote-config'))).toEqual([]);
      const argv = readFileSync(`/proc/${cp.pid}/cmdline`, 'utf8');
      expect(argv).not.toContain('config-mark');
      expect(argv.replace(/\0+$/, '')).toBe(`zygote serve ${socket}`);
    } finally {
      cp.kill('SIGTERM');
      await new Promise((resolve) => cp.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
