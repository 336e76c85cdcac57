// The sandbox policy: its layers, defaults, and how a zygote's defaults and a spawn's request
// combine into the exact spec the native code carries out (native/fork.cc, SandboxSpec).
import { constants as osConstants } from 'node:os';
import type { NativeRootBind, NativeRootSpec, NativeSandboxSpec } from '../../native/index.js';
import { parseAllowEntry, parseIpv4Net, type AllowEntry } from './net-addr.js';
import { DEFAULT_NETWORK_SUBNET, type NetworkDefaults } from './network.js';
import { templateCovers, withMounts, type Mount } from './root.js';

/** The layers a child is put in, in the order native/fork.cc applies them. */
export const SANDBOX_LAYERS = [
  'pid-namespace',
  'setsid',
  'close-fds',
  'cgroup-namespace',
  'network-namespace',
  'ipc-namespace',
  'uts-namespace',
  'mount-namespace',
  'rlimits',
  'capabilities',
  'credentials',
  'user-namespace',
  'not-dumpable',
  'no-new-privs',
  'landlock',
  'seccomp',
] as const;
export type SandboxLayer = (typeof SANDBOX_LAYERS)[number];

/** The unprivileged identity children run as by default: nobody / nogroup. */
export const NOBODY = 65534;

/** Resource limits (never the address space: V8 reserves far more than it uses). */
export interface RlimitOptions {
  /** Most open fds. Default 256. */
  nofile?: number;
  /** Largest file the child may write, in bytes. Default 1 GiB. */
  fsize?: number;
}

/** A zygote's sandbox defaults (startZygote / zygote serve). */
export interface SandboxDefaults {
  /** uid and gid children run as. Default 65534. */
  uid?: number;
  gid?: number;
  /**
   * Give each live child its own uid (and gid) from [start, start + count), so concurrent
   * children are strangers to each other: they cannot signal, ptrace or read each other's
   * /proc files. Overrides uid and gid.
   */
  uidRange?: { start: number; count: number };
  rlimits?: RlimitOptions;
  /** Size of the private tmpfs /tmp each child gets, in bytes. Default 64 MiB. */
  tmpBytes?: number;
  /**
   * Host paths every child sees read-only, at the same place, beside what the zygote works
   * out it needs (node, its libraries, main's directory, the node_modules it loads from).
   */
  readOnlyPaths?: string[];
  /**
   * Lets children ask for a network (spawn({ network })); without it the zygote refuses them.
   * Each networked child gets a /30 of `subnet` (default 10.201.0.0/16) on a veth pair, NAT
   * through the host, and an nftables table that keeps it from the host itself, private,
   * link-local and metadata addresses, except `allow` entries ("IP:PORT", "CIDR:PORT") for
   * every child of this zygote. README, Security, "Network".
   */
  network?: { subnet?: string; allow?: readonly string[] } | null;
}

/** A spawn's network: its own allow entries, on top of the zygote's. */
export interface NetworkRequest {
  /** "IP:PORT" or "CIDR:PORT" (IPv4), or "[IPv6]:PORT": destinations this child alone may reach. */
  allow?: readonly string[];
}

/** What one spawn may ask of the sandbox. */
export interface SandboxRequest {
  rlimits?: RlimitOptions;
  /** Size of this child's /tmp, in bytes. */
  tmpBytes?: number;
  /** Host paths this child alone sees (an input directory, a writable output directory). */
  mounts?: Mount[];
  /** A network of its own (spawn({ network })); absent: loopback only. */
  network?: { allow: string[] };
  /**
   * DANGEROUS, for tests and positive controls only: run this child without these layers.
   * Honoured only by a zygote started with `dangerouslyAllowUnsandboxed: true` (never by
   * `zygote serve`); any other zygote refuses the spawn.
   */
  dangerouslySkip?: readonly SandboxLayer[];
  /** DANGEROUS, tests only: make the named native setup step fail with this errno. */
  dangerouslyInjectFailure?: { step: string; errno: string };
}


export const DEFAULT_RLIMITS: Required<RlimitOptions> = { nofile: 256, fsize: 1024 ** 3 };
export const DEFAULT_TMP_BYTES = 64 * 1024 * 1024;

