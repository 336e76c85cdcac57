// cgroups: which hierarchy (v1, v2 or both) provides the memory and pids controllers, and
// whether this process could make child cgroups there. Read-only: nothing is created.
//
// Like nsjail's detect_cgroupv2 (statfs on /sys/fs/cgroup), but from /proc/self/mountinfo, which
// also tells the hybrid layout (v1 controllers plus a v2 "unified" mount) apart.
import { join } from 'node:path';
import { exists, kernelAtLeast, readText, readValue, writeDenied } from './proc.js';
import type { Finding } from './types.js';

export type CgroupMode = 'v1' | 'v2' | 'hybrid' | 'none';

export interface Mount {
  /** Root of the mount within its filesystem (a cgroup path for cgroupfs). */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

export interface ProcCgroupEntry {
  hierarchy: number;
  /** Controllers (and name=... for named v1 hierarchies); empty for v2's "0::". */
  controllers: string[];
  path: string;
}

export interface V1Hierarchy {
  mountPoint: string;
  root: string;
  controllers: string[];
  /** name=systemd and the like. */
  name: string | null;
}

export interface CgroupLayout {
  mode: CgroupMode;
  v1: V1Hierarchy[];
  v2: { mountPoint: string; root: string } | null;
}

export interface ControllerInfo {
  controller: string;
  /** Which hierarchy provides it to this process; null when none does. */
  version: 'v1' | 'v2' | null;
  /** This process's cgroup directory in that hierarchy. */
  dir: string | null;
  exists: boolean;
  /** null when this process may write into dir, else the errno code of access(W_OK). */
  writeError: string | null;
  /** /proc/cgroups: whether the kernel has it at all, and whether it is enabled. */
  inKernel: boolean;
  enabled: boolean;
}

/** Unescapes mountinfo's octal escapes (\040 for a space). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** /proc/self/mountinfo lines -> mounts (see proc(5)). */
export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    if (pre.length < 5 || post.length < 3) continue;
    mounts.push({ root: unescape(pre[3]), mountPoint: unescape(pre[4]), fsType: post[0], superOptions: post[2].split(',') });
  }
  return mounts;
}

/** /proc/self/cgroup lines -> entries ("4:memory:/a/b", "0::/"). */
export function parseProcCgroup(text: string): ProcCgroupEntry[] {
  const entries: ProcCgroupEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    entries.push({ hierarchy: Number(m[1]), controllers: m[2] ? m[2].split(',') : [], path: m[3] });
  }
  return entries;
}

export interface KernelController {
  name: string;
  hierarchy: number;
  enabled: boolean;
}

/** /proc/cgroups (v1-capable controllers the kernel has; hierarchy 0 = unbound or on v2). */
export function parseProcCgroups(text: string): KernelController[] {
  const out: KernelController[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.trim()) continue;
    const [name, hierarchy, , enabled] = line.trim().split(/\s+/);
    if (name) out.push({ name, hierarchy: Number(hierarchy), enabled: enabled === '1' });
  }
  return out;
}

/** The layout of cgroup mounts: v1 hierarchies with controllers, the v2 mount, and the mode. */
export function detectCgroupLayout(mounts: Mount[], known: string[]): CgroupLayout {
  const v1: V1Hierarchy[] = [];
  let v2: CgroupLayout['v2'] = null;
  const seen = new Set<string>();
  for (const m of mounts) {
    if (m.fsType === 'cgroup2') {
      // The first cgroup2 mount; prefer the conventional places when there are several.
      if (v2 === null || m.mountPoint === '/sys/fs/cgroup') v2 = { mountPoint: m.mountPoint, root: m.root };
    } else if (m.fsType === 'cgroup') {
      const key = m.superOptions.filter((o) => known.includes(o) || o.startsWith('name=')).sort().join(',');
      if (seen.has(key)) continue; // the same hierarchy bind-mounted again
      seen.add(key);
      const name = m.superOptions.find((o) => o.startsWith('name='))?.slice(5) ?? null;
      v1.push({ mountPoint: m.mountPoint, root: m.root, controllers: m.superOptions.filter((o) => known.includes(o)), name });
    }
  }
  const v1WithControllers = v1.some((h) => h.controllers.length > 0);
  const mode: CgroupMode = v1WithControllers && v2 ? 'hybrid' : v1WithControllers ? 'v1' : v2 ? 'v2' : v1.length > 0 ? 'v1' : 'none';
  return { mode, v1, v2 };
}

/** mountPoint + the part of path below the mount's root (paths outside it are taken as they are). */
export function cgroupDir(mountPoint: string, mountRoot: string, path: string): string {
  let rel = path;
  if (mountRoot !== '/' && (path === mountRoot || path.startsWith(`${mountRoot}/`))) rel = path.slice(mountRoot.length) || '/';
  const dir = join(mountPoint, rel);
  return dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
}

