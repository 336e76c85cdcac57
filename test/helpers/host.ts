// Host facilities that some tests need, each probed for itself (never inferred from a kernel
// version or a config file), and the wrappers that skip a test, with the reason in its title,
// only where the probe says the facility is absent. The rules (README, Testing):
// - a probe that cannot tell throws, so the test file fails to load and the run fails: a broken
//   probe never hides a broken layer behind a skip;
// - a security test is skipped only where its positive control cannot work either;
// - the reason goes in the title as "[skipped: ...]", which scripts/test.mjs lists above the
//   closing line; a skip without one fails the run.
// Layers the sandbox requires (user, pid, mount namespaces, seccomp, ...) are not facilities:
// on a host without them the suite fails, as `zygote doctor` does.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, it, type TestFunction } from 'vitest';
import { probeSyscallEntry, readCgroupFacts, type SyscallEntryVerdict } from '../../dist/zygote/doctor/index.js';
import { native } from '../../dist/native/index.js';

export interface Facility {
  present: boolean;
  /** Where absent: why, for the skip's title. Where present: what was found. */
  reason: string;
}

const present = (reason: string): Facility => ({ present: true, reason });
const absent = (reason: string): Facility => ({ present: false, reason });

function once<T>(f: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = f();
      done = true;
    }
    return value;
  };
}

/** The i386 or x32 syscall entry (zygote doctor's probe): a forked child calls getpid through it. */
export const syscallEntry = {
  i386: once(() => probeSyscallEntry('i386')),
  x32: once(() => probeSyscallEntry('x32')),
};

/** A live entry: an attack through it, and its positive control, can be made here. */
export function entryFacility(v: SyscallEntryVerdict): Facility {
  return v.state === 'present' ? present(v.reason) : absent(`the ${v.entry} syscall entry is ${v.state} on this host: ${v.reason}`);
}

/** Landlock at least this ABI (6: signal and abstract-socket scoping). */
export function landlockAbi(min: number): Facility {
  const p = native.probeLandlockAbi();
  if (p.abi === null && p.errno !== 'ENOSYS' && p.errno !== 'EOPNOTSUPP') throw new Error(`the Landlock probe failed: ${p.errno}`);
  if (p.abi !== null && p.abi >= min) return present(`Landlock ABI ${p.abi}`);
  return absent(p.abi === null ? `no Landlock on this host (${p.errno})` : `Landlock ABI ${p.abi} here, ${min} needed`);
}

/** A hierarchy with the pids controller, and its root, where a test (as root) may make a group. */
export interface PidsHierarchy extends Facility {
  version: 'v1' | 'v2' | null;
  root: string | null;
}

/** cgroup v1's pids hierarchy, or cgroup v2 with pids among its root's controllers. */
export function pidsHierarchy(): PidsHierarchy {
  const f = readCgroupFacts();
  const v1 = f.layout.v1.find((h) => h.controllers.includes('pids'));
  if (v1) return { ...present(`cgroup v1 pids at ${v1.mountPoint}`), version: 'v1', root: v1.mountPoint };
  if (f.layout.v2 && f.v2RootControllers.includes('pids')) return { ...present(`cgroup v2 at ${f.layout.v2.mountPoint}`), version: 'v2', root: f.layout.v2.mountPoint };
  return { ...absent('no cgroup hierarchy with the pids controller is mounted'), version: null, root: null };
}

/**
 * cgroup v2 alone with memory and pids, as on systemd and Kubernetes hosts: what the guest
 * (test/guest/) boots. Its own tests need it; a host with v1 controllers runs them in the guest.
 */
export const cgroupV2 = once((): Facility => {
  const f = readCgroupFacts();
  if (f.layout.mode !== 'v2') return absent(`cgroup ${f.layout.mode} here, not v2 alone (npm run test:guest runs these in a cgroup v2 guest)`);
  const missing = ['memory', 'pids'].filter((c) => !f.v2RootControllers.includes(c));
  if (missing.length > 0) return absent(`cgroup v2 here has no ${missing.join(' or ')} controller`);
  return present(`cgroup v2 alone at ${f.layout.v2!.mountPoint}`);
});

/**
 * Idmapped mounts (MOUNT_ATTR_IDMAP) on the filesystem of TMPDIR, where writable step
 * directories come from: per filesystem and kernel (tmpfs takes them from 6.3 on; the guest's
 * 6.1 does not). Any answer but the kernel's "no" (EINVAL, EOPNOTSUPP, ENOSYS) is a probe failure.
 */
export const idmappedMounts = once((): Facility => {
  const dir = tmpdir();
  const r = native.probeMountAttr(dir, 'idmap');
  if (r.ok) return present(`idmapped mounts of ${dir}`);
  if (r.errno === 'EINVAL' || r.errno === 'EOPNOTSUPP' || r.errno === 'ENOSYS') {
    return absent(`the filesystem of ${dir} takes no idmapped mounts on this kernel (${r.errno}; tmpfs needs 6.3)`);
  }
  throw new Error(`the idmapped-mount probe on ${dir} failed: ${r.errno}`);
});

