// Sandbox attacks on other processes: tracing and reading a sibling, signalling the zygote
// and everyone, and what a child inherits (fds, environment). Victims and attackers are
// sandboxed alike. Each attack is stopped, asserting exactly how; its positive control runs
// the same attack with the smallest set of layers skipped that makes it work (named in the
// test), so a pass means the layer stopped it.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type Zygote } from '../../dist/client/index.js';
import { SIGKILL, type AttackResult, type IdsResult, type ReadResult, type VmReadResult } from '../native/attack.js';
import { fdsOf, isAlive, sharedOpenFiles } from '../helpers/index.js';
import { itNeeds, landlockAbi, sysctl } from '../helpers/host.js';
import { ATTACK_MAIN, attackIn, bounded, expectAnswered, expectErrno, expectKilledBySigsys, expectOk, OUTER_LAYERS, startVictim, stop, uidsOf, type AttackRun } from './attack-helpers.js';

const ENV = { ZYGOTE_ATTACK_ENV: 'configured' };
/** Children of this zygote all run as 65534. */
let z: Zygote;
/** Each live child of this one gets its own uid from 100000..100063. */
let zRange: Zygote;
/** The control for zRange: every child shares one uid that nothing else on the host uses. */
let zShared: Zygote;
const SHARED_UID = 100500;

beforeAll(async () => {
  [z, zRange, zShared] = await Promise.all([
    startZygote({ main: ATTACK_MAIN, env: ENV, dangerouslyAllowUnsandboxed: true }),
    startZygote({ main: ATTACK_MAIN, env: ENV, dangerouslyAllowUnsandboxed: true, sandbox: { uidRange: { start: 100000, count: 64 } } }),
    startZygote({ main: ATTACK_MAIN, env: ENV, dangerouslyAllowUnsandboxed: true, sandbox: { uid: SHARED_UID, gid: SHARED_UID } }),
  ]);
});
afterAll(async () => {
  await Promise.all([z?.close(), zRange?.close(), zShared?.close()]);
});

/** The start of a process's first mapping (its executable's ELF header), read as root from /proc. */
function firstMapping(pid: number): number {
  return Number.parseInt(readFileSync(`/proc/${pid}/maps`, 'utf8').split('-')[0]!, 16);
}

const ELF_MAGIC = 0x464c457fn; // "\x7fELF", little-endian

function expectNotTraced(pid: number): void {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  expect(status).toMatch(/^TracerPid:\s+0$/m);
  expect(status).toMatch(/^State:\s+[RS] /m);
}

