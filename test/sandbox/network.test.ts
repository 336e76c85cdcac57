// The opt-in network (spawn({ network }), zygote sandbox.network): a veth and /30 per child,
// NAT, and the zygote's nftables table. Attacked the way issue 4 asks, with every packet kept
// on this machine: the zygotes run inside a test network namespace (zt-host) whose only
// uplink is another one (zt-up) that owns the targets, the cloud metadata address, a private
// address and a public-looking one (TEST-NET-2), each with a listener. Each denial sits by its
// positive control. No real outside address is ever aimed at.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, SandboxError, SpawnError, startZygote, type SpawnOptions, type Zygote, type ZygoteChild } from '../../dist/client/index.js';
import { encodeConfig, FORK_SAFE_NODE_FLAGS, type ZygoteConfig } from '../../dist/protocol/config.js';
import { normalizeSandboxDefaults } from '../../dist/protocol/sandbox.js';
import { builtinLimitPolicy } from '../../dist/protocol/limits.js';
import { resolveAdmission } from '../../dist/protocol/admission.js';
import { asClient, scratchPackage } from '../helpers/deputy.js';
import { bounded, CLI, collect, ROOT, waitFor } from '../helpers/index.js';
import { describeNeeds, networkTestbed } from '../helpers/host.js';

const MAIN = new URL('../fixtures/network-main.mjs', import.meta.url);
const LISTENER = new URL('../fixtures/net-listener.mjs', import.meta.url).pathname;

const UP = `zt-up-${process.pid}`;
const HOST = `zt-host-${process.pid}`;
/** The link between them: zt-up is 192.0.2.1 (TEST-NET-1), zt-host 192.0.2.2. */
const UP_ADDR = '192.0.2.1';
const HOST_ADDR = '192.0.2.2';
/** Addresses zt-up owns: the metadata address, a private one and a public-looking one. */
const METADATA = '169.254.169.254';
const PRIVATE = '10.99.0.2';
const PUBLIC = '198.51.100.7';
/** Listeners: zt-up on 8080 and 8082 (every address it owns), zt-host on 8081 (IPv4 and IPv6). */
const UP_PORT = 8080;
const UP_PORT_2 = 8082;
const HOST_PORT = 8081;

const dir = mkdtempSync(join(tmpdir(), 'zt-net-'));
const processes: ChildProcess[] = [];

interface ProbeResult {
  host: string;
  port: number;
  ok: boolean;
  code: string | null;
  ms: number;
  reply?: string;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
}

function inHost(cmd: string, ...args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', HOST, cmd, ...args], { encoding: 'utf8', timeout: 10_000 });
}

function tables(): string[] {
  return inHost('nft', 'list', 'tables').trim().split('\n').filter(Boolean);
}

function hostLinks(): string {
  return ip('-n', HOST, '-o', 'link', 'show');
}

/** Starts argv inside zt-host or zt-up; its stderr is kept for failure messages. */
function inNamespace(ns: string, argv: string[]): { cp: ChildProcess; stderr: () => string } {
  const cp = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  processes.push(cp);
  let err = '';
  cp.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return { cp, stderr: () => err };
}

async function startListener(ns: string, addrs: string[]): Promise<void> {
  const { cp, stderr } = inNamespace(ns, [process.execPath, LISTENER, ...addrs]);
  const firstLine = new Promise<string>((resolve, reject) => {
    createInterface({ input: cp.stdout! }).once('line', resolve);
    cp.once('exit', (code) => reject(new Error(`listener in ${ns} exited ${code}: ${stderr()}`)));
  });
  expect(await bounded(firstLine, 10_000, `the listener in ${ns}`)).toBe('ready');
}

/** A zygote serving a socket from inside zt-host: its own table is inet zygote_<pid>. */
interface Served {
  z: Zygote;
  cp: ChildProcess;
  table: string;
  stderr: () => string;
}

