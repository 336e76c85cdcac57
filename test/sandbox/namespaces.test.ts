// The child's own pid, user, cgroup, network, IPC and UTS namespaces: it sees and signals
// only itself, its ids mean nothing outside, no network but its own loopback, no SysV IPC
// shared with the host, its own hostname. Each with its positive control.
import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type SandboxLayer, type Zygote } from '../../dist/client/index.js';
import { collect } from '../helpers/index.js';

const MAIN = new URL('../fixtures/sandbox-main.mjs', import.meta.url);
let z: Zygote;
const servers: Server[] = [];

beforeAll(async () => {
  z = await startZygote({ main: MAIN, dangerouslyAllowUnsandboxed: true });
});
afterAll(async () => {
  await z?.close();
  for (const s of servers) s.close();
});

async function run(args: unknown[], skip: SandboxLayer[] = []): Promise<string> {
  const child = await z.spawn({ args, sandbox: { dangerouslySkip: skip } });
  const [out, err, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  expect(status.code, err).toBe(0);
  return out;
}

/** A listener of the test's own on host:0; its port. */
async function listen(host: string): Promise<number> {
  const server = createServer((s) => s.destroy());
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  return (server.address() as AddressInfo).port;
}

/** This host's addresses other than loopback (IPv4, and IPv6 global and link-local). */
function hostAddresses(): { address: string; family: string; scopeid?: number; name: string }[] {
  const out = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.internal) out.push({ ...a, name });
  }
  return out;
}

describe('network namespace', () => {
  it("cannot reach a listener on the host's loopback: the child's 127.0.0.1 is its own", async () => {
    const port = await listen('127.0.0.1');
    const r = JSON.parse(await run(['connect', '127.0.0.1', port]));
    expect(r).toMatchObject({ ok: false, code: 'ECONNREFUSED' });
    expect(r.ms).toBeLessThan(1000); // fails fast: nothing to wait for
  });

  it("positive control (skips network-namespace): the same connect reaches the host's listener", async () => {
    const port = await listen('127.0.0.1');
    expect(JSON.parse(await run(['connect', '127.0.0.1', port], ['network-namespace']))).toMatchObject({ ok: true });
  });

  it("cannot reach the host's other addresses (IPv4, IPv6, IPv6 link-local): no route", async () => {
    const targets = hostAddresses();
    expect(targets.length).toBeGreaterThan(0);
    for (const t of targets) {
      const host = t.family === 'IPv6' && t.address.startsWith('fe80') ? `${t.address}%${t.name}` : t.address;
      const port = await listen(host);
      const r = JSON.parse(await run(['connect', host, port]));
      expect(r.ok, `${host}: ${JSON.stringify(r)}`).toBe(false);
      expect(['ENETUNREACH', 'EHOSTUNREACH', 'EADDRNOTAVAIL', 'EINVAL'], `${host}: ${r.code}`).toContain(r.code);
    }
  });

  it("positive control (skips network-namespace): the host's IPv4 address is reachable", async () => {
    const v4 = hostAddresses().find((a) => a.family === 'IPv4');
    if (!v4) return;
    const port = await listen(v4.address);
    expect(JSON.parse(await run(['connect', v4.address, port], ['network-namespace']))).toMatchObject({ ok: true });
  });

  it('still has a working loopback of its own (bring-up step), for steps that talk to themselves', async () => {
    const r = JSON.parse(await run(['connect', '127.0.0.1', 9]));
    expect(r.code).toBe('ECONNREFUSED'); // up and answering, nobody listening; a down lo gives ENETUNREACH
  });
});

describe('UTS namespace', () => {
  it("has its own hostname, not the host's", async () => {
    expect(await run(['hostname'])).toBe('sandbox');
  });
  it("positive control (skips uts-namespace): sees the host's name", async () => {
    expect(await run(['hostname'], ['uts-namespace'])).toBe(hostname());
  });
});

describe('IPC namespace', () => {
  it("does not see the host's SysV message queues", async () => {
    const id = execFileSync('ipcmk', ['-Q'], { encoding: 'utf8' }).match(/(\d+)/)![1];
    try {
      // The child's own /proc has no /proc/sysvipc: read the host's (mount namespace skipped),
      // which shows the reader's IPC namespace.
      const visible = (await run(['read', '/proc/sysvipc/msg'], ['mount-namespace'])).split('\n').slice(1).map((l) => l.trim().split(/\s+/)[1]);
      expect(visible).not.toContain(id);
      const control = (await run(['read', '/proc/sysvipc/msg'], ['ipc-namespace', 'mount-namespace'])).split('\n').slice(1).map((l) => l.trim().split(/\s+/)[1]);
      expect(control).toContain(id); // positive control (skips ipc-namespace)
    } finally {
      execFileSync('ipcrm', ['-q', id]);
    }
  });
});

describe('pid namespace', () => {
  it('is pid 2 under its own init (pid 1), and its /proc lists only those two', async () => {
    expect(JSON.parse(await run(['pids']))).toEqual({ pid: 2, ppid: 1, proc: [1, 2] });
  });

  it("positive control (skips pid-namespace): it has a host pid and its /proc lists the host's processes", async () => {
    const r = JSON.parse(await run(['pids'], ['pid-namespace']));
    expect(r.pid).toBeGreaterThan(2);
    expect(r.proc).toContain(process.pid);
  });

  it("two children at once cannot see each other: neither's /proc has the other", async () => {
    const a = await z.spawn({ args: ['wait-for', '/never', 500] });
    const b = JSON.parse(await run(['pids']));
    expect(b.proc).toEqual([1, 2]);
    expect(b.proc).not.toContain(a.pid);
    await Promise.all([collect(a.stdout), a.exited]);
  });

  it('the host pid the client gets is the init, whose namespace pid is 1', async () => {
    const child = await z.spawn({ args: ['wait-for', '/never', 300] });
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    expect(status).toMatch(new RegExp(`^NSpid:\\s+${child.pid}\\s+1$`, 'm'));
    await Promise.all([collect(child.stdout), child.exited]);
  });
});

describe('user namespace', () => {
  it('is root of a user namespace that maps only to host uid and gid 65534, with setgroups denied', async () => {
    const s = JSON.parse(await run(['status']));
    expect(s.Uid).toBe('0\t0\t0\t0');
    expect(s.uidMap.trim().split(/\s+/)).toEqual(['0', '65534', '1']);
    expect(s.gidMap.trim().split(/\s+/)).toEqual(['0', '65534', '1']);
    expect(s.setgroups.trim()).toBe('deny');
  });

  it('positive control (skips user-namespace): the initial user namespace, all ids mapped', async () => {
    const s = JSON.parse(await run(['status'], ['user-namespace']));
    expect(s.uidMap.trim().split(/\s+/)).toEqual(['0', '0', '4294967295']);
  });
});

describe('cgroup namespace', () => {
  it('sees its own cgroup as the root: /proc/self/cgroup names no host path', async () => {
    const lines = (await run(['read', '/proc/self/cgroup'])).trim().split('\n');
    for (const line of lines) expect(line.split(':')[2], line).toBe('/');
  });

  it("positive control (skips cgroup-namespace, with a cgroup of its own): the host's path shows", async () => {
    const child = await z.spawn({ args: ['read', '/proc/self/cgroup'], sandbox: { dangerouslySkip: ['cgroup-namespace'] }, limits: { memoryBytes: 256 * 2 ** 20 } });
    const [out, , status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    expect(status.code).toBe(0);
    expect(out).toMatch(/memory:\/.+/);
  });
});