describe('tracing and reading a sibling', () => {
  it('ptrace(PTRACE_ATTACH) of a sibling kills the attacker with SIGSYS (seccomp), and the victim runs on untraced', async () => {
    const victim = await startVictim(z);
    try {
      expectKilledBySigsys(await attackIn(z, ['ptrace_attach', victim.child.pid]));
      expectNotTraced(victim.child.pid);
    } finally {
      await stop(victim.child);
    }
  });

  it("process_vm_readv of a sibling's memory kills the attacker with SIGSYS (seccomp)", async () => {
    const victim = await startVictim(z);
    try {
      expectKilledBySigsys(await attackIn(z, ['process_vm_readv', victim.child.pid, firstMapping(victim.child.pid)]));
    } finally {
      await stop(victim.child);
    }
  });

  it("reading a sibling's /proc/PID/environ and opening its /proc/PID/mem for writing fail with EACCES (not-dumpable)", async () => {
    const victim = await startVictim(z);
    try {
      expect(victim.ready.dumpable).toBe(0);
      const run = await attackIn<[ReadResult, AttackResult]>(z, ['calls', ['read_proc_file', `/proc/${victim.child.pid}/environ`], ['open_proc_mem_rw', victim.child.pid]]);
      expectAnswered(run);
      const [environ, mem] = run.result!;
      expect(environ).toEqual({ ok: false, errno: 'EACCES', value: -1, text: '' });
      expect(mem).toEqual({ ok: false, errno: 'EACCES', value: -1 });
    } finally {
      await stop(victim.child);
    }
  });

  it('with seccomp skipped, ptrace and process_vm_readv of a sibling still fail with EPERM (not-dumpable)', async () => {
    const victim = await startVictim(z);
    try {
      const pid = victim.child.pid;
      const run = await attackIn<[AttackResult, VmReadResult]>(z, ['calls', ['ptrace_attach', pid], ['process_vm_readv', pid, firstMapping(pid)]], ['seccomp']);
      expectAnswered(run);
      expect(run.result![0]).toEqual({ ok: false, errno: 'EPERM', value: -1 });
      expect(run.result![1]).toEqual({ ok: false, errno: 'EPERM', value: -1, data: null });
      expectNotTraced(pid);
    } finally {
      await stop(victim.child);
    }
  });

  // The uid change (setresuid) itself clears the dumpable flag when fs.suid_dumpable is 0,
  // so skipping the 'not-dumpable' layer alone leaves the victim undumpable on such a host.
  itNeeds(sysctl('/proc/sys/fs/suid_dumpable', (v) => v === '0', 'fs.suid_dumpable 0 (the premise of this test)'), "with fs.suid_dumpable 0, a victim that skips only 'not-dumpable' is still undumpable: the uid change cleared it too", async () => {
    const victim = await startVictim(z, 'hang', ['not-dumpable']);
    try {
      expect(victim.ready.dumpable).toBe(0);
      const pid = victim.child.pid;
      const run = await attackIn<[AttackResult, ReadResult]>(z, ['calls', ['ptrace_attach', pid], ['read_proc_file', `/proc/${pid}/environ`]], ['seccomp']);
      expectAnswered(run);
      expect(run.result![0]).toMatchObject({ ok: false, errno: 'EPERM' });
      expect(run.result![1]).toMatchObject({ ok: false, errno: 'EACCES' });
    } finally {
      await stop(victim.child);
    }
  });

  describe("positive control (the victim skips 'not-dumpable' and 'seccomp' and makes itself dumpable again with PR_SET_DUMPABLE)", () => {
    it('a fully sandboxed sibling with the same uid reads its /proc/PID/environ and opens its /proc/PID/mem for writing', async () => {
      const victim = await startVictim(z, 'hang-dumpable', ['not-dumpable', 'seccomp']);
      try {
        expect(victim.ready).toMatchObject({ set: { ok: true }, dumpable: 1 });
        const pid = victim.child.pid;
        const run = await attackIn<[ReadResult, AttackResult]>(z, ['calls', ['read_proc_file', `/proc/${pid}/environ`], ['open_proc_mem_rw', pid]]);
        expectAnswered(run);
        expect(run.result![0]).toMatchObject({ ok: true, text: 'ZYGOTE_ATTACK_ENV=configured\0' });
        expect(run.result![1]).toMatchObject({ ok: true, errno: null });
        expect(uidsOf(pid)).toEqual([65534, 65534, 65534, 65534]);
      } finally {
        await stop(victim.child);
      }
    });

    it('a sibling with the same uid and seccomp skipped attaches with ptrace and reads its memory with process_vm_readv', async () => {
      const victim = await startVictim(z, 'hang-dumpable', ['not-dumpable', 'seccomp']);
      try {
        const pid = victim.child.pid;
        const run = await attackIn<[AttackResult, VmReadResult]>(z, ['calls', ['ptrace_attach', pid], ['process_vm_readv', pid, firstMapping(pid)]], ['seccomp']);
        expectAnswered(run);
        expect(run.result![0]).toEqual({ ok: true, errno: null, value: 0 });
        expect(run.result![1]).toMatchObject({ ok: true, value: 8 });
        expect(BigInt(run.result![1].data as unknown as string) & 0xffffffffn).toBe(ELF_MAGIC);
        expectNotTraced(pid); // the attack detached again
      } finally {
        await stop(victim.child);
      }
    });
  });
});

