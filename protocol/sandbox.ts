// What a child's sandbox is made of, as both sides see it: the layers, a zygote's defaults
// (startZygote({ sandbox }), `zygote serve`) and their checks. The client checks them before it
// starts a zygote; the zygote checks its configuration with the same code (protocol/config.ts).
import { DEFAULT_LIMITS, DEFAULT_NOFILE } from './limits.js';
import { parseAllowEntry, parseIpv4Net, type AllowEntry } from './net-addr.js';
import { describe, isOptionsObject, refuseUnknownKeys } from './options.js';

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

// The values themselves are protocol/limits.ts's, the one place defaults are written down.
export const DEFAULT_RLIMITS: Required<RlimitOptions> = { nofile: DEFAULT_NOFILE, fsize: DEFAULT_LIMITS.fileBytes };
export const DEFAULT_TMP_BYTES = DEFAULT_LIMITS.tmpBytes;

const SANDBOX_DEFAULTS_KEYS = ['uid', 'gid', 'uidRange', 'rlimits', 'tmpBytes', 'readOnlyPaths', 'network'] as const satisfies readonly (keyof SandboxDefaults)[];

export const DEFAULT_NETWORK_SUBNET = '10.201.0.0/16';

/** sandbox.network, normalised (normalizeSandboxDefaults). */
export interface NetworkDefaults {
  /** IPv4 network the children's /30s come from. */
  subnet: string;
  /** Allow entries for every child of this zygote. */
  allow: string[];
}

/** A zygote's sandbox defaults, checked and filled in. */
export type NormalizedSandboxDefaults = Required<Omit<SandboxDefaults, 'uidRange' | 'network' | 'rlimits'>> &
  Pick<SandboxDefaults, 'uidRange'> & { rlimits: Required<RlimitOptions>; network: NetworkDefaults | null };

/** Checks a zygote's defaults; throws a TypeError naming the bad field. */
export function normalizeSandboxDefaults(d: SandboxDefaults | undefined, where = 'startZygote()'): NormalizedSandboxDefaults {
  const v = d ?? {};
  if (!isOptionsObject(v)) throw new TypeError(`Expected the \`sandbox\` option of ${where} to be an object, got ${describe(v)}`);
  refuseUnknownKeys(v, SANDBOX_DEFAULTS_KEYS, where, 'sandbox.');
  const uid = id(v.uid, 'sandbox.uid', NOBODY);
  const gid = id(v.gid, 'sandbox.gid', NOBODY);
  if (uid === 0 || gid === 0) throw new TypeError('Expected `sandbox.uid` and `sandbox.gid` to be unprivileged (not 0)');
  let uidRange: SandboxDefaults['uidRange'];
  if (v.uidRange !== undefined) {
    if (!isOptionsObject(v.uidRange)) throw new TypeError(`Expected \`sandbox.uidRange\` to be { start, count }, got ${describe(v.uidRange)}`);
    refuseUnknownKeys(v.uidRange, ['start', 'count'], where, 'sandbox.uidRange.');
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
  const network = normalizeNetworkDefaults(v.network, where);
  return { uid, gid, uidRange, tmpBytes, readOnlyPaths, rlimits: normalizeRlimits(v.rlimits, DEFAULT_RLIMITS, 'sandbox.rlimits', where), network };
}

/** The smallest and largest subnet a zygote may hand /30s out of. */
const SUBNET_PREFIX = { min: 8, max: 30 };

function normalizeNetworkDefaults(n: SandboxDefaults['network'], where: string): NetworkDefaults | null {
  if (n === undefined || n === null) return null;
  if (typeof n !== 'object' || Array.isArray(n)) throw new TypeError(`Expected \`sandbox.network\` to be an object { subnet?, allow? }, got ${JSON.stringify(n)}`);
  refuseUnknownKeys(n, ['subnet', 'allow'], where, 'sandbox.network.');
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
export function checkAllowList(list: unknown, what: string): AllowEntry[] {
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

/** Checks rlimits ({ nofile, fsize }, `what` their place in the options), filling in base. */
export function normalizeRlimits(r: RlimitOptions | undefined, base: Required<RlimitOptions>, what: string, where: string): Required<RlimitOptions> {
  if (r === undefined) return { ...base };
  if (!isOptionsObject(r)) throw new TypeError(`Expected \`${what}\` to be an object, got ${describe(r)}`);
  refuseUnknownKeys(r, ['nofile', 'fsize'], where, `${what}.`);
  const limit = (x: unknown, key: keyof RlimitOptions) => {
    if (x === undefined) return base[key];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x <= 0) throw new TypeError(`Expected \`${what}.${key}\` to be a positive integer, got ${String(x)}`);
    return x;
  };
  return { nofile: limit(r.nofile, 'nofile'), fsize: limit(r.fsize, 'fsize') };
}

function id(v: unknown, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xfffffffe) throw new TypeError(`Expected \`${what}\` to be a uid/gid number, got ${String(v)}`);
  return v;
}