/** A zygote's sandbox defaults, checked and filled in. */
export type NormalizedSandboxDefaults = Required<Omit<SandboxDefaults, 'uidRange' | 'network'>> & Pick<SandboxDefaults, 'uidRange'> & { network: NetworkDefaults | null };

/** Checks a zygote's defaults; throws a TypeError naming the bad field. */
export function normalizeSandboxDefaults(d: SandboxDefaults | undefined): NormalizedSandboxDefaults {
  const v = d ?? {};
  if (typeof v !== 'object' || v === null) throw new TypeError('Expected the `sandbox` option to be an object');
  const uid = id(v.uid, 'sandbox.uid', NOBODY);
  const gid = id(v.gid, 'sandbox.gid', NOBODY);
  if (uid === 0 || gid === 0) throw new TypeError('Expected `sandbox.uid` and `sandbox.gid` to be unprivileged (not 0)');
  let uidRange: SandboxDefaults['uidRange'];
  if (v.uidRange !== undefined) {
    const { start, count } = v.uidRange;
    if (!Number.isInteger(start) || start <= 0 || !Number.isInteger(count) || count <= 0 || start + count > 0xfffffffe) {
      throw new TypeError(`Expected \`sandbox.uidRange\` to be { start > 0, count > 0 } within the uid space, got ${JSON.stringify(v.uidRange)}`);
    }
    uidRange = { start, count };
  }
  const tmpBytes = v.tmpBytes ?? DEFAULT_TMP_BYTES;
  if (!Number.isSafeInteger(tmpBytes) || tmpBytes <= 0) throw new TypeError(`Expected \`sandbox.tmpBytes\` to be a positive integer, got ${String(v.tmpBytes)}`);
  const readOnlyPaths = v.readOnlyPaths ?? [];
  if (!Array.isArray(readOnlyPaths) || !readOnlyPaths.every((p) => typeof p === 'string' && p.startsWith('/'))) {
    throw new TypeError(`Expected \`sandbox.readOnlyPaths\` to be absolute paths, got ${JSON.stringify(v.readOnlyPaths)}`);
  }
  const network = normalizeNetworkDefaults(v.network);
  return { uid, gid, uidRange, tmpBytes, readOnlyPaths, rlimits: normalizeRlimits(v.rlimits, DEFAULT_RLIMITS, 'sandbox.rlimits'), network };
}

/** The smallest and largest subnet a zygote may hand /30s out of. */
const SUBNET_PREFIX = { min: 8, max: 30 };

function normalizeNetworkDefaults(n: SandboxDefaults['network']): NetworkDefaults | null {
  if (n === undefined || n === null) return null;
  if (typeof n !== 'object' || Array.isArray(n)) throw new TypeError(`Expected \`sandbox.network\` to be an object { subnet?, allow? }, got ${JSON.stringify(n)}`);
  const subnet = n.subnet ?? DEFAULT_NETWORK_SUBNET;
  let prefix: number;
  try {
    prefix = parseIpv4Net(subnet).prefix;
  } catch (err) {
    throw new TypeError(`Expected \`sandbox.network.subnet\` to be an IPv4 network: it ${(err as Error).message}`);
  }
  if (prefix < SUBNET_PREFIX.min || prefix > SUBNET_PREFIX.max) {
    throw new TypeError(`Expected \`sandbox.network.subnet\` to be a /${SUBNET_PREFIX.min} to a /${SUBNET_PREFIX.max} (a /30 per live child), got ${subnet}`);
  }
  const allow = checkAllowList(n.allow, 'sandbox.network.allow');
  for (const [i, e] of allow.entries()) {
    if (e.family !== 4) throw new TypeError(`Expected \`sandbox.network.allow[${i}]\` to be IPv4: networked children get IPv4 only, got ${e.text}`);
  }
  return { subnet, allow: allow.map((e) => e.text) };
}

/** Checks the shape and syntax of an allow list; messages name the entry. */
function checkAllowList(list: unknown, what: string): AllowEntry[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new TypeError(`Expected \`${what}\` to be an array of "IP:PORT" or "CIDR:PORT" strings, got ${JSON.stringify(list)}`);
  return list.map((entry, i) => {
    try {
      return parseAllowEntry(entry);
    } catch (err) {
      throw new TypeError(`Expected \`${what}[${i}]\` to be an allow entry: it ${(err as Error).message}`);
    }
  });
}