export interface CgroupFacts {
  layout: CgroupLayout;
  /** Controllers this process's v2 cgroup may enable for its children (its cgroup.controllers). */
  v2Controllers: string[];
  /** The v2 root's cgroup.controllers. */
  v2RootControllers: string[];
  v2Dir: string | null;
  /** v2Dir is the hierarchy's root (it has no cgroup.type; a cgroup namespace's root does). */
  v2DirIsRoot: boolean;
  self: ProcCgroupEntry[];
  memory: ControllerInfo;
  pids: ControllerInfo;
  /** v1 memory's swap accounting file exists in this process's memory cgroup. */
  memswAccounting: boolean | null;
  swapTotalKb: number | null;
}

function words(text: string | null): string[] {
  return text ? text.trim().split(/\s+/).filter(Boolean) : [];
}

export function readCgroupFacts(): CgroupFacts {
  const kernel = parseProcCgroups(readText('/proc/cgroups') ?? '');
  // v1 controllers the kernel knows; pids/memory may be absent from /proc/cgroups on v2-only kernels.
  const known = [...new Set([...kernel.map((k) => k.name), 'memory', 'pids', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'io', 'devices', 'freezer', 'net_cls', 'net_prio', 'perf_event', 'hugetlb', 'rdma', 'misc'])];
  const layout = detectCgroupLayout(parseMountinfo(readText('/proc/self/mountinfo') ?? ''), known);
  const self = parseProcCgroup(readText('/proc/self/cgroup') ?? '');
  const v2Self = self.find((e) => e.hierarchy === 0 && e.controllers.length === 0);
  const v2Dir = layout.v2 && v2Self ? cgroupDir(layout.v2.mountPoint, layout.v2.root, v2Self.path) : null;
  const v2RootControllers = layout.v2 ? words(readValue(join(layout.v2.mountPoint, 'cgroup.controllers'))) : [];
  const v2Controllers = v2Dir ? words(readValue(join(v2Dir, 'cgroup.controllers'))) : [];

  const controller = (name: string): ControllerInfo => {
    const k = kernel.find((c) => c.name === name);
    const info: ControllerInfo = { controller: name, version: null, dir: null, exists: false, writeError: null, inKernel: k !== undefined || v2RootControllers.includes(name), enabled: k?.enabled ?? v2RootControllers.includes(name) };
    const h = layout.v1.find((x) => x.controllers.includes(name));
    const entry = self.find((e) => e.controllers.includes(name));
    if (h) {
      info.version = 'v1';
      info.dir = cgroupDir(h.mountPoint, h.root, entry?.path ?? '/');
    } else if (v2Dir && v2Controllers.includes(name)) {
      info.version = 'v2';
      info.dir = v2Dir;
    }
    if (info.dir) {
      info.exists = exists(info.dir);
      info.writeError = info.exists ? writeDenied(info.dir) : 'ENOENT';
    }
    return info;
  };
  const memory = controller('memory');
  const swap = /^SwapTotal:\s+(\d+)/m.exec(readText('/proc/meminfo') ?? '');
  return {
    layout,
    v2Controllers,
    v2RootControllers,
    v2Dir,
    v2DirIsRoot: v2Dir !== null && exists(v2Dir) && !exists(join(v2Dir, 'cgroup.type')),
    self,
    memory,
    pids: controller('pids'),
    memswAccounting: memory.version === 'v1' && memory.dir ? exists(join(memory.dir, 'memory.memsw.limit_in_bytes')) : null,
    swapTotalKb: swap ? Number(swap[1]) : null,
  };
}

/** The overview line: mode, hierarchies, this process's place in them, and how children are killed. */
export function cgroupOverview(f: CgroupFacts): Finding {
  const { layout } = f;
  const data = { mode: layout.mode, v1: layout.v1, v2: layout.v2, v2RootControllers: f.v2RootControllers, v2Controllers: f.v2Controllers, self: f.self };
  if (layout.mode === 'none') {
    return { layer: 'cgroups', status: 'missing', detail: 'no cgroup filesystem is mounted', fix: 'mount cgroup2 on /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup), or run the zygote where it is mounted', data };
  }
  const parts: string[] = [`mode ${layout.mode}`];
  const v1 = layout.v1.filter((h) => h.controllers.length > 0).flatMap((h) => h.controllers).sort();
  if (v1.length) parts.push(`v1 controllers: ${v1.join(' ')}`);
  if (layout.v2) parts.push(`v2 at ${layout.v2.mountPoint} with [${f.v2RootControllers.join(' ')}]`);
  const v1Has = (c: string) => layout.v1.some((h) => h.controllers.includes(c));
  const kill = layout.mode !== 'v1' && kernelAtLeast(5, 14) && f.v2Dir ? 'cgroup.kill (v2)' : v1Has('freezer') ? 'the v1 freezer, then SIGKILL to cgroup.procs' : 'SIGKILL to each pid in cgroup.procs (no freezer)';
  parts.push(`killing a child's cgroup: ${kill}`);
  return { layer: 'cgroups', status: 'ok', detail: parts.join('; '), data };
}

