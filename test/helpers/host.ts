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
import { describe, it, type TestFunction } from 'vitest';
import { probeSyscallEntry, type SyscallEntryVerdict } from '../../dist/zygote/doctor/index.js';
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

/** A cgroup v1 pids hierarchy this process may make groups in. */
export function cgroupV1Pids(): Facility {
  const root = '/sys/fs/cgroup/pids';
  if (!existsSync(`${root}/cgroup.procs`)) return absent(`no cgroup v1 pids hierarchy at ${root} (a v2-only host)`);
  return present(`cgroup v1 pids at ${root}`);
}

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
  if (f.present) it(name, fn, timeout);
  else it.skip(skippedTitle(name, f), fn);
}

/** describe(), the same way: every test in it is skipped with the reason. */
export function describeNeeds(needs: Facility | Facility[], name: string, fn: () => void): void {
  const f = all([needs].flat());
  if (f.present) describe(name, fn);
  else describe.skip(skippedTitle(name, f), fn);
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