describe('Landlock', () => {
  // The attacker keeps Landlock (every other outer layer left out, as in the tests above).
  const withLandlock = OUTER_LAYERS.filter((l) => l !== 'landlock');
  itNeeds(landlockAbi(6), 'alone stops a same-uid sibling from signalling or ptracing a victim outside its domain: EPERM', async () => {
    const victim = await startVictim(z, 'hang-dumpable', ['not-dumpable', 'seccomp']);
    try {
      const pid = victim.child.pid;
      const run = await attackIn<[AttackResult, AttackResult]>(z, ['calls', ['kill', pid, 0], ['ptrace_attach', pid]], ['seccomp'], withLandlock);
      expectAnswered(run);
      expect(run.result![0]).toEqual({ ok: false, errno: 'EPERM', value: -1 });
      expect(run.result![1]).toEqual({ ok: false, errno: 'EPERM', value: -1 });
    } finally {
      await stop(victim.child);
    }
  });

  it('positive control (the same attacker without Landlock): both succeed', async () => {
    const victim = await startVictim(z, 'hang-dumpable', ['not-dumpable', 'seccomp']);
    try {
      const pid = victim.child.pid;
      const run = await attackIn<[AttackResult, AttackResult]>(z, ['calls', ['kill', pid, 0], ['ptrace_attach', pid]], ['seccomp']);
      expectAnswered(run);
      expect(run.result![0]).toEqual({ ok: true, errno: null, value: 0 });
      expect(run.result![1]).toEqual({ ok: true, errno: null, value: 0 });
      expectNotTraced(pid);
    } finally {
      await stop(victim.child);
    }
  });
});

describe('siblings with different uids (uidRange)', () => {
  /** Runs `calls` in an attacker next to a victim of zz; returns both uids and the results. */
  async function attackSibling<R extends unknown[]>(zz: Zygote, victimSkip: Parameters<typeof startVictim>[2], attackerSkip: Parameters<typeof attackIn>[2], calls: (pid: number) => unknown[][]) {
    const victim = await startVictim(zz, 'hang-dumpable', victimSkip);
    try {
      const pid = victim.child.pid;
      const victimUid = uidsOf(pid)[0];
      const run = await attackIn<[IdsResult, ...R]>(zz, ['calls', ['getresuid'], ...calls(pid)], attackerSkip);
      expectAnswered(run);
      const [ids, ...results] = run.result!;
      const alive = isAlive(pid);
      return { victim, victimUid, attackerUid: ids.ids[0], results: results as unknown as R, alive };
    } finally {
      await stop(victim.child);
    }
  }

  it('cannot ptrace each other even with seccomp and not-dumpable skipped and the victim dumpable: EPERM from the uid check alone', async () => {
    const r = await attackSibling<[AttackResult, VmReadResult]>(zRange, ['not-dumpable', 'seccomp'], ['seccomp'], (pid) => [['ptrace_attach', pid], ['process_vm_readv', pid, firstMapping(pid)]]);
    expect(r.victim.ready.dumpable).toBe(1);
    expect(r.attackerUid).not.toBe(r.victimUid);
    expect(r.results[0]).toEqual({ ok: false, errno: 'EPERM', value: -1 });
    expect(r.results[1]).toMatchObject({ ok: false, errno: 'EPERM' });
  });

  it('positive control (one shared uid instead of uidRange, same layers skipped): the sibling attaches with ptrace and reads the memory', async () => {
    const r = await attackSibling<[AttackResult, VmReadResult]>(zShared, ['not-dumpable', 'seccomp'], ['seccomp'], (pid) => [['ptrace_attach', pid], ['process_vm_readv', pid, firstMapping(pid)]]);
    expect(r.attackerUid).toBe(SHARED_UID);
    expect(r.victimUid).toBe(SHARED_UID);
    expect(r.results[0]).toEqual({ ok: true, errno: null, value: 0 });
    expect(r.results[1]).toMatchObject({ ok: true, value: 8 });
  });

  it('cannot signal each other: kill(sibling, 0) fails with EPERM', async () => {
    const r = await attackSibling<[AttackResult]>(zRange, [], [], (pid) => [['kill', pid, 0]]);
    expect(r.attackerUid).not.toBe(r.victimUid);
    expect(r.results[0]).toEqual({ ok: false, errno: 'EPERM', value: -1 });
  });

  it('positive control (one shared uid instead of uidRange): kill(sibling, 0) succeeds', async () => {
    const r = await attackSibling<[AttackResult]>(zShared, [], [], (pid) => [['kill', pid, 0]]);
    expect(r.results[0]).toEqual({ ok: true, errno: null, value: 0 });
  });
});

