// Sandbox attacks on identity and files: becoming root again, root's files, a setuid-root
// binary, core dumps. Each attack runs in a fully sandboxed child and is stopped, asserting
// exactly how; its positive control runs the same attack with the smallest set of layers
// skipped that makes it work (named in the test), so a pass means the layer stopped it.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type SandboxLayer, type Zygote } from '../../dist/client/index.js';
import { O_RDONLY, type IdsResult, type ReadResult } from '../native/attack.js';
import { ATTACK_MAIN, attackIn, expectAnswered, expectErrno, expectOk } from './attack-helpers.js';
import { itNeeds, sysctl } from '../helpers/host.js';

let z: Zygote;
/** A root-owned 0755 directory the test writes into; children may look but not write. */
let dir: string;
let secretFile: string;
let rootFile: string;
let setuidId: string;

const SECRET = 'only root may read this\n';
const ROOT_TEXT = 'root wrote this\n';

beforeAll(async () => {
  z = await startZygote({ main: ATTACK_MAIN, dangerouslyAllowUnsandboxed: true });
  dir = mkdtempSync(join(tmpdir(), 'zygote-attacks-files-'));
  chmodSync(dir, 0o755); // so only the files' own modes stand in the way
  secretFile = join(dir, 'secret');
  writeFileSync(secretFile, SECRET, { mode: 0o600 });
  rootFile = join(dir, 'root-owned');
  writeFileSync(rootFile, ROOT_TEXT, { mode: 0o644 });
  // A setuid-root copy of id(1): owned by root (the test runs as root), mode 4755.
  setuidId = join(dir, 'id');
  copyFileSync('/usr/bin/id', setuidId);
  chmodSync(setuidId, 0o4755);
});
afterAll(async () => {
  await z?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('becoming root again', () => {
  it('setuid(0) and setgid(0) fail with EPERM (the seccomp filter)', async () => {
    expectErrno(await attackIn(z, ['setuid', 0]), 'EPERM');
    expectErrno(await attackIn(z, ['setgid', 0]), 'EPERM');
  });

  it('with seccomp skipped, setuid(0) and setgid(0) still fail with EPERM and the ids stay 65534 (the uid drop and the empty capability sets)', async () => {
    const run = await attackIn<[unknown, unknown, IdsResult, IdsResult]>(z, ['calls', ['setuid', 0], ['setgid', 0], ['getresuid'], ['getresgid']], ['seccomp']);
    expectAnswered(run);
    const [setuid, setgid, uids, gids] = run.result!;
    expect(setuid).toEqual({ ok: false, errno: 'EPERM', value: -1 });
    expect(setgid).toEqual({ ok: false, errno: 'EPERM', value: -1 });
    expect(uids.ids).toEqual([65534, 65534, 65534]);
    expect(gids.ids).toEqual([65534, 65534, 65534]);
  });

  it('positive control (skips seccomp and credentials): setuid(0) and setgid(0) succeed', async () => {
    const run = await attackIn<[unknown, unknown, IdsResult]>(z, ['calls', ['setuid', 0], ['setgid', 0], ['getresuid']], ['seccomp', 'credentials']);
    expectAnswered(run);
    const [setuid, setgid, uids] = run.result!;
    expect(setuid).toEqual({ ok: true, errno: null, value: 0 });
    expect(setgid).toEqual({ ok: true, errno: null, value: 0 });
    expect(uids.ids).toEqual([0, 0, 0]);
  });
});

describe("root's files", () => {
  it('cannot read a root-only 0600 file: EACCES (credentials)', async () => {
    const run = await attackIn<ReadResult>(z, ['read_proc_file', secretFile]);
    expectAnswered(run);
    expect(run.result).toEqual({ ok: false, errno: 'EACCES', value: -1, text: '' });
  });

  it('positive control (skips credentials): the same child reads the file as its owner, root', async () => {
    const run = await attackIn<ReadResult>(z, ['read_proc_file', secretFile], ['credentials']);
    expectOk(run);
    expect(run.result!.text).toBe(SECRET);
  });

  it('cannot write a root-owned 0644 file nor create one in a root-owned 0755 directory: EACCES (credentials)', async () => {
    expectErrno(await attackIn(z, ['write_file', rootFile, 'overwritten']), 'EACCES');
    expectErrno(await attackIn(z, ['write_file', join(dir, 'planted'), 'planted']), 'EACCES');
    expect(readFileSync(rootFile, 'utf8')).toBe(ROOT_TEXT);
    expect(existsSync(join(dir, 'planted'))).toBe(false);
  });

  it('positive control (skips credentials): the same child overwrites the file', async () => {
    const file = join(dir, 'root-owned-control');
    writeFileSync(file, ROOT_TEXT, { mode: 0o644 });
    const run = await attackIn(z, ['write_file', file, 'overwritten'], ['credentials']);
    expectOk(run);
    expect(readFileSync(file, 'utf8')).toBe('overwritten');
    rmSync(file);
  });

  it('opening the file read-only for a check is allowed, so the EACCES above is the file mode at work', async () => {
    // The same child may open the world-readable root-owned file: open itself is not filtered.
    const run = await attackIn(z, ['open_file', rootFile, O_RDONLY]);
    expectOk(run);
  });
});

describe('a setuid-root binary', () => {
  it('cannot be executed at all: execve fails with EPERM (the seccomp filter)', async () => {
    const run = await attackIn(z, ['execve_path', setuidId, ['id']]);
    expectErrno(run, 'EPERM');
  });

  it('with seccomp skipped, it runs but gains nothing: no_new_privs keeps its euid at 65534', async () => {
    expect(statSync(setuidId)).toMatchObject({ uid: 0, mode: 0o104755 });
    const run = await attackIn(z, ['execve_path', setuidId, ['id']], ['seccomp']);
    expectAnswered(run);
    // The child's stdout is now id's stdout; no euid= means the euid equals the uid.
    expect(run.stdout).toMatch(/^uid=65534\(\w+\) gid=65534\(\w+\) groups=/);
    expect(run.stdout).not.toContain('euid=');
  });

  it('positive control (skips no-new-privs and seccomp): the same binary runs with euid 0', async () => {
    const run = await attackIn(z, ['execve_path', setuidId, ['id']], ['no-new-privs', 'seccomp']);
    expectAnswered(run);
    expect(run.stdout).toMatch(/^uid=65534\(\w+\) gid=65534\(\w+\) euid=0\(root\) /);
  });
});

describe('core dumps', () => {
  // Cores are on for the zygote, as on a host that collects them: the children's own limit
  // (RLIMIT_CORE 0) and their undumpable state are what must keep the heap off the disk.
  const pattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
  // Piped to a helper (systemd-coredump, apport) or written to a fixed directory: the
  // control cannot look for the core in the child's cwd.
  const elsewhere = pattern.startsWith('|') || pattern.includes('/');

  beforeAll(() => {
    execFileSync('prlimit', ['--pid', String(z.pid), '--core=unlimited']);
  });

  /** A fresh world-writable directory for the child to chdir into and abort in. */
  function abortDir(name: string): string {
    const d = join(dir, name);
    mkdirSync(d);
    chmodSync(d, 0o777);
    return d;
  }

  async function abortIn(d: string, skip: SandboxLayer[] = []) {
    const run = await attackIn(z, ['chdir-abort', d], skip);
    const files = readdirSync(d);
    rmSync(d, { recursive: true, force: true });
    return { run, files };
  }

  it('abort() in a world-writable directory leaves no core file there (rlimits, not-dumpable, credentials)', async () => {
    const { run, files } = await abortIn(abortDir('abort'));
    expect(files).toEqual([]);
    expect(run.status).toMatchObject({ code: null, reason: 'signal', signal: 'SIGABRT' });
  });

  it.each<[string, SandboxLayer[]]>([
    ['RLIMIT_CORE 0 alone (not-dumpable and credentials skipped)', ['not-dumpable', 'credentials']],
    ['not-dumpable alone (rlimits and credentials skipped)', ['rlimits', 'credentials']],
    ['the uid change alone, which clears dumpable (rlimits and not-dumpable skipped)', ['rlimits', 'not-dumpable']],
  ])('%s also keeps the core file away', async (_what, skip) => {
    const { run, files } = await abortIn(abortDir(`abort-${skip.join('-')}`), skip);
    expect(files).toEqual([]);
    expect(run.status).toMatchObject({ code: null, reason: 'signal' });
  });

  itNeeds(
    sysctl('/proc/sys/kernel/core_pattern', () => !elsewhere, 'a core_pattern that writes cores into the cwd, for the control to find one'),
    'positive control (skips rlimits, not-dumpable and credentials): the same abort() writes a core file there',
    async () => {
      const { run, files } = await abortIn(abortDir('abort-control'), ['rlimits', 'not-dumpable', 'credentials']);
      // core_pattern is a file name here ("core", maybe with %-specifiers), relative to the cwd.
      expect(files.length, `core_pattern ${pattern}`).toBe(1);
      expect(run.status).toMatchObject({ code: null, reason: 'signal', signal: 'SIGABRT' });
    },
  );
});
