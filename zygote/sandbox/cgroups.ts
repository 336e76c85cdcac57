// Per-child cgroups for the memory and pids limits: made before fork, joined by the child in
// native code before any of its JS runs, read after reaping (did the OOM killer or the pids
// limit end it? what did it use?), removed. cgroup v1 (this host) and v2 (modern hosts),
// detected at start. Everything made here is removed again when the zygote exits.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCgroupFacts } from '../doctor/cgroups.js';
import { isLiveZygote, pidOfName } from './dead-zygotes.js';

export interface CgroupLimits {
  memoryBytes?: number;
  pids?: number;
}

/** One child's cgroup(s): one directory on v2, one per controller on v1. */
export interface ChildCgroup {
  /** Where each of its limits is set (null: no such limit). */
  dirs: { memory: string | null; pids: string | null };
  /** Every directory made for it; on v2 the one directory, whatever its limits. */
  made: string[];
  /** O_WRONLY fds of cgroup.procs, for the child to write itself into (native closes nothing: the zygote does). */
  procsFds: number[];
}

/** What a child's cgroup measured, read after reaping, before it is removed. */
export interface CgroupFigures {
  /** The limit that ended the child, by the cgroup's own counters. */
  hit: 'oom' | 'pids-limit' | null;
  /** Peak memory charged to it (v2 memory.peak, v1 memory.max_usage_in_bytes): its processes, its /tmp, its page cache. */
  memoryPeakBytes: number | null;
  /** CPU time of all its processes (v2 cpu.stat usage_usec, v1 cpuacct.usage where cpuacct shares the hierarchy). */
  cpuUs: number | null;
}

/**
 * v1: the zygote's own cgroup in each controller's hierarchy. v2: its own cgroup at start
 * (home), and whether that is the hierarchy's root, which alone may hold processes beside
 * child cgroups that have controllers.
 */
type Layout = { version: 'v1'; memory: string | null; pids: string | null } | { version: 'v2'; home: string; isRoot: boolean };

/** On v2, where the zygote put itself and what it changed in home, to undo at exit. */
interface V2Placement {
  /** Its leaf (parent/supervisor) when home is not the root; null when it stayed in the root. */
  leaf: string | null;
  /** Controllers it enabled in home's cgroup.subtree_control (undone at exit unless home is the root). */
  enabledAtHome: string[];
}

const V2_CONTROLLERS = ['memory', 'pids'];

/** The cgroups of one zygote: a parent per controller, a child cgroup per limited spawn. */
export class Cgroups {
  private layout: Layout | null = null;
  private parents: { memory: string | null; pids: string | null } | null = null;
  private placement: V2Placement | null = null;
  private seq = 0;
  /** A dead zygote's tree of our name held child cgroups still in use: freeLeaf must look. */
  private stale = false;
  /** Dead children's cgroups, removed when the serve loop is idle (rmdir can take ms). */
  private readonly toRemove: string[] = [];

  constructor(private readonly name: string) {}

  /** Makes the child's cgroup with its limits, ready to join. Throws naming the file and errno. */
  prepare(limits: CgroupLimits): ChildCgroup {
    const cg = this.make(limits, { memory: limits.memoryBytes !== undefined, pids: limits.pids !== undefined });
    try {
      this.applyLimits(cg, limits);
    } catch (err) {
      this.discard(cg);
      throw err;
    }
    return cg;
  }

  /**
   * A pool child's cgroup: every controller this host has, no limits yet (applyLimits writes
   * them at its claim, before anything of the spawn runs). Null when the host has none.
   */
  preparePooled(): ChildCgroup | null {
    this.ensureParents({});
    const l = this.layout!;
    const has = l.version === 'v2' ? { memory: true, pids: true } : { memory: l.memory !== null, pids: l.pids !== null };
    if (!has.memory && !has.pids) return null;
    return this.make({}, has);
  }