/** A binary on PATH (answers --version). */
export function binary(name: string, pkg: string): Facility {
  const r = spawnSync(name, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return absent(`no ${name} binary (apt-get install ${pkg})`);
  if (r.error) throw new Error(`probing ${name} failed: ${r.error.message}`);
  return present(`${name}: ${(r.stdout || r.stderr).trim().split('\n')[0]}`);
}

/**
 * What the network tests build their test hosts from: `ip netns`, a veth pair and nftables,
 * tried for real in a throwaway namespace that is always deleted.
 */
export const networkTestbed = once((): Facility => {
  for (const [bin, pkg] of [['ip', 'iproute2'], ['nft', 'nftables']] as const) {
    const b = binary(bin, pkg);
    if (!b.present) return b;
  }
  const ns = `zt-probe-${process.pid}`;
  const run = (args: string[]) => spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  const made = run(['netns', 'add', ns]);
  if (made.error) throw new Error(`ip netns add: ${made.error.message}`);
  if (made.status !== 0) return absent(`cannot make a network namespace: ${made.stderr.trim()}`);
  try {
    const veth = run(['-n', ns, 'link', 'add', 'zta', 'type', 'veth', 'peer', 'name', 'ztb']);
    if (veth.error) throw new Error(`ip link add type veth: ${veth.error.message}`);
    if (veth.status !== 0) return absent(`no veth in this kernel: ${veth.stderr.trim()}`);
    const nft = run(['netns', 'exec', ns, 'nft', 'add', 'table', 'inet', 'zt_probe']);
    if (nft.error) throw new Error(`nft add table: ${nft.error.message}`);
    if (nft.status !== 0) return absent(`no nf_tables in this kernel: ${nft.stderr.trim()}`);
    return present('ip netns, veth and nftables work');
  } finally {
    execFileSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
  }
});

/** At least bytes free under dir. */
export function freeSpace(dir: string, bytes: number): Facility {
  const s = statfsSync(dir);
  const free = s.bavail * s.bsize;
  const gib = (n: number) => (n / 2 ** 30).toFixed(1);
  return free >= bytes ? present(`${gib(free)} GiB free under ${dir}`) : absent(`needs ${gib(bytes)} GiB free under ${dir}, has ${gib(free)} GiB`);
}

/** A sysctl that must have a given value for a test's premise to hold. */
export function sysctl(path: string, ok: (value: string) => boolean, need: string): Facility {
  const value = readFileSync(path, 'utf8').trim();
  const name = path.replace('/proc/sys/', '').replaceAll('/', '.');
  return ok(value) ? present(`${name} = ${value}`) : absent(`${name} is ${value} here; this test needs ${need}`);
}

function all(facilities: Facility[]): Facility {
  const missing = facilities.filter((f) => !f.present);
  return missing.length === 0 ? present(facilities.map((f) => f.reason).join('; ')) : absent(missing.map((f) => f.reason).join('; '));
}

/** The title a skipped test carries: scripts/test.mjs lists the reason from it. */
export function skippedTitle(name: string, f: Facility): string {
  // Brackets inside the reason would end the tag early for the parser: make them parentheses.
  return `${name} [skipped: ${f.reason.replaceAll('[', '(').replaceAll(']', ')')}]`;
}

/** it(), run where every facility is present, skipped with the reason in its title elsewhere. */
export function itNeeds(needs: Facility | Facility[], name: string, fn: TestFunction, timeout?: number): void {
  const f = all([needs].flat());
  it.runIf(f.present)(f.present ? name : skippedTitle(name, f), fn, timeout);
}

/** describe(), the same way: every test in it is skipped with the reason. */
export function describeNeeds(needs: Facility | Facility[], name: string, fn: () => void): void {
  const f = all([needs].flat());
  describe.runIf(f.present)(f.present ? name : skippedTitle(name, f), fn);
}

/** npm's cache directory (`npm config get cache`). */
export const npmCacheDir = once((): string => {
  const r = spawnSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error || r.status !== 0) throw new Error(`npm config get cache failed: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout.trim();
});

/**
 * Every one of these package tarballs in npm's cache, so an `npm ci --offline` of them needs no
 * network. Looked up by integrity where cacache keeps content (content-v2/<algo>/<hex split 2/2/rest>).
 */
export function npmCacheHolds(packages: { name: string; version: string; integrity: string }[]): Facility {
  const content = `${npmCacheDir()}/_cacache/content-v2`;
  const missing = packages.filter((p) => {
    const m = /^(sha\d+)-([A-Za-z0-9+/=]+)$/.exec(p.integrity);
    if (!m) throw new Error(`${p.name}@${p.version}: unexpected integrity ${p.integrity}`);
    const hex = Buffer.from(m[2]!, 'base64').toString('hex');
    return !existsSync(`${content}/${m[1]}/${hex.slice(0, 2)}/${hex.slice(2, 4)}/${hex.slice(4)}`);
  });
  if (missing.length > 0) return absent(`npm's cache (${content}) lacks ${missing.map((p) => `${p.name}@${p.version}`).join(', ')}; \`npm ci\` in the checkout fetches them`);
  return present(`npm's cache holds all ${packages.length} packages`);
}
