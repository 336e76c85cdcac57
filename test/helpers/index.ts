// Shared test helpers: fixtures, bounded waits, and looks into /proc.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { native } from '../../dist/native/index.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ECHO_MAIN = new URL('../fixtures/echo-main.mjs', import.meta.url);
export const CLI = `${ROOT}dist/cli.js`;

/** Reads a stream to its end (bounded by the caller's test timeout). */
export function collect(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (out += d));
    stream.on('end', () => resolve(out));
    stream.on('error', reject);
  });
}

/** Rejects with a message naming what was awaited if p does not settle within ms. */
export async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls cond every 10 ms until it is true; throws after timeoutMs. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether pid names a live process (not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Whether pid exists at all, zombie or not. */
export function exists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** Zombie children of pid. */
export function zombiesOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' && Number(fields[1]) === pid) out.push(Number(name));
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}

/**
 * Every (fd of pid, fd of other) pair that is one open file description (kcmp KCMP_FILE).
 * An fd that closes while we look (EBADF) shares nothing any more and is skipped.
 */
export function sharedOpenFiles(pid: number, other: number, pidFds: Map<number, string> = fdsOf(pid)): string[] {
  const otherFds = fdsOf(other);
  const shared: string[] = [];
  for (const [fd, target] of pidFds) {
    for (const [ofd, otarget] of otherFds) {
      try {
        if (native.sameOpenFile(pid, fd, other, ofd)) shared.push(`${pid}:${fd} (${target}) = ${other}:${ofd} (${otarget})`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EBADF') throw err;
      }
    }
  }
  return shared;
}

/** The open fds of pid, with what each points to. */
export function fdsOf(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.set(Number(name), readlinkSync(`/proc/${pid}/fd/${name}`));
    } catch {
      // Closed while we looked.
    }
  }
  return out;
}

/**
 * The host directory of pid's cgroup for a controller (memory, pids), read from /proc/PID/cgroup
 * as this process sees it: its v1 hierarchy's where one has the controller, else (a cgroup v2
 * host, or the guest) its one v2 directory under /sys/fs/cgroup; null where neither exists.
 */
export function cgroupDir(pid: number, controller: 'memory' | 'pids'): string | null {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const pathOf = (line: string) => line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes(controller));
  if (v1) return `/sys/fs/cgroup/${controller}${pathOf(v1)}`;
  const v2 = lines.find((l) => l.startsWith('0::'));
  if (!v2 || !existsSync('/sys/fs/cgroup/cgroup.controllers')) return null;
  const dir = `/sys/fs/cgroup${pathOf(v2)}`;
  return dir.endsWith('/') ? dir.slice(0, -1) : dir;
}

/** v1 file names the tests use, and the file that holds the same limit on cgroup v2. */
const V2_FILE: Record<string, string> = { 'memory.limit_in_bytes': 'memory.max', 'pids.max': 'pids.max' };

/**
 * One value of a cgroup file of pid, by its v1 name, e.g. ('memory', 'memory.limit_in_bytes');
 * on cgroup v2 the same limit's file (memory.max). null when it has no cgroup of its own there.
 */
export function childCgroupFile(pid: number, controller: 'memory' | 'pids', file: string): string | null {
  const dir = cgroupDir(pid, controller);
  if (dir === null || !/\/child-\d+$/.test(dir)) return null;
  const v2 = !dir.startsWith(`/sys/fs/cgroup/${controller}/`);
  if (v2 && !(file in V2_FILE)) throw new Error(`no cgroup v2 counterpart known for ${file}`);
  return readFileSync(`${dir}/${v2 ? V2_FILE[file] : file}`, 'utf8').trim();
}