  /**
   * Writes limits into a child's cgroup (made by prepare or preparePooled with each limited
   * controller). Throws naming the file and errno; a limit whose controller it lacks too.
   */
  applyLimits(cg: ChildCgroup, limits: CgroupLimits): void {
    const v2 = this.layout!.version === 'v2';
    if (limits.memoryBytes !== undefined) {
      const dir = cg.dirs.memory;
      if (dir === null) throw new Error('no memory cgroup for this child');
      if (v2) {
        write(dir, 'memory.max', String(limits.memoryBytes));
        write(dir, 'memory.swap.max', '0');
        // The whole cgroup dies together on OOM: no half-killed step.
        write(dir, 'memory.oom.group', '1');
      } else {
        // limit_in_bytes first: memsw may never be below it. memsw = limit: no swap at all.
        write(dir, 'memory.limit_in_bytes', String(limits.memoryBytes));
        if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) write(dir, 'memory.memsw.limit_in_bytes', String(limits.memoryBytes));
      }
    }
    if (limits.pids !== undefined) {
      if (cg.dirs.pids === null) throw new Error('no pids cgroup for this child');
      write(cg.dirs.pids, 'pids.max', String(limits.pids));
    }
  }

  /**
   * Health: what stops this zygote from giving children the limits it must (zygote health).
   * Makes its parent cgroups if no spawn has yet, then checks that each is still there (a
   * hierarchy unmounted, or a tree removed by hand, fails every limited spawn). Empty when fine.
   */
  healthProblems(needs: { memory: boolean; pids: boolean }): string[] {
    let parents: { memory: string | null; pids: string | null };
    try {
      parents = this.ensureParents({ ...(needs.memory && { memoryBytes: 1 }), ...(needs.pids && { pids: 1 }) });
    } catch (err) {
      return [`cannot make cgroups: ${(err as Error).message}`];
    }
    const problems: string[] = [];
    for (const c of ['memory', 'pids'] as const) {
      const dir = parents[c];
      if (dir !== null && !existsSync(dir)) problems.push(`the ${c} cgroup ${dir} is gone: limited spawns fail; restart the zygote`);
    }
    return problems;
  }

  /** Dead children's cgroups not removed yet (the metrics count them as in use). */
  get pendingRemovals(): number {
    return this.toRemove.length;
  }

  /** A cgroup that was never joined (a failed spawn): its fds closed, its directories removed. */
  discard(cg: ChildCgroup): void {
    for (const fd of cg.procsFds) closeSync(fd);
    cg.procsFds = [];
    for (const dir of [...cg.made].reverse()) tryRmdir(dir);
  }

  /** The directories (one on v2, one per controller on v1) and their cgroup.procs fds. */
  private make(limits: CgroupLimits, want: { memory: boolean; pids: boolean }): ChildCgroup {
    const parents = this.ensureParents(limits);
    const leaf = this.freeLeaf([parents.memory, parents.pids]);
    const dirs = { memory: null as string | null, pids: null as string | null };
    const made: string[] = [];
    const fds: number[] = [];
    try {
      if (this.layout!.version === 'v2') {
        const dir = join(parents.memory ?? parents.pids!, leaf);
        mkdirSync(dir);
        made.push(dir);
        if (want.memory) dirs.memory = dir;
        if (want.pids) dirs.pids = dir;
        fds.push(openSync(join(dir, 'cgroup.procs'), 'w'));
      } else {
        for (const c of ['memory', 'pids'] as const) {
          if (!want[c]) continue;
          const dir = join(parents[c]!, leaf);
          mkdirSync(dir);
          made.push(dir);
          dirs[c] = dir;
          fds.push(openSync(join(dir, 'cgroup.procs'), 'w'));
        }
      }
    } catch (err) {
      for (const fd of fds) closeSync(fd);
      for (const dir of [...made].reverse()) tryRmdir(dir);
      throw err;
    }
    return { dirs, made, procsFds: fds };
  }

  /**
   * After reaping: which limit, if any, ended the child, and what it used. Its cgroup is
   * queued for removal. The figures are the cgroup's because wait4's are not the step's: with
   * memory.oom.group the OOM killer ends the init with the step, before it can reap it, so the
   * zygote's wait4 counts the init alone (issue 18: a 64 MiB step reported 15 MB and 0.1 s).
   */
  finish(cg: ChildCgroup): CgroupFigures {
    const figures = this.figures(cg);
    this.toRemove.push(...cg.made);
    return figures;
  }

  /**
   * Which limit ended the child and what it used, read without removing anything: once its
   * step has exited (the init's exit record), before the init itself is reaped.
   */
  figures(cg: ChildCgroup): CgroupFigures {
    const v2 = this.layout!.version === 'v2';
    let hit: CgroupFigures['hit'] = null;
    if (cg.dirs.memory) {
      const file = v2 ? 'memory.events' : 'memory.oom_control';
      if (counter(readOr(join(cg.dirs.memory, file)), 'oom_kill') > 0) hit = 'oom';
    }
    if (!hit && cg.dirs.pids && counter(readOr(join(cg.dirs.pids, 'pids.events')), 'max') > 0) hit = 'pids-limit';
    let memoryPeakBytes: number | null = null;
    let cpuUs: number | null = null;
    if (v2) {
      // One directory, with memory and pids enabled by its parent whatever its own limits.
      memoryPeakBytes = numberIn(readOr(join(cg.made[0], 'memory.peak')));
      const usage = counter(readOr(join(cg.made[0], 'cpu.stat')), 'usage_usec', -1);
      cpuUs = usage >= 0 ? usage : null;
    } else {
      if (cg.dirs.memory) memoryPeakBytes = numberIn(readOr(join(cg.dirs.memory, 'memory.max_usage_in_bytes')));
      // cpuacct is not a hierarchy of its own here (that would cost another move per spawn);
      // where it is mounted with memory or pids, its counter is in the same directory.
      for (const dir of cg.made) {
        const ns = numberIn(readOr(join(dir, 'cpuacct.usage')));
        if (ns !== null) cpuUs = ns / 1000;
      }
    }
    return { hit, memoryPeakBytes, cpuUs };
  }

  /**
   * At start: removes the trees of zygotes that died without cleaning up (SIGKILL), found
   * beside where this zygote makes its own: `zygote-PID` of a pid that is no longer a zygote
   * (dead-zygotes.ts). A tree with a cgroup still in use (a process of it still alive) stays.
   * Returns what was removed and what could not be, for the log.
   */
  sweepDeadZygotes(): { removed: string[]; left: string[] } {
    if (!this.layout) this.layout = detect();
    const l = this.layout;
    const bases = l.version === 'v2' ? [l.home] : [l.memory, l.pids];
    const removed: string[] = [];
    const left: string[] = [];
    for (const base of new Set(bases)) {
      if (base === null) continue;
      let names: string[];
      try {
        names = readdirSync(base);
      } catch {
        continue;
      }
      for (const name of names) {
        const pid = pidOfName('zygote-', name);
        if (pid === null || name === this.name || isLiveZygote(pid)) continue;
        const dir = join(base, name);
        for (const sub of subdirs(dir)) tryRmdir(join(dir, sub));
        tryRmdir(dir);
        (existsSync(dir) ? left : removed).push(dir);
      }
    }
    return { removed, left };
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

  /**
   * At shutdown, once every child is reaped: removes every cgroup this zygote made and, on v2,
   * undoes what it changed to make them. Returns what could not be undone, each naming the
   * file and errno (for the log); an empty list means nothing of the zygote's is left.
   */
  removeAll(): string[] {
    const problems: string[] = [];
    const rm = (dir: string) => {
      try {
        rmdirSync(dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') problems.push(`rmdir ${dir}: ${code}`);
      }
    };
    for (const dir of this.toRemove.splice(0)) rm(dir);
    if (!this.parents) return problems;
    const parents = [...new Set([this.parents.memory, this.parents.pids])].filter((d): d is string => d !== null);
    const l = this.layout!;
    const p = this.placement;
    if (l.version === 'v2' && p?.leaf) {
      // A process cannot remove the cgroup it is in: go back home first. Home may take
      // processes again only once no controller is enabled in its subtree_control, and that
      // can be disabled only once no child of home enables it in turn (cgroup-v2.rst, "No
      // Internal Process Constraint"); so disable from the bottom up, then move, then remove.
      const parent = parents[0];
      try {
        write(parent, 'cgroup.subtree_control', V2_CONTROLLERS.map((c) => `-${c}`).join(' '));
        const others = readdirSync(l.home, { withFileTypes: true }).filter((e) => e.isDirectory() && join(l.home, e.name) !== parent);
        if (p.enabledAtHome.length > 0 && others.length === 0) {
          write(l.home, 'cgroup.subtree_control', p.enabledAtHome.map((c) => `-${c}`).join(' '));
        }
        write(l.home, 'cgroup.procs', String(process.pid));
      } catch (err) {
        problems.push((err as Error).message);
        return problems;
      }
      rm(p.leaf);
    }
    for (const dir of parents) rm(dir);
    return problems;
  }

  /**
   * The next child-N name free in every parent. A zygote's tree is named by its pid, and pids are
   * reused: a zygote that was killed (SIGKILL: no cleanup) may have left a tree of that name with
   * child cgroups that could not be removed yet. Those names are skipped, never reused.
   */
  private freeLeaf(parents: (string | null)[]): string {
    // The usual case, a tree of our own: no lookups on the spawn path.
    if (!this.stale) return `child-${++this.seq}`;
    for (;;) {
      const leaf = `child-${++this.seq}`;
      if (parents.every((p) => p === null || !existsSync(join(p, leaf)))) return leaf;
    }
  }

  private ensureParents(limits: CgroupLimits): { memory: string | null; pids: string | null } {
    if (!this.layout) this.layout = detect();
    const l = this.layout;
    if (limits.memoryBytes !== undefined && (l.version === 'v1' ? l.memory : l.home) === null) {
      throw new Error('no usable memory cgroup controller on this host (zygote doctor says why)');
    }
    if (limits.pids !== undefined && (l.version === 'v1' ? l.pids : l.home) === null) {
      throw new Error('no usable pids cgroup controller on this host (zygote doctor says why)');
    }
    if (this.parents) return this.parents;
    if (l.version === 'v2') {
      const parent = this.placeV2(l.home, l.isRoot);
      this.parents = { memory: parent, pids: parent };
    } else {
      const at = (base: string | null) => {
        if (base === null) return null;
        const dir = join(base, this.name);
        // A tree of this name already there is a dead zygote's with the same pid: its empty
        // child cgroups go now, the rest are skipped (freeLeaf).
        if (mkdirIfMissing(dir)) this.stale = sweepStaleChildren(dir) || this.stale;
        return dir;
      };
      this.parents = { memory: at(l.memory), pids: at(l.pids) };
    }
    return this.parents;
  }

  /**
   * v2: makes home/NAME with memory and pids enabled for its children, and returns it.
   * v2's no-internal-process rule: a cgroup other than the root that enables controllers for
   * its children may hold no process. In the root (a host's or a VM's whole hierarchy) the
   * zygote stays where it is. Elsewhere (a systemd Delegate=yes unit, a container's cgroup
   * namespace) it must be home's only process: it moves into NAME/supervisor, a leaf, and
   * enables the controllers in home; removeAll() undoes both. If anything fails on the way,
   * what was done is undone and the error says what to change.
   */
  private placeV2(home: string, isRoot: boolean): string {
    const parent = join(home, this.name);
    const leaf = isRoot ? null : join(parent, 'supervisor');
    const enabled = words(readOr(join(home, 'cgroup.subtree_control')));
    const missing = V2_CONTROLLERS.filter((c) => !enabled.includes(c));
    let moved = false;
    let changedHome = false;
    try {
      if (mkdirIfMissing(parent)) this.stale = sweepStaleChildren(parent) || this.stale;
      if (leaf) {
        mkdirIfMissing(leaf);
        write(leaf, 'cgroup.procs', String(process.pid));
        moved = true;
      }
      if (missing.length > 0) {
        write(home, 'cgroup.subtree_control', missing.map((c) => `+${c}`).join(' '), isRoot ? undefined : sharedHomeHint(home));
        changedHome = true;
      }
      write(parent, 'cgroup.subtree_control', V2_CONTROLLERS.map((c) => `+${c}`).join(' '));
    } catch (err) {
      if (changedHome && !isRoot) tryWrite(home, 'cgroup.subtree_control', missing.map((c) => `-${c}`).join(' '));
      if (moved) tryWrite(home, 'cgroup.procs', String(process.pid));
      if (leaf) tryRmdir(leaf);
      tryRmdir(parent);
      throw err;
    }
    // The root's subtree_control is the whole host's (systemd enables these at boot): never undone.
    this.placement = { leaf, enabledAtHome: isRoot ? [] : missing };
    return parent;
  }
}

function detect(): Layout {
  const f = readCgroupFacts();
  const usable = (c: typeof f.memory) => (c.version !== null && c.dir !== null && c.exists && c.writeError === null ? c : null);
  const memory = usable(f.memory);
  const pids = usable(f.pids);
  if (memory?.version === 'v2' || pids?.version === 'v2') {
    const home = (memory ?? pids)!.dir!;
    // Only the root lacks cgroup.type (a cgroup namespace's root has it: it is not the root).
    return { version: 'v2', home, isRoot: !existsSync(join(home, 'cgroup.type')) };
  }
  return { version: 'v1', memory: memory?.dir ?? null, pids: pids?.dir ?? null };
}

/** Why enabling controllers in a non-root home fails with EBUSY, and what to do about it. */
function sharedHomeHint(home: string): string {
  const others = words(readOr(join(home, 'cgroup.procs'))).filter((pid) => pid !== String(process.pid));
  const who = others.length > 0 ? `other processes share it (pids ${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''})` : 'it holds other processes';
  return `On cgroup v2 the zygote needs a cgroup of its own to delegate memory and pids from, and ${home} is not: ${who}. Start the zygote as the only process of its cgroup (zygote serve as its own systemd unit with Delegate=yes, or its own container with a cgroup namespace), see README "cgroup v1 and v2".`;
}

/** Writes value to dir/file; throws naming both, the errno and what to do (hint where EBUSY is known). */
function write(dir: string, file: string, value: string, busyHint?: string): void {
  try {
    writeFileSync(join(dir, file), value);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const fix = e.code === 'EBUSY' && busyHint ? busyHint : 'Give the zygote a writable cgroup subtree.';
    const error = new Error(`cgroup: write ${JSON.stringify(value)} to ${join(dir, file)} failed: ${e.code} (${e.message.split(', ')[0].replace(/^\w+: /, '')}). ${fix}`, { cause: err });
    (error as NodeJS.ErrnoException).code = e.code;
    throw error;
  }
}

function tryWrite(dir: string, file: string, value: string): void {
  try {
    writeFileSync(join(dir, file), value);
  } catch {
    // Undoing after a failure: the original error is the one worth reporting.
  }
}

/** mkdir; true when it was already there. */
function mkdirIfMissing(dir: string): boolean {
  try {
    mkdirSync(dir);
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return true;
  }
}

/**
 * Removes the child-N cgroups a dead zygote left in dir (an rmdir fails on one still in use);
 * true when one is left.
 */
function sweepStaleChildren(dir: string): boolean {
  let left = false;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith('child-')) continue;
    tryRmdir(join(dir, name));
    left ||= existsSync(join(dir, name));
  }
  return left;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
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

/** The number after `key` in a flat-keyed cgroup file ("oom_kill 1", "max 3"), else absent. */
function counter(text: string, key: string, absent = 0): number {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : absent;
}

/** A single-value cgroup file's number ("4096\n"), or null (absent, or "max"). */
function numberIn(text: string): number | null {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : null;
}

function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}