async function serve(name: string, argv: string[], sock: string): Promise<Served> {
  const { cp, stderr } = inNamespace(HOST, argv);
  cp.stdin!.end();
  await waitFor(() => existsSync(sock) || cp.exitCode !== null, 20_000, `zygote ${name} to listen on ${sock}`);
  if (!existsSync(sock)) throw new Error(`zygote ${name} exited ${cp.exitCode}: ${stderr()}`);
  // The file is there from bind(2); until listen(2) a connect is refused: retry, bounded.
  let z: Zygote | null = null;
  const deadline = Date.now() + 10_000;
  while (!z) {
    try {
      z = await connect(sock);
    } catch (err) {
      if (Date.now() > deadline || !/ECONNREFUSED/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return { z, cp, table: `zygote_${z.pid}`, stderr };
}

/**
 * These zygotes run under `ip netns exec`, which mounts a fresh /sys and so hides the cgroup
 * hierarchies: a memory or pids limit would fail closed ("no usable memory cgroup controller").
 * They lift both (no cgroup per child); the limits are tested in default-limits.test.ts.
 */
const NO_CGROUP_POLICY = { defaults: { ...builtinLimitPolicy().defaults, memoryBytes: null, pids: null }, max: {} };
const NO_CGROUP_FLAGS = ['--default-memory', 'none', '--default-pids', 'none'];

/** A zygote started from a config of the test's own (it may allow failure injection). */
function serveConfig(name: string, network: { subnet: string; allow?: string[]; clientAllow?: string[] }): Promise<Served> {
  const sock = join(dir, `${name}.sock`);
  const config: ZygoteConfig = {
    main: MAIN.href,
    preload: [],
    control: { kind: 'listen', path: sock, allowUids: [process.getuid!()] },
    name,
    verbose: false,
    setupTimeoutMs: 10_000,
    shutdownTimeoutMs: 5_000,
    sandbox: normalizeSandboxDefaults({ network }),
    limits: NO_CGROUP_POLICY,
    admission: resolveAdmission({}, { uids: 1, uidRangeCount: null }),
    allowUnsandboxed: true,
  };
  return serve(name, [process.execPath, ...FORK_SAFE_NODE_FLAGS, `${ROOT}dist/zygote/main.js`, encodeConfig(config)], sock);
}

/** Stops a served zygote as a supervisor would (SIGTERM), bounded. */
async function stop(s: Served): Promise<number | null> {
  await s.z.close();
  if (s.cp.exitCode !== null) return s.cp.exitCode;
  const exited = new Promise<number | null>((resolve) => s.cp.once('exit', (code) => resolve(code)));
  s.cp.kill('SIGTERM');
  return bounded(exited, 10_000, 'the zygote to exit after SIGTERM');
}

/** A child running the 'probe' action: it says what it has, then connects where it is told. */
class Prober {
  private readonly lines: AsyncIterator<string>;
  /** What its network namespace holds (test/fixtures/network-main.mjs, network()). */
  info: { links: string[]; ipv4: string[]; ipv6: { address: string; link: string }[]; gateway: string | null } = { links: [], ipv4: [], ipv6: [], gateway: null };

  private constructor(readonly child: ZygoteChild) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static async start(z: Zygote, opts: SpawnOptions = {}): Promise<Prober> {
    const p = new Prober(await z.spawn({ ...opts, args: ['probe'] }));
    p.info = JSON.parse(await p.nextLine());
    return p;
  }

  /** The veth's name in the child and on the host, the child's address and its gateway (the host side). */
  get veth(): { childName: string; hostName: string; address: string; gateway: string } {
    const childName = this.info.links.find((n) => n.startsWith('zyc'));
    const address = this.info.ipv4.find((a) => !a.startsWith('127.'));
    if (!childName || !address || !this.info.gateway) throw new Error(`the child has no veth: ${JSON.stringify(this.info)}`);
    return { childName, hostName: `zyh${childName.slice(3)}`, address, gateway: this.info.gateway };
  }

  async probe(host: string, port: number): Promise<ProbeResult> {
    this.child.stdin.write(`${host} ${port}\n`);
    return JSON.parse(await this.nextLine());
  }

  async end(): Promise<void> {
    this.child.stdin.end();
    const [status] = await Promise.all([bounded(this.child.exited, 10_000, 'a probing child to exit'), collect(this.child.stderr)]);
    expect(status.code).toBe(0);
  }

  private async nextLine(): Promise<string> {
    const r = await bounded(this.lines.next(), 10_000, 'a line from the probing child');
    if (r.done) throw new Error('the probing child ended its output early');
    return r.value;
  }
}

/** A denial that fails at once (an ICMP "administratively prohibited" from the host). */
function expectRejected(r: ProbeResult, codes: string[] = ['EHOSTUNREACH']): void {
  expect(r.ok, JSON.stringify(r)).toBe(false);
  // EHOSTUNREACH is the ICMP admin-prohibited answer: a refusal, not a packet dropped into a
  // timeout (which would take the kernel's SYN retries, minutes). The time only backs that up,
  // with room for a loaded machine (1.2 s was seen once under load).
  expect(codes, JSON.stringify(r)).toContain(r.code);
  expect(r.ms, JSON.stringify(r)).toBeLessThan(5000);
}

let net: Served;
let allowing: Served;
let control: Served;
/** The CLI with --allow-uid CLIENT_UID --network-client-allow 0.0.0.0/0, and the scratch package its client runs from. */
let clients: Served;
let deputy: { scratch: string; pkg: string; socket: string };
const CLIENT_UID = 23456;
/** ip netns, veth and nftables, tried for real: without them every test here is skipped, saying why. */
const testbed = networkTestbed();

beforeAll(async () => {
  if (!testbed.present) return;
  ip('netns', 'add', UP);
  ip('netns', 'add', HOST);
  const upLink = `ztu${process.pid}`;
  const hostLink = `zth${process.pid}`;
  ip('link', 'add', upLink, 'type', 'veth', 'peer', 'name', hostLink);
  ip('link', 'set', upLink, 'netns', UP);
  ip('link', 'set', hostLink, 'netns', HOST);
  for (const [ns, link, addr] of [[UP, upLink, UP_ADDR], [HOST, hostLink, HOST_ADDR]]) {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', link);
    ip('-n', ns, 'link', 'set', link, 'up');
  }
  for (const a of [METADATA, PRIVATE, PUBLIC]) ip('-n', UP, 'addr', 'add', `${a}/32`, 'dev', 'lo');
  ip('-n', HOST, 'route', 'add', 'default', 'via', UP_ADDR);
  await startListener(UP, [`0.0.0.0:${UP_PORT}`, `0.0.0.0:${UP_PORT_2}`]);
  await startListener(HOST, [`[::]:${HOST_PORT}`]);

  // Its clients (this test, as root) may open destinations in 10.99.0.0/24 of their own.
  net = await serveConfig('net', { subnet: '10.201.0.0/16', clientAllow: ['10.99.0.0/24'] });
  control = await serveConfig('control', { subnet: '10.203.0.0/16' });
  // Through the CLI's flags: a zygote-wide allow-list opening two forbidden targets.
  const sock = join(dir, 'allowing.sock');
  allowing = await serve(
    'allowing',
    [process.execPath, CLI, 'serve', '--quiet', '--socket', sock, '--main', MAIN.pathname, '--network-subnet', '10.202.0.0/16', '--network-allow', `${METADATA}:${UP_PORT}`, '--network-allow', `${PRIVATE}:${UP_PORT}`, ...NO_CGROUP_FLAGS],
    sock,
  );
  // Through the CLI's flags, for a client running as an unprivileged uid: clients may choose
  // destinations anywhere (0.0.0.0/0), which still never includes what no client may open.
  const { scratch, pkg } = scratchPackage('zt-net-');
  deputy = { scratch, pkg, socket: join(scratch, 'clients.sock') };
  clients = await serve(
    'clients',
    [process.execPath, CLI, 'serve', '--quiet', '--socket', deputy.socket, '--main', MAIN.pathname, '--allow-uid', '0', '--allow-uid', String(CLIENT_UID), '--network-subnet', '10.204.0.0/16', '--network-client-allow', '0.0.0.0/0', ...NO_CGROUP_FLAGS],
    deputy.socket,
  );
}, 60_000);

afterAll(async () => {
  for (const s of [net, allowing, control, clients]) await s?.z.close().catch(() => {});
  for (const cp of processes) if (cp.exitCode === null && cp.signalCode === null) cp.kill('SIGKILL');
  for (const ns of [HOST, UP]) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // Never made, if beforeAll failed early.
    }
  }
  rmSync(dir, { recursive: true, force: true });
  if (deputy) rmSync(deputy.scratch, { recursive: true, force: true });
});

describeNeeds(testbed, 'a networked child', () => {
  it('gets a veth and a /30 of its own, and reaches a public address through NAT (as the zygote host)', async () => {
    const p = await Prober.start(net.z, { network: {} });
    const { childName, hostName, address, gateway } = p.veth;
    expect(childName).toMatch(/^zyc[0-9a-f]{8}$/);
    expect(p.info.links).toEqual(['lo', childName]);
    expect(address).toMatch(/^10\.201\./);
    // The /30's first address is the host side, its second the child's.
    expect(Number(gateway.split('.')[3]) % 4).toBe(1);
    expect(Number(address.split('.')[3])).toBe(Number(gateway.split('.')[3]) + 1);
    expect(hostLinks()).toContain(`${hostName}@`);
    const r = await p.probe(PUBLIC, UP_PORT);
    expect(r).toMatchObject({ ok: true, reply: HOST_ADDR });
    await p.end();
  });

  it('cannot reach the cloud metadata address 169.254.169.254: rejected at once', async () => {
    const p = await Prober.start(net.z, { network: {} });
    expectRejected(await p.probe(METADATA, UP_PORT));
    await p.end();
  });

  it('positive control (a zygote whose allow-list names it): 169.254.169.254 answers', async () => {
    const p = await Prober.start(allowing.z, { network: {} });
    expect(await p.probe(METADATA, UP_PORT)).toMatchObject({ ok: true, reply: HOST_ADDR });
    await p.end();
  });

  it('cannot reach a private address (10.99.0.2): rejected at once', async () => {
    const p = await Prober.start(net.z, { network: {} });
    expectRejected(await p.probe(PRIVATE, UP_PORT));
    await p.end();
  });

  it('positive control (allowed zygote-wide): the private address answers on the allowed port only', async () => {
    const p = await Prober.start(allowing.z, { network: {} });
    expect(await p.probe(PRIVATE, UP_PORT)).toMatchObject({ ok: true });
    expectRejected(await p.probe(PRIVATE, UP_PORT_2));
    await p.end();
  });

  it("cannot reach the zygote host's own services: its uplink address nor its own gateway on the veth", async () => {
    const p = await Prober.start(net.z, { network: {} });
    expectRejected(await p.probe(HOST_ADDR, HOST_PORT));
    expectRejected(await p.probe(p.veth.gateway, HOST_PORT));
    await p.end();
  });

  // Seccomp is left out of these two: Node names a link-local scope with if_nametoindex, an
  // ioctl the filter refuses, so with it every such connect fails (EINVAL) before the network
  // layers are even asked.
  it('cannot reach IPv6 link-local on its link: neither side of its veth has an IPv6 address', async () => {
    const p = await Prober.start(net.z, { network: {}, sandbox: { dangerouslySkip: ['seccomp'] } });
    const { childName, hostName } = p.veth;
    expect(p.info.ipv6.map((a) => a.link)).toEqual(['lo']);
    expect(ip('-n', HOST, '-6', 'addr', 'show', 'dev', hostName).trim()).toBe('');
    // Give the host side an fe80:: address with a listener (zt-host's, on [::]) behind it.
    ip('-n', HOST, 'addr', 'add', 'fe80::1/64', 'dev', hostName, 'nodad');
    expectRejected(await p.probe(`fe80::1%${childName}`, HOST_PORT), ['EADDRNOTAVAIL', 'ENETUNREACH', 'EHOSTUNREACH', 'EACCES']);
    await p.end();
  });

  it('is allowed a private address by its own allow entry, while a sibling without it is not', async () => {
    const [a, b] = await Promise.all([Prober.start(net.z, { network: { allow: [`${PRIVATE}:${UP_PORT}`] } }), Prober.start(net.z, { network: {} })]);
    expect(await a.probe(PRIVATE, UP_PORT)).toMatchObject({ ok: true, reply: HOST_ADDR });
    expectRejected(await b.probe(PRIVATE, UP_PORT));
    // The entry is for that port only.
    expectRejected(await a.probe(PRIVATE, UP_PORT_2));
    await Promise.all([a.end(), b.end()]);
  });

  it('takes a CIDR allow entry ("10.99.0.0/24:8082") for a whole network', async () => {
    const p = await Prober.start(net.z, { network: { allow: [`10.99.0.0/24:${UP_PORT_2}`] } });
    expect(await p.probe(PRIVATE, UP_PORT_2)).toMatchObject({ ok: true });
    expectRejected(await p.probe(PRIVATE, UP_PORT));
    await p.end();
  });

  it("loses its allow entries once it is reaped: the zygote's set is empty again", async () => {
    const p = await Prober.start(net.z, { network: { allow: [`${PRIVATE}:${UP_PORT}`, `10.99.0.0/24:${UP_PORT_2}`] } });
    const childAllow = () => inHost('nft', 'list', 'set', 'inet', net.table, 'child_allow');
    expect(childAllow()).toContain(`${p.veth.address} . ${PRIVATE} . ${UP_PORT}`);
    expect(childAllow()).toContain(`${p.veth.address} . 10.99.0.0/24 . ${UP_PORT_2}`);
    await p.end();
    // Removed when the zygote is next idle, which is at once here: bounded wait.
    await waitFor(() => !childAllow().includes(p.veth.address), 5_000, 'the reaped child\'s allow entries to go');
  });

  it('two at once get distinct names and addresses, and both reach the public address', async () => {
    const [a, b] = await Promise.all([Prober.start(net.z, { network: {} }), Prober.start(net.z, { network: {} })]);
    expect(a.veth.childName).not.toBe(b.veth.childName);
    expect(a.veth.address).not.toBe(b.veth.address);
    const [ra, rb] = await Promise.all([a.probe(PUBLIC, UP_PORT), b.probe(PUBLIC, UP_PORT)]);
    expect(ra).toMatchObject({ ok: true });
    expect(rb).toMatchObject({ ok: true });
    // Nor can one reach the other: the zygote's subnet is forbidden too.
    expectRejected(await a.probe(b.veth.address, HOST_PORT));
    await Promise.all([a.end(), b.end()]);
  });

  it('leaves no veth behind once it has exited: its namespace takes the pair with it', async () => {
    const p = await Prober.start(net.z, { network: {} });
    const { hostName } = p.veth;
    expect(hostLinks()).toContain(`${hostName}@`);
    await p.end();
    // The kernel tears a dead namespace down asynchronously: bounded wait.
    await waitFor(() => !hostLinks().includes(`${hostName}@`), 5_000, `${hostName} to disappear`);
  });

  it('a child of the same zygote that did not ask for a network has loopback only', async () => {
    const p = await Prober.start(net.z);
    expect(p.info.links).toEqual(['lo']);
    expect(p.info.gateway).toBe(null);
    expectRejected(await p.probe(PUBLIC, UP_PORT), ['ENETUNREACH']);
    await p.end();
  });
});

describeNeeds(testbed, "a served client's own allow entries", () => {
  it('are refused where the operator let clients choose no destination (no --network-client-allow)', async () => {
    const err = await allowing.z.spawn({ args: ['probe'], network: { allow: [`${PRIVATE}:${UP_PORT}`] } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpawnError);
    expect((err as Error).message).toContain('network.allow: this zygote does not let its clients choose destinations');
  });

  it("lie inside the operator's ranges: a private address outside them is refused", async () => {
    const err = await net.z.spawn({ args: ['probe'], network: { allow: ['192.168.1.0/24:80'] } }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('network.allow[0] 192.168.1.0/24:80 lies outside the ranges this zygote lets clients open (10.99.0.0/24)');
  });

  it('never reach the metadata address, loopback or the children\'s subnet, even where the operator allows everything: refused to a client running as an unprivileged uid', async () => {
    const spawnAllowing = (entry: string, host: string, port: number) => ({ kind: 'spawn', args: ['connect', host, port], mounts: [], network: { allow: [entry] } });
    const run = await asClient(deputy.pkg, CLIENT_UID, deputy.socket, [
      spawnAllowing(`${METADATA}:${UP_PORT}`, METADATA, UP_PORT),
      spawnAllowing('169.254.0.0/16:80', METADATA, 80),
      spawnAllowing(`127.0.0.1:${HOST_PORT}`, '127.0.0.1', HOST_PORT),
      spawnAllowing('10.204.0.0/16:80', '10.204.0.6', 80),
      spawnAllowing('0.0.0.0/0:80', PUBLIC, 80),
    ]);
    expect(run.uid).toBe(CLIENT_UID);
    const reaches = ['169.254.0.0/16', '169.254.0.0/16', '127.0.0.0/8', '10.204.0.0/16', '0.0.0.0/8'];
    for (const [i, range] of reaches.entries()) {
      expect(run.results[i]).toMatchObject({ ok: false, name: 'SpawnPolicyError', code: 'ERR_ZYGOTE_SPAWN_POLICY', step: 'sandbox policy' });
      expect(run.results[i].message).toContain(`reaches ${range}, which no client may open`);
    }
  });

  it('positive control: the same client opens a private address the operator let it, and reaches it on that port only', async () => {
    const run = await asClient(deputy.pkg, CLIENT_UID, deputy.socket, [
      { kind: 'spawn', args: ['connect', PRIVATE, UP_PORT], mounts: [], network: { allow: [`${PRIVATE}:${UP_PORT}`] } },
      { kind: 'spawn', args: ['connect', PRIVATE, UP_PORT_2], mounts: [], network: { allow: [`${PRIVATE}:${UP_PORT}`] } },
    ]);
    expect(run.results[0]).toMatchObject({ ok: true, out: { ok: true }, code: 0 });
    expect(run.results[1]).toMatchObject({ ok: true, out: { ok: false, code: 'EHOSTUNREACH' }, code: 0 });
  });
});

describeNeeds(testbed, 'refusals and fail-closed setup', () => {
  it('a zygote started without sandbox.network refuses a networked spawn with a SpawnError', async () => {
    const z = await startZygote({ main: MAIN });
    try {
      const err = await z.spawn({ args: ['connect', PUBLIC, UP_PORT], network: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SpawnError);
      expect(err).toMatchObject({ step: 'sandbox policy' });
      expect((err as Error).message).toContain('this zygote was not started with sandbox.network');
    } finally {
      await z.close();
    }
  });

  it('refuses an IPv6 allow entry: networked children get IPv4 only', async () => {
    const err = await net.z.spawn({ args: ['probe'], network: { allow: ['[2001:db8::1]:443'] } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpawnError);
    expect((err as Error).message).toContain('network.allow[0] [2001:db8::1]:443 is IPv6, but networked children get IPv4 only');
  });

  it.each([
    [{ allow: 'x' }, 'Expected `network.allow` to be an array of "IP:PORT" or "CIDR:PORT" strings, got "x"'],
    // The forms offered are the ones accepted: IPv4 only, no "[IPv6]:PORT".
    [{ allow: ['10.0.0.1'] }, 'Expected `network.allow[0]` to be an allow entry: it must be of the form "IP:PORT" or "CIDR:PORT", IPv4 (e.g. "203.0.113.7:443", "10.0.0.0/8:5432"), got "10.0.0.1"'],
    [{ allow: ['203.0.113.7:443', '10.0.0.1:0'] }, 'Expected `network.allow[1]` to be an allow entry: it has port 0, which is not 1 to 65535'],
    [{ allow: ['10.0.0.1/24:80'] }, 'has host bits set in 10.0.0.1/24 (did you mean 10.0.0.0/24?)'],
    [{ allow: ['10.0.0.0/33:80'] }, 'has prefix /33, which is not 0 to 32'],
    [{ allow: ['[nope]:80'] }, 'has "nope", which is not an IPv6 address'],
    [{ alow: [] }, 'Unknown option `network.alow` in spawn(); known: allow'],
    [[], 'Expected the `network` option to be an object { allow?: string[] }, got []'],
  ])('rejects spawn({ network: %j }) with a TypeError naming the field', async (network, message) => {
    const err = await net.z.spawn({ args: ['probe'], network: network as SpawnOptions['network'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toContain(message);
  });

  it.each([
    [{ subnet: '10.201.0.1/16' }, 'Expected `sandbox.network.subnet` to be an IPv4 network: it has host bits set: 10.201.0.1/16 (did you mean 10.201.0.0/16?)'],
    [{ subnet: '10.201.0.0/31' }, 'Expected `sandbox.network.subnet` to be a /8 to a /30 (a /30 per live child), got 10.201.0.0/31'],
    [{ allow: ['[::1]:80'] }, 'Expected `sandbox.network.allow[0]` to be IPv4: networked children get IPv4 only, got [::1]:80'],
  ])('startZygote refuses sandbox.network %j, naming the field', async (network, message) => {
    await expect(startZygote({ main: MAIN, sandbox: { network } })).rejects.toThrow(message);
  });

  const STEPS = [
    'network: open host netns',
    'network: host netlink socket',
    'network: child netlink socket',
    'network: create veth',
    'network: look up veth',
    'network: host side no IPv6',
    'network: host side address',
    'network: host side up',
    'network: child side no IPv6',
    'network: child side address',
    'network: child side up',
    'network: default route',
  ];

  it.each(STEPS)('a failure at %s rejects spawn() with SandboxError, runs no JS and leaves no veth', async (step) => {
    const vethsBefore = new Set(hostLinks().match(/zyh[0-9a-f]{8}/g));
    const newVeths = () => (hostLinks().match(/zyh[0-9a-f]{8}/g) ?? []).filter((l) => !vethsBefore.has(l));
    const marker = join(dir, `ran-${step.replace(/\W+/g, '_')}`);
    const opts = { args: ['touch', marker], network: {}, mounts: [{ source: dir, target: dir, writable: true }] };
    const err = await net.z.spawn({ ...opts, sandbox: { dangerouslyInjectFailure: { step, errno: 'EPERM' } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxError);
    expect(err).toMatchObject({ step, code: 'ERR_ZYGOTE_SANDBOX', errno: 'EPERM', cause: { code: 'EPERM', syscall: step }, message: `sandbox step ${step} failed: EPERM (Operation not permitted)` });
    await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(marker)).toBe(false);
    await waitFor(() => newVeths().length === 0, 5_000, "the failed child's veth to disappear");
  });

  it('positive control: the same spawn without an injected failure runs its JS', async () => {
    const marker = join(dir, 'ran-control');
    const child = await net.z.spawn({ args: ['touch', marker], network: {}, mounts: [{ source: dir, target: dir, writable: true }] });
    expect((await bounded(child.exited, 10_000, 'the child to exit')).code).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });
});

describeNeeds(testbed, 'the nftables table', () => {
  it('is one table per zygote, named with its pid, and goes when the zygote stops', async () => {
    expect(tables()).toEqual(expect.arrayContaining([`table inet ${net.table}`, `table inet ${allowing.table}`, `table inet ${clients.table}`, `table inet ${control.table}`]));
    expect(inHost('cat', '/proc/sys/net/ipv4/ip_forward').trim()).toBe('1');
    expect(await stop(net)).toBe(0);
    expect(await stop(allowing)).toBe(0);
    expect(await stop(clients)).toBe(0);
    expect(tables()).not.toContain(`table inet ${net.table}`);
    expect(tables()).not.toContain(`table inet ${allowing.table}`);
    expect(tables()).not.toContain(`table inet ${clients.table}`);
    expect(tables()).toContain(`table inet ${control.table}`);
  });

  // With only the control zygote left, deleting its table leaves no rule at all: what the
  // table denied above becomes reachable, so those denials were the table's doing.
  it("positive control (table deleted): the host's own addresses, the gateway and link-local fe80:: answer", async () => {
    const p = await Prober.start(control.z, { network: {}, sandbox: { dangerouslySkip: ['seccomp'] } });
    const { childName, hostName, gateway } = p.veth;
    expectRejected(await p.probe(HOST_ADDR, HOST_PORT));
    inHost('nft', 'delete', 'table', 'inet', control.table);
    expect(await p.probe(HOST_ADDR, HOST_PORT)).toMatchObject({ ok: true });
    expect(await p.probe(gateway, HOST_PORT)).toMatchObject({ ok: true });
    // Link-local needs an IPv6 address on each side, which the child's setup never gives.
    ip('-n', HOST, 'addr', 'add', 'fe80::1/64', 'dev', hostName, 'nodad');
    execFileSync('nsenter', [`--net=/proc/${p.child.pid}/ns/net`, 'ip', 'addr', 'add', 'fe80::2/64', 'dev', childName, 'nodad'], { timeout: 10_000 });
    expect(await p.probe(`fe80::1%${childName}`, HOST_PORT)).toMatchObject({ ok: true });
    await p.end();
    expect(await stop(control)).toBe(0);
    // The last zygote turned forwarding back off, as it found it.
    expect(inHost('cat', '/proc/sys/net/ipv4/ip_forward').trim()).toBe('0');
  });
});