/** Checks a spawn's `network` option (client side): { allow?: entries }. */
export function normalizeNetworkRequest(n: unknown): { allow: string[] } | undefined {
  if (n === undefined) return undefined;
  if (typeof n !== 'object' || n === null || Array.isArray(n)) throw new TypeError(`Expected the \`network\` option to be an object { allow?: string[] }, got ${JSON.stringify(n)}`);
  const unknown = Object.keys(n).filter((k) => k !== 'allow');
  if (unknown.length > 0) throw new TypeError(`Unknown \`network\` option field ${unknown.map((k) => `\`network.${k}\``).join(', ')}; known: allow`);
  return { allow: checkAllowList((n as NetworkRequest).allow, 'network.allow').map((e) => e.text) };
}

/**
 * A spawn's network as this zygote grants it: null for none (loopback only), or the child's
 * own allow entries. Throws when the zygote has no network to give or an entry is not IPv4.
 */
export function resolveNetwork(defaults: NormalizedSandboxDefaults, request: SandboxRequest): AllowEntry[] | null {
  if (request.network === undefined) return null;
  if (defaults.network === null) throw new Error('this zygote was not started with sandbox.network: it gives children no network (start it with sandbox: { network: {} } or `zygote serve --network`)');
  return request.network.allow.map((text, i) => {
    const e = parseAllowEntry(text);
    if (e.family !== 4) throw new Error(`network.allow[${i}] ${text} is IPv6, but networked children get IPv4 only`);
    return e;
  });
}

export function normalizeRlimits(r: RlimitOptions | undefined, base: Required<RlimitOptions>, what: string): Required<RlimitOptions> {
  if (r === undefined) return { ...base };
  if (typeof r !== 'object' || r === null) throw new TypeError(`Expected \`${what}\` to be an object`);
  const limit = (x: unknown, key: keyof RlimitOptions) => {
    if (x === undefined) return base[key];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x <= 0) throw new TypeError(`Expected \`${what}.${key}\` to be a positive integer, got ${String(x)}`);
    return x;
  };
  return { nofile: limit(r.nofile, 'nofile'), fsize: limit(r.fsize, 'fsize') };
}

/** Checks a spawn's sandbox request (client side, before anything is sent). */
export function normalizeSandboxRequest(r: SandboxRequest | undefined): SandboxRequest {
  if (r === undefined) return {};
  if (typeof r !== 'object' || r === null) throw new TypeError('Expected the `sandbox` option to be an object');
  const out: SandboxRequest = {};
  if (r.rlimits !== undefined) out.rlimits = normalizeRlimits(r.rlimits, DEFAULT_RLIMITS, 'sandbox.rlimits');
  if (r.tmpBytes !== undefined) {
    if (!Number.isSafeInteger(r.tmpBytes) || r.tmpBytes <= 0) throw new TypeError(`Expected \`tmpBytes\` to be a positive integer, got ${String(r.tmpBytes)}`);
    out.tmpBytes = r.tmpBytes;
  }
  if (r.mounts !== undefined) {
    if (!Array.isArray(r.mounts)) throw new TypeError('Expected `mounts` to be an array of { source, target, writable? }');
    out.mounts = r.mounts.map((m, i) => {
      if (typeof m !== 'object' || m === null || typeof m.source !== 'string' || typeof m.target !== 'string' || (m.writable !== undefined && typeof m.writable !== 'boolean')) {
        throw new TypeError(`Expected \`mounts[${i}]\` to be { source: string, target: string, writable?: boolean }, got ${JSON.stringify(m)}`);
      }
      return { source: m.source, target: m.target, writable: m.writable === true };
    });
  }
  if (r.network !== undefined) out.network = normalizeNetworkRequest(r.network);
  if (r.dangerouslySkip !== undefined) {
    if (!Array.isArray(r.dangerouslySkip) || !r.dangerouslySkip.every((l) => (SANDBOX_LAYERS as readonly string[]).includes(l))) {
      throw new TypeError(`Expected \`sandbox.dangerouslySkip\` to list layers among ${SANDBOX_LAYERS.join(', ')}, got ${JSON.stringify(r.dangerouslySkip)}`);
    }
    out.dangerouslySkip = [...r.dangerouslySkip];
  }
  if (r.dangerouslyInjectFailure !== undefined) {
    const f = r.dangerouslyInjectFailure;
    if (typeof f?.step !== 'string' || typeof f?.errno !== 'string' || !(f.errno in osConstants.errno)) {
      throw new TypeError(`Expected \`sandbox.dangerouslyInjectFailure\` to be { step, errno: an errno name }, got ${JSON.stringify(f)}`);
    }
    out.dangerouslyInjectFailure = { step: f.step, errno: f.errno };
  }
  return out;
}