const LIMITS: Record<string, { v1: string; v2: string; what: string }> = {
  memory: { v1: 'memory.limit_in_bytes and memory.memsw.limit_in_bytes', v2: 'memory.max, memory.swap.max and memory.oom.group', what: 'memory' },
  pids: { v1: 'pids.max', v2: 'pids.max', what: 'the number of processes and threads' },
};

/** One controller's line: where it lives, whether this process may create child cgroups in it. */
export function controllerFinding(f: CgroupFacts, c: ControllerInfo): Finding {
  const layer = `cgroup-${c.controller}`;
  const data = { ...c, ...(c.controller === 'memory' ? { memswAccounting: f.memswAccounting, swapTotalKb: f.swapTotalKb } : {}) };
  const limits = LIMITS[c.controller];
  if (c.version === null) {
    let why: string;
    let fix: string;
    if (!c.inKernel) {
      why = `the kernel has no ${c.controller} controller`;
      fix = `use a kernel built with ${c.controller === 'memory' ? 'CONFIG_MEMCG' : 'CONFIG_CGROUP_PIDS'}`;
    } else if (!c.enabled) {
      why = `the ${c.controller} controller is disabled at boot`;
      fix = `remove cgroup_disable=${c.controller} from the kernel command line`;
    } else if (f.layout.v2 && f.v2RootControllers.includes(c.controller)) {
      why = `v2 has ${c.controller} at its root, but it is not delegated to this process's cgroup (${f.v2Dir ?? '?'})`;
      fix = `enable +${c.controller} in cgroup.subtree_control of every ancestor, or run the zygote in a delegated scope (systemd: Delegate=yes; a container with its own cgroup namespace and writable /sys/fs/cgroup)`;
    } else {
      why = `no mounted hierarchy provides ${c.controller}`;
      fix = f.layout.v2
        ? `it is bound to no hierarchy: mount a v1 hierarchy for it, or free it for v2 (cgroup_no_v1=${c.controller} or all on the kernel command line)`
        : `mount a hierarchy with it: mount -t cgroup2 none /sys/fs/cgroup (or v1: mount -t cgroup -o ${c.controller} none /sys/fs/cgroup/${c.controller})`;
    }
    return { layer, status: 'missing', detail: `${why}: the sandbox cannot limit ${limits.what}`, fix, data };
  }
  const where = `${c.version} at ${c.dir}`;
  if (!c.exists) {
    return { layer, status: 'unknown', detail: `${where}, but that directory does not exist (a cgroup namespace or a bind mount without this process's cgroup?)`, fix: 'mount the cgroup filesystem so that this process\'s own cgroup is visible', data };
  }
  if (c.writeError) {
    return {
      layer,
      status: 'missing',
      detail: `${where} is not writable by this process (${c.writeError}): it cannot create a child cgroup per step`,
      fix:
        c.writeError === 'EROFS'
          ? 'the cgroup filesystem is mounted read-only (a container default): give the zygote a writable cgroup subtree (docker --cgroupns=private with a writable /sys/fs/cgroup, or systemd Delegate=yes)'
          : 'run the zygote as root or as the owner of a delegated cgroup subtree (systemd: Delegate=yes; chown the subtree to its uid)',
      data,
    };
  }
  // v2's no-internal-process rule (zygote/sandbox/cgroups.ts): outside the root, the zygote must be its cgroup's only process.
  const how =
    c.version === 'v1'
      ? `limits with ${limits.v1}`
      : f.v2DirIsRoot
        ? `limits with ${limits.v2} in per-child cgroups under the hierarchy's root, where the zygote stays`
        : `limits with ${limits.v2}; the zygote must be the only process of ${c.dir}: it moves into a leaf there and writes +${c.controller} to its cgroup.subtree_control, and undoes both at exit`;
  if (c.controller === 'memory' && c.version === 'v1' && f.memswAccounting === false) {
    const swapping = (f.swapTotalKb ?? 0) > 0;
    const detail = `${where}, writable; no swap accounting (memory.memsw.* absent)${swapping ? ', and this host has swap: a child can exceed its memory limit by swapping' : ' (this host has no swap, so the limit holds)'}`;
    if (swapping) return { layer, status: 'degraded', detail, fix: 'boot with swapaccount=1 (or cgroup v2, where memory.swap.max is always available)', data };
    return { layer, status: 'ok', detail, data };
  }
  return { layer, status: 'ok', detail: `${where}, writable; ${how}`, data };
}

export function probeCgroups(): Finding[] {
  const facts = readCgroupFacts();
  return [cgroupOverview(facts), controllerFinding(facts, facts.memory), controllerFinding(facts, facts.pids)];
}
