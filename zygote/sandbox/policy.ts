// The sandbox policy: how a zygote's defaults and a spawn's request (their types and checks:
// protocol/sandbox.ts, protocol/spawn.ts) combine into the exact spec the native code carries
// out (native/fork.cc, SandboxSpec).
import { constants as osConstants } from 'node:os';
import type { NativeRootSpec, NativeSandboxSpec } from '../../native/index.js';
import { parseAllowEntry, type AllowEntry } from '../../protocol/net-addr.js';
import type { NormalizedSandboxDefaults, SandboxLayer } from '../../protocol/sandbox.js';
import type { Mount, SandboxRequest } from '../../protocol/spawn.js';
import { templateCovers, tmpDirsOf, withMounts, type RootPlan } from './root.js';

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

/** The child's root: every bind and copy, and the template to start from when it can. */
function rootSpec(compiled: { root: RootPlan; rootTemplateFd: number }, mounts: readonly Mount[], tmpBytes: number): NativeRootSpec {
  const plan = compiled.root;
  const binds = withMounts(plan.binds, mounts, plan.copies);
  const own = binds.slice(plan.binds.length);
  // What lies under /tmp (a checkout there) is lifted off the root and put back over the
  // child's own /tmp: the template's part, or in a root built whole, the spawn's mounts too.
  const templateTmp = tmpDirsOf([...plan.copies, ...plan.binds.map((b) => b.target)]);
  if (compiled.rootTemplateFd < 0 || !templateCovers(plan.binds, own)) {
    const { copies, links, copyBytes } = plan;
    return { binds, copies, links, copyBytes, tmpDirs: tmpDirsOf([...copies, ...binds.map((b) => b.target)]), tmpBytes, proc: true };
  }
  return { binds, tmpBytes, proc: true, templateFd: compiled.rootTemplateFd, templateBinds: own, templateTmpDirs: templateTmp };
}
