// Where a zygote keeps its children's cgroups, seen from outside (the bench may use only the
// package's public entry points, so this reads /proc and cgroupfs itself): a `zygote-PID`
// directory in each hierarchy that gives it the memory or pids controller, beside its own cgroup,
// holding one directory per child (child-N) and on v2, when the zygote is not in the root,
// `supervisor`, the leaf it moved itself into (zygote/sandbox/cgroups.ts).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

/** The leaf a v2 zygote outside the root moves itself into: not a child's cgroup. */
const SUPERVISOR = 'supervisor';

export interface CgroupDir {
  path: string;
  /** Pids in its cgroup.procs (empty: nothing runs in it). */
  pids: number[];
}

/**
 * The zygote-PID directories this zygote may have made, one per hierarchy with memory or pids
 * (v1: each controller's own; v2: the unified one), whether or not they exist (yet).
 */
export function zygoteCgroupTrees(zygotePid: number): string[] {
  const name = `zygote-${zygotePid}`;
  const mounts = cgroupMounts();
  const trees = new Set<string>();
  for (const line of readFileSync(`/proc/${zygotePid}/cgroup`, 'utf8').trim().split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[2] ? m[2].split(',') : [];
    const mount = m[2] === '' ? mounts.find((x) => x.v2) : mounts.find((x) => !x.v2 && controllers.some((c) => x.controllers.includes(c)));
    if (!mount || (m[2] !== '' && !controllers.some((c) => c === 'memory' || c === 'pids'))) continue;
    // The zygote's own cgroup, as a path in that mount; on v2 it may be in its own tree already.
    const rel = posix.relative(mount.root, m[3]);
    if (rel.startsWith('..')) continue;
    const own = join(mount.point, rel);
    const at = own.split('/').lastIndexOf(name);
    trees.add(at >= 0 ? own.split('/').slice(0, at + 1).join('/') : join(own, name));
  }
  return [...trees];
}

/** The children's cgroups in a tree (every subdirectory but the supervisor leaf), with their pids. */
export function childCgroups(tree: string): CgroupDir[] {
  let entries;
  try {
    entries = readdirSync(tree, { withFileTypes: true });
  } catch {
    return []; // not made (yet), or removed
  }
  const out: CgroupDir[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || e.name === SUPERVISOR) continue;
    const path = join(tree, e.name);
    let pids: number[] = [];
    try {
      pids = readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      // Removed while we listed.
      if (!existsSync(path)) continue;
    }
    out.push({ path, pids });
  }
  return out;
}

interface CgroupMount {
  point: string;
  /** The cgroup path mounted there (/ unless a cgroup namespace or a bind says otherwise). */
  root: string;
  v2: boolean;
  controllers: string[];
}

/** This process's cgroupfs mounts, from /proc/self/mountinfo (proc(5)). */
function cgroupMounts(): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const [fsType, , superOptions = ''] = line.slice(sep + 3).split(' ');
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ root: unescape(pre[3]), point: unescape(pre[4]), v2: fsType === 'cgroup2', controllers: superOptions.split(',') });
  }
  return out;
}
