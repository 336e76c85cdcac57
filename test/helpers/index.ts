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
 * The host directory of pid's cgroup in a cgroup v1 controller's hierarchy (memory, pids), read
 * from /proc/PID/cgroup as this process sees it; null where the controller is not mounted.
 */
export function cgroupDir(pid: number, controller: 'memory' | 'pids'): string | null {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes(controller));
  if (!line) return null;
  return `/sys/fs/cgroup/${controller}${line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1)}`;
}

/** One value of a cgroup file of pid, e.g. ('memory', 'memory.limit_in_bytes'); null when it has no cgroup of its own there. */
export function childCgroupFile(pid: number, controller: 'memory' | 'pids', file: string): string | null {
  const dir = cgroupDir(pid, controller);
  if (dir === null || !/\/child-\d+$/.test(dir)) return null;
  return readFileSync(`${dir}/${file}`, 'utf8').trim();
}