describe('signalling the zygote and everyone', () => {
  it('kill(zygote, 0) fails with EPERM (credentials: the zygote is root)', async () => {
    expectErrno(await attackIn(z, ['kill', z.pid, 0]), 'EPERM');
  });

  it('positive control (skips credentials): kill(zygote, 0) succeeds', async () => {
    expectOk(await attackIn(z, ['kill', z.pid, 0], ['credentials']));
  });

  it('kill(-1, SIGKILL) reaches neither the zygote nor a sibling running under another uid from uidRange', async () => {
    const sibling = await startVictim(zRange);
    try {
      const run = await attackIn<[IdsResult, AttackResult]>(zRange, ['calls', ['getresuid'], ['kill', -1, SIGKILL]]);
      expectAnswered(run); // kill(-1) skips the caller itself
      const attackerUid = run.result![0].ids[0];
      expect(attackerUid).toBeGreaterThanOrEqual(100000);
      expect(uidsOf(sibling.child.pid)[0]).not.toBe(attackerUid);
      // The kernel reports success when every target refused with EPERM; what counts is who is left.
      expect(run.result![1]).toMatchObject({ errno: null });
      expect(isAlive(sibling.child.pid)).toBe(true);
      expect(sibling.child.hasExited).toBe(false);
      expect(isAlive(zRange.pid)).toBe(true);
      expectOk(await attackIn(zRange, ['getresuid'])); // the zygote still serves
    } finally {
      await stop(sibling.child);
    }
  });

  it('positive control (one shared uid instead of uidRange): the same kill(-1, SIGKILL) kills the sibling, but still not the zygote', async () => {
    const sibling = await startVictim(zShared);
    try {
      const run = await attackIn(zShared, ['kill', -1, SIGKILL]);
      expectOk(run);
      const status = await bounded(sibling.child.exited, 10_000, 'the sibling to be killed');
      expect(status).toMatchObject({ code: null, signal: 'SIGKILL', reason: 'signal' });
      expect(isAlive(zShared.pid)).toBe(true);
      expectOk(await attackIn(zShared, ['getresuid']));
    } finally {
      await stop(sibling.child);
    }
  });
});

describe('what a child inherits', () => {
  /** Every (child fd, zygote fd) pair that is the same open file description (kcmp). */
  function sharedWithZygote(zz: Zygote, pid: number): string[] {
    return sharedOpenFiles(pid, zz.pid);
  }

  it('no socket, pipe or file of the zygote is open in a child, checked from outside with kcmp against every zygote fd', async () => {
    const sibling = await startVictim(z); // so the zygote holds a live child's pidfd and pipes too
    const victim = await startVictim(z);
    try {
      const fds = fdsOf(victim.child.pid);
      expect(fds.get(0)).toMatch(/^pipe:/);
      expect([...fds.values()].filter((t) => t.startsWith('socket:'))).toEqual([]);
      expect(sharedWithZygote(z, victim.child.pid)).toEqual([]);
    } finally {
      await Promise.all([stop(victim.child), stop(sibling.child)]);
    }
  });

  it("positive control (skips close-fds): the child does hold the zygote's sockets", async () => {
    const victim = await startVictim(z, 'hang', ['close-fds']);
    try {
      const shared = sharedWithZygote(z, victim.child.pid);
      expect(shared.filter((s) => /^\d+:\d+ \(socket:/.test(s)).length).toBeGreaterThan(0);
    } finally {
      await stop(victim.child);
    }
  });

  it('the environment is exactly the configured one, in process.env and in /proc/PID/environ', async () => {
    expect(process.env.PATH).toBeDefined(); // this process has more, none of which may leak
    const run: AttackRun<{ env: Record<string, string> }> = await attackIn(z, ['env']);
    expectAnswered(run);
    expect(run.result!.env).toEqual(ENV);
    const victim = await startVictim(z);
    try {
      expect(readFileSync(`/proc/${victim.child.pid}/environ`, 'utf8')).toBe('ZYGOTE_ATTACK_ENV=configured\0');
    } finally {
      await stop(victim.child);
    }
  });
});