/**
 * The exact sandbox of one child: the zygote's defaults, the request's limits, and the
 * layers it skips (refused unless the zygote allows unsandboxed children).
 */
export function resolveSandbox(
  defaults: NormalizedSandboxDefaults,
  request: SandboxRequest,
  ids: { uid: number; gid: number },
  compiled: { rootBinds: readonly NativeRootBind[]; rootTemplateFd: number; seccompId: number; initSeccompId: number; landlockAbi: number },
  allowUnsandboxed: boolean,
): NativeSandboxSpec {
  const skip = new Set(request.dangerouslySkip ?? []);
  if ((skip.size > 0 || request.dangerouslyInjectFailure) && !allowUnsandboxed) {
    throw new Error('this zygote does not run children with sandbox layers skipped or failures injected (start it with dangerouslyAllowUnsandboxed for tests)');
  }
  const on = (layer: SandboxLayer) => !skip.has(layer);
  const rlimits = { ...defaults.rlimits, ...(request.rlimits ?? {}) };
  const inject = request.dangerouslyInjectFailure;
  const mounts = request.mounts ?? [];
  if (mounts.length > 0 && !on('mount-namespace')) throw new Error('mounts need the mount-namespace layer');
  if (request.network !== undefined && !on('network-namespace')) throw new Error('a network needs the network-namespace layer');
  return {
    pidNamespace: on('pid-namespace'),
    setsid: on('setsid'),
    closeFds: on('close-fds'),
    cgroupNamespace: on('cgroup-namespace'),
    netNamespace: on('network-namespace'),
    // Set by the zygote once it has a /30 for a networked child (zygote/sandbox/network.ts).
    veth: null,
    ipcNamespace: on('ipc-namespace'),
    utsNamespace: on('uts-namespace'),
    root: on('mount-namespace') ? rootSpec(compiled, mounts, request.tmpBytes ?? defaults.tmpBytes) : null,
    // Its root is mapped to the uid it drops to, so it needs the credentials layer.
    userNamespace: on('user-namespace') && on('credentials'),
    credentials: on('credentials') ? ids : null,
    capabilities: on('capabilities'),
    noNewPrivs: on('no-new-privs'),
    notDumpable: on('not-dumpable'),
    // A core dump would write the heap, with whatever it read, into the cwd.
    rlimits: on('rlimits') ? { core: 0, nofile: rlimits.nofile, fsize: rlimits.fsize } : {},
    seccomp: on('seccomp') ? compiled.seccompId : -1,
    initSeccomp: on('seccomp') ? compiled.initSeccompId : -1,
    // Where the kernel has it (0: it does not; zygote doctor says why). It needs no_new_privs.
    landlockAbi: on('landlock') && on('no-new-privs') ? compiled.landlockAbi : 0,
    injectFailure: inject ? { step: inject.step, errno: (osConstants.errno as Record<string, number>)[inject.errno] } : null,
  };
}

function id(v: unknown, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xfffffffe) throw new TypeError(`Expected \`${what}\` to be a uid/gid number, got ${String(v)}`);
  return v;
}

/** The child's root: every bind, and the template to start from when it can. */
function rootSpec(compiled: { rootBinds: readonly NativeRootBind[]; rootTemplateFd: number }, mounts: readonly Mount[], tmpBytes: number): NativeRootSpec {
  const binds = withMounts(compiled.rootBinds, mounts);
  const own = binds.slice(compiled.rootBinds.length);
  if (compiled.rootTemplateFd < 0 || !templateCovers(compiled.rootBinds, own)) return { binds, tmpBytes, proc: true };
  // The child's own /tmp goes over the template's: binds under /tmp (a checkout there) are
  // mounted again on top of it, before the spawn's own.
  const underTmp = compiled.rootBinds.filter((b) => b.target.startsWith('/tmp/'));
  return { binds, tmpBytes, proc: true, templateFd: compiled.rootTemplateFd, templateBinds: [...underTmp, ...own] };
}
