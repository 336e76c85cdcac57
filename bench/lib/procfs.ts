// Reading a process's memory, fds and zombie children from /proc.
import { readdirSync, readFileSync } from 'node:fs';

/** Resident set size (VmRSS) in bytes. */
export function readRssBytes(pid: number): number {
  return statusField(pid, 'VmRSS');
}

export interface PrivateMemory {
  rssBytes: number;
  pssBytes: number;
  /** Unique set size: Private_Clean + Private_Dirty, what the process alone costs. */
  ussBytes: number;
}

export function readPrivateMemory(pid: number): PrivateMemory {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field: string) => kbField(text, field, `/proc/${pid}/smaps_rollup`);
  return { rssBytes: kb('Rss') * 1024, pssBytes: kb('Pss') * 1024, ussBytes: (kb('Private_Clean') + kb('Private_Dirty')) * 1024 };
}

/**
 * The memory of a process and its descendants, summed: a sandboxed step is the child of its
 * pid namespace's init (the pid the client knows), and both are its cost.
 */
export function readTreePrivateMemory(pid: number): PrivateMemory {
  const total = readPrivateMemory(pid);
  for (const child of childrenOf(pid)) {
    const m = readTreePrivateMemory(child);
    total.rssBytes += m.rssBytes;
    total.pssBytes += m.pssBytes;
    total.ussBytes += m.ussBytes;
  }
  return total;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function countFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Pids of the zombie (state Z) children of ppid. */
export function zombieChildren(ppid: number): number[] {
  return childProcesses(ppid).filter((c) => c.state === 'Z').map((c) => c.pid);
}

/** Pids of the children of ppid that are still running (not zombies). */
export function liveChildren(ppid: number): number[] {
  return childProcesses(ppid).filter((c) => c.state !== 'Z').map((c) => c.pid);
}

/** Lines in a process's /proc/PID/mountinfo: its mount namespace's mounts. */
export function countMounts(pid: number): number {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter(Boolean).length;
}

/** A process's mount namespace's mounts (/proc/PID/mountinfo), each as "MOUNT_POINT FS_TYPE". */
export function listMounts(pid: number | 'self'): string[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => `${line.split(' ')[4]} ${line.slice(line.indexOf(' - ') + 3).split(' ')[0]}`);
}

/** A process's identity that survives pid reuse: its pid and start time (stat field 22); null once gone. */
export function processStart(pid: number): string | null {
  const stat = readStat(pid);
  return stat === null ? null : `${pid}@${stat.fields[19]}`;
}

function childProcesses(ppid: number): { pid: number; state: string }[] {
  const out: { pid: number; state: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat && Number(stat.fields[1]) === ppid) out.push({ pid: Number(name), state: stat.fields[0] });
  }
  return out;
}

/** stat's fields from state (field 3) on; null when the process has exited. */
function readStat(pid: number): { fields: string[] } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null; // exited while we listed
  }
  // comm (field 2) may hold spaces and parentheses: the fields we want follow the last ')'.
  return { fields: stat.slice(stat.lastIndexOf(')') + 2).split(' ') };
}

function statusField(pid: number, field: string): number {
  return kbField(readFileSync(`/proc/${pid}/status`, 'utf8'), field, `/proc/${pid}/status`) * 1024;
}

function kbField(text: string, field: string, where: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text);
  if (!m) throw new Error(`no ${field} line in ${where}`);
  return Number(m[1]);
}
