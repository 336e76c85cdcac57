// The sandbox policy: how a zygote's defaults and a spawn's request (their types and checks:
// protocol/sandbox.ts, protocol/spawn.ts) combine into the exact spec the native code carries
// out (native/fork.cc, SandboxSpec).
import { constants as osConstants } from 'node:os';
import type { NativeRootSpec, NativeSandboxSpec } from '../../native/index.js';
import { ipv4NetWithin, parseAllowEntry, parseIpv4Net, type AllowEntry, type Ipv4Net } from '../../protocol/net-addr.js';
import type { NormalizedSandboxDefaults, SandboxLayer } from '../../protocol/sandbox.js';
import type { SandboxRequest } from '../../protocol/spawn.js';
import { templateCovers, tmpDirsOf, withMounts, type FdMount, type RootPlan } from './root.js';

/**
 * What no client's own allow entry may reach, whatever the operator lets clients open:
 * "this network", loopback, link-local (with the metadata address 169.254.169.254), multicast
 * and reserved. The children's own subnet is added. (The host's own addresses are out of
 * reach for every entry: the input chain, zygote/sandbox/network.ts.)
 */
export const NEVER_FOR_CLIENTS = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '240.0.0.0/4'] as const;

/**
 * A spawn's network as this zygote grants it: null for none (loopback only), or the child's
 * own allow entries. Throws when the zygote has no network to give or an entry is not IPv4.
 * A served client's entries open destinations on the operator's behalf, so they are refused
 * unless the operator named ranges clients may open (sandbox.network.clientAllow, `zygote serve
 * --network-client-allow`), must lie inside one, and never reach NEVER_FOR_CLIENTS. An embedded
 * zygote's one client is its operator: its entries are the operator's own.
 */
export function resolveNetwork(defaults: NormalizedSandboxDefaults, request: SandboxRequest, clientIsOperator = true): AllowEntry[] | null {
  if (request.network === undefined) return null;
  if (defaults.network === null) throw new Error('this zygote was not started with sandbox.network: it gives children no network (start it with sandbox: { network: {} } or `zygote serve --network`)');
  const entries = request.network.allow.map((text, i) => {
    const e = parseAllowEntry(text);
    if (e.family !== 4) throw new Error(`network.allow[${i}] ${text} is IPv6, but networked children get IPv4 only`);
    return e;
  });
  if (clientIsOperator || entries.length === 0) return entries;
  const ranges = defaults.network.clientAllow.map((c) => parseIpv4Net(c));
  if (ranges.length === 0) {
    throw new Error('network.allow: this zygote does not let its clients choose destinations (its operator may name ranges with `zygote serve --network-client-allow CIDR`)');
  }
  const never = [...NEVER_FOR_CLIENTS, defaults.network.subnet];
  for (const [i, e] of entries.entries()) {
    const net = parseIpv4Net(`${e.address}/${e.prefix}`);
    const hit = never.find((n) => overlap(net, parseIpv4Net(n)));
    if (hit) throw new Error(`network.allow[${i}] ${e.text} reaches ${hit}, which no client may open (loopback, link-local and the metadata address, multicast, reserved, the children's subnet)`);
    if (!ranges.some((r) => ipv4NetWithin(net, r))) {
      throw new Error(`network.allow[${i}] ${e.text} lies outside the ranges this zygote lets clients open (${defaults.network.clientAllow.join(', ')})`);
    }
  }
  return entries;
}

function overlap(a: Ipv4Net, b: Ipv4Net): boolean {
  return ipv4NetWithin(a, b) || ipv4NetWithin(b, a);
}

/**
 * The exact sandbox of one child: the zygote's defaults, the request's limits, and the
 * layers it skips (refused unless the zygote allows unsandboxed children).
 */
export function resolveSandbox(
  defaults: NormalizedSandboxDefaults,
  request: SandboxRequest,
  ids: { uid: number; gid: number },
  compiled: { root: RootPlan; rootTemplateFd: number; seccompId: number; initSeccompId: number; landlockAbi: number },
  allowUnsandboxed: boolean,
  /**
   * The spawn's mounts, as the client's source fds, and its output filesystem (zygote/sandbox/
   * output.ts), and what they are idmapped through (mapping the client's ids to `ids`).
   */
  own: { mounts: readonly FdMount[]; idmapFd: () => number; clientMountNs?: number; output?: FdMount | null } = { mounts: [], idmapFd: () => -1 },
): NativeSandboxSpec {
  const skip = new Set(request.dangerouslySkip ?? []);
  if ((skip.size > 0 || request.dangerouslyInjectFailure) && !allowUnsandboxed) {
    throw new Error('this zygote does not run children with sandbox layers skipped or failures injected (start it with dangerouslyAllowUnsandboxed for tests)');
  }
  const on = (layer: SandboxLayer) => !skip.has(layer);
  const rlimits = { ...defaults.rlimits, ...(request.rlimits ?? {}) };
  const inject = request.dangerouslyInjectFailure;
  const mounts = own.mounts;
  if (mounts.length > 0 && !on('mount-namespace')) throw new Error('mounts need the mount-namespace layer');
  if (own.output && !on('mount-namespace')) throw new Error('an output filesystem needs the mount-namespace layer');
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
    root: on('mount-namespace') ? rootSpec(compiled, mounts, own.output ?? null, request.tmpBytes ?? defaults.tmpBytes, own.idmapFd, own.clientMountNs ?? -1) : null,
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

/** The child's root: every bind and copy, and the template to start from when it can. */
function rootSpec(compiled: { root: RootPlan; rootTemplateFd: number }, mounts: readonly FdMount[], output: FdMount | null, tmpBytes: number, idmapFd: () => number, clientMountNs: number): NativeRootSpec {
  const plan = compiled.root;
  const binds = withMounts(plan.binds, mounts, plan.copies, output);
  const own = binds.slice(plan.binds.length);
  const idmap = own.length > 0 ? { idmapFd: idmapFd(), ...(clientMountNs >= 0 ? { clientMountNsFd: clientMountNs } : {}) } : {};
  // What lies under /tmp (a checkout there) is lifted off the root and put back over the
  // child's own /tmp: the template's part, or in a root built whole, the spawn's mounts too.
  if (compiled.rootTemplateFd < 0 || !templateCovers(plan.binds, own)) {
    const { copies, links, copyBytes } = plan;
    return { binds, copies, links, copyBytes, tmpDirs: tmpDirsOf([...copies, ...binds.map((b) => b.target)]), tmpBytes, proc: true, ...idmap };
  }
  const templateTmp = tmpDirsOf([...plan.copies, ...plan.binds.map((b) => b.target)]);
  return { binds, tmpBytes, proc: true, templateFd: compiled.rootTemplateFd, templateBinds: own, templateTmpDirs: templateTmp, ...idmap };
}
