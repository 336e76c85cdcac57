// Per-child cgroups for the memory and pids limits: made before fork, joined by the child in
// native code before any of its JS runs, read after reaping (did the OOM killer or the pids
// limit end it?), removed. cgroup v1 (this host) and v2 (modern hosts), detected at start.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCgroupFacts } from '../doctor/cgroups.js';

export interface CgroupLimits {
  memoryBytes?: number;
  pids?: number;
}

/** One child's cgroup(s): one directory on v2, one per controller on v1. */
export interface ChildCgroup {
  dirs: { memory: string | null; pids: string | null };
  /** O_WRONLY fds of cgroup.procs, for the child to write itself into (native closes nothing: the zygote does). */
  procsFds: number[];
}

type Layout = { version: 'v1'; memory: string | null; pids: string | null } | { version: 'v2'; dir: string };

/** The cgroups of one zygote: a parent per controller, a child cgroup per limited spawn. */
export class Cgroups {
  private layout: Layout | null = null;
  private parents: { memory: string | null; pids: string | null } | null = null;
  private seq = 0;
  /** Dead children's cgroups, removed when the serve loop is idle (rmdir can take ms). */
  private readonly toRemove: string[] = [];

  constructor(private readonly name: string) {}

  /** Makes the child's cgroup with its limits, ready to join. Throws naming the file and errno. */
  prepare(limits: CgroupLimits): ChildCgroup {
    const parents = this.ensureParents(limits);
    const leaf = `child-${++this.seq}`;
    const dirs = { memory: null as string | null, pids: null as string | null };
    const made: string[] = [];
    const fds: number[] = [];
    try {
      if (this.layout!.version === 'v2') {
        const dir = join(parents.memory ?? parents.pids!, leaf);
        mkdirSync(dir);
        made.push(dir);
        if (limits.memoryBytes !== undefined) {
          write(dir, 'memory.max', String(limits.memoryBytes));
          write(dir, 'memory.swap.max', '0');
          // The whole cgroup dies together on OOM: no half-killed step.
          write(dir, 'memory.oom.group', '1');
          dirs.memory = dir;
        }
        if (limits.pids !== undefined) {
          write(dir, 'pids.max', String(limits.pids));
          dirs.pids = dir;
        }
        fds.push(openSync(join(dir, 'cgroup.procs'), 'w'));
      } else {
        if (limits.memoryBytes !== undefined) {
          const dir = join(parents.memory!, leaf);
          mkdirSync(dir);
          made.push(dir);
          // limit_in_bytes first: memsw may never be below it. memsw = limit: no swap at all.
          write(dir, 'memory.limit_in_bytes', String(limits.memoryBytes));
          if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) write(dir, 'memory.memsw.limit_in_bytes', String(limits.memoryBytes));
          dirs.memory = dir;
          fds.push(openSync(join(dir, 'cgroup.procs'), 'w'));
        }
        if (limits.pids !== undefined) {
          const dir = join(parents.pids!, leaf);
          mkdirSync(dir);
          made.push(dir);
          write(dir, 'pids.max', String(limits.pids));
          dirs.pids = dir;
          fds.push(openSync(join(dir, 'cgroup.procs'), 'w'));
        }
      }
    } catch (err) {
      for (const fd of fds) closeSync(fd);
      for (const dir of made.reverse()) tryRmdir(dir);
      throw err;
    }
    return { dirs, procsFds: fds };
  }

  /** After reaping: which limit, if any, ended the child. Its cgroup is queued for removal. */
  finish(cg: ChildCgroup): 'oom' | 'pids-limit' | null {
    let hit: 'oom' | 'pids-limit' | null = null;
    if (cg.dirs.memory) {
      const file = this.layout!.version === 'v2' ? 'memory.events' : 'memory.oom_control';
      if (counter(readOr(join(cg.dirs.memory, file)), 'oom_kill') > 0) hit = 'oom';
    }
    if (!hit && cg.dirs.pids && counter(readOr(join(cg.dirs.pids, 'pids.events')), 'max') > 0) hit = 'pids-limit';
    for (const dir of new Set([cg.dirs.memory, cg.dirs.pids])) if (dir) this.toRemove.push(dir);
    return hit;
  }

  /** Whether dead children's cgroups wait for removal. */
  get removalPending(): boolean {
    return this.toRemove.length > 0;
  }

  /**
   * Removes queued cgroups. Removing a memory cgroup that was charged can take milliseconds
   * (the kernel offlines it), so the serve loop does it only when nothing else is ready.
   */
  sweep(): void {
    for (const dir of this.toRemove.splice(0)) tryRmdir(dir);
  }

  /** Removes the zygote's parent cgroups (at shutdown, once every child is reaped). */
  removeParents(): void {
    this.sweep();
    if (!this.parents) return;
    for (const dir of new Set([this.parents.memory, this.parents.pids])) if (dir) tryRmdir(dir);
  }

  private ensureParents(limits: CgroupLimits): { memory: string | null; pids: string | null } {
    if (!this.layout) this.layout = detect();
    const l = this.layout;
    if (limits.memoryBytes !== undefined && (l.version === 'v1' ? l.memory : l.dir) === null) {
      throw new Error('no usable memory cgroup controller on this host (zygote doctor says why)');
    }
    if (limits.pids !== undefined && (l.version === 'v1' ? l.pids : l.dir) === null) {
      throw new Error('no usable pids cgroup controller on this host (zygote doctor says why)');
    }
    if (this.parents) return this.parents;
    if (l.version === 'v2') {
      // v2's no-internal-process rule: a cgroup that hands controllers to children may hold no
      // process. The zygote moves itself into a leaf of its own, then delegates memory and pids.
      const parent = join(l.dir, this.name);
      mkdirIfMissing(parent);
      mkdirIfMissing(join(parent, 'supervisor'));
      write(join(parent, 'supervisor'), 'cgroup.procs', String(process.pid));
      write(l.dir, 'cgroup.subtree_control', '+memory +pids');
      write(parent, 'cgroup.subtree_control', '+memory +pids');
      this.parents = { memory: parent, pids: parent };
    } else {
      const at = (base: string | null) => {
        if (base === null) return null;
        const dir = join(base, this.name);
        mkdirIfMissing(dir);
        return dir;
      };
      this.parents = { memory: at(l.memory), pids: at(l.pids) };
    }
    return this.parents;
  }
}

function detect(): Layout {
  const f = readCgroupFacts();
  const usable = (c: typeof f.memory) => (c.version !== null && c.dir !== null && c.exists && c.writeError === null ? c : null);
  const memory = usable(f.memory);
  const pids = usable(f.pids);
  if (memory?.version === 'v2' || pids?.version === 'v2') return { version: 'v2', dir: (memory ?? pids)!.dir! };
  return { version: 'v1', memory: memory?.dir ?? null, pids: pids?.dir ?? null };
}

function write(dir: string, file: string, value: string): void {
  try {
    writeFileSync(join(dir, file), value);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`cgroup: write ${JSON.stringify(value)} to ${join(dir, file)} failed: ${e.code} (${e.message.split(', ')[0].replace(/^\w+: /, '')}). Give the zygote a writable cgroup subtree.`, { cause: err });
  }
}

function mkdirIfMissing(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Still busy or already gone; nothing else can be done from here.
  }
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The number after `key` in a flat-keyed cgroup file ("oom_kill 1", "max 3"). */
function counter(text: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}
