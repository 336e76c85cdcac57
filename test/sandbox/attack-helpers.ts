// Shared by the sandbox attack tests (attacks-*.test.ts): run the hostile fixture
// (test/fixtures/attack-main.mjs) in a child, start victims, and clean up, every wait bounded.
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { expect } from 'vitest';
import type { ExitStatus, SandboxLayer, Zygote, ZygoteChild } from '../../dist/client/index.js';
import type { AttackResult } from '../native/attack.js';
import { collect } from '../helpers/index.js';

/**
 * These attacks test the other layers one by one. Four layers would stop many of them first
 * and hide what the layer under test does: the mount namespace (a root without the files the
 * test made), the pid namespace (no sibling or zygote to aim at), the user namespace (ids
 * that mean something else) and Landlock (no signal, ptrace or mount outside its domain).
 * They are left out here and attacked on their own in filesystem.test.ts,
 * namespaces.test.ts and attacks-processes.test.ts ("Landlock"); they only add protection.
 */
export const OUTER_LAYERS: readonly SandboxLayer[] = ['mount-namespace', 'pid-namespace', 'user-namespace', 'landlock'];


export const ATTACK_MAIN = new URL('../fixtures/attack-main.mjs', import.meta.url);

/** How long one attacking child may run before the test kills it. */
const RUN_TIMEOUT_MS = 20_000;
/** How long a victim may take to say it is ready, and a killed child to be reported. */
const WAIT_MS = 10_000;

import { bounded } from '../helpers/index.js';

export { bounded };

export interface AttackRun<R = AttackResult> {
  pid: number;
  status: ExitStatus;
  stdout: string;
  stderr: string;
  /** stdout's first line as JSON (the attack's result), or undefined if it is not JSON. */
  result: R | undefined;
}

/**
 * Spawns the fixture with args (action first) and the named layers skipped, reads its stdout
 * and stderr to the end and waits for its exit. A child still running after 20 s is killed.
 */
export async function attackIn<R = AttackResult>(z: Zygote, args: unknown[], skip: readonly SandboxLayer[] = [], outer: readonly SandboxLayer[] = OUTER_LAYERS): Promise<AttackRun<R>> {
  return collectRun<R>(await z.spawn({ args, sandbox: { dangerouslySkip: [...new Set([...skip, ...outer])] } }));
}

/** Reads a spawned attacker's stdout and stderr to the end and waits for its exit; kills it after 20 s. */
export async function collectRun<R = AttackResult>(child: ZygoteChild): Promise<AttackRun<R>> {
  const timer = setTimeout(() => child.kill(), RUN_TIMEOUT_MS);
  try {
    const [stdout, stderr, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    let result: R | undefined;
    try {
      result = JSON.parse(stdout.split('\n')[0]!) as R;
    } catch {
      result = undefined;
    }
    return { pid: child.pid, status, stdout, stderr, result };
  } finally {
    clearTimeout(timer);
  }
}

/** The attack ran to its end and the kernel answered it (no SIGSYS): its exit was 0. */
export function expectAnswered(run: AttackRun<unknown>): void {
  expect(run.status, `stderr: ${run.stderr}`).toMatchObject({ code: 0, signal: null, reason: 'exit' });
}

/** The call failed with exactly this errno (and the child lived to say so). */
export function expectErrno(run: AttackRun, errno: string): void {
  expectAnswered(run);
  expect(run.result).toEqual({ ok: false, errno, value: -1 });
}

/** The call succeeded. */
export function expectOk(run: AttackRun): void {
  expectAnswered(run);
  expect(run.result).toMatchObject({ ok: true, errno: null });
}

/** The seccomp filter killed the whole process (SIGSYS) before it could report anything. */
export function expectKilledBySigsys(run: AttackRun<unknown>): void {
  expect(run.status).toMatchObject({ code: null, signal: 'SIGSYS', reason: 'signal' });
  expect(run.stdout).toBe('');
}

/** What a victim says once it is running: its dumpability, and the prctl that set it, if any. */
export interface VictimReady {
  ready: true;
  set: AttackResult | null;
  dumpable: number;
}

export interface Victim {
  child: ZygoteChild;
  ready: VictimReady;
}

/** Reads stream up to its first newline (bounded), then lets the rest drain. */
function firstLine(stream: Readable, what: string): Promise<string> {
  return bounded(
    new Promise<string>((resolve, reject) => {
      let buf = '';
      stream.setEncoding('utf8');
      const onData = (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        stream.off('data', onData);
        stream.off('end', onEnd);
        stream.resume();
        resolve(buf.slice(0, nl));
      };
      const onEnd = () => reject(new Error(`${what} ended its stdout before it was ready: ${JSON.stringify(buf)}`));
      stream.on('data', onData);
      stream.on('end', onEnd);
    }),
    WAIT_MS,
    what,
  );
}

/** Spawns a victim ('hang' or 'hang-dumpable') and waits until it runs its JS. */
export async function startVictim(z: Zygote, action: 'hang' | 'hang-dumpable' = 'hang', skip: readonly SandboxLayer[] = []): Promise<Victim> {
  const child = await z.spawn({ args: [action], sandbox: { dangerouslySkip: [...new Set([...skip, ...OUTER_LAYERS])] } });
  try {
    const ready = JSON.parse(await firstLine(child.stdout, `victim ${child.pid}`)) as VictimReady;
    return { child, ready };
  } catch (err) {
    await stop(child);
    throw err;
  }
}

/** Kills a child (if it still runs) and waits, bounded, for the zygote to report its exit. */
export async function stop(child: ZygoteChild): Promise<ExitStatus> {
  child.kill();
  try {
    return await bounded(child.exited, WAIT_MS, `child ${child.pid} to be reaped`);
  } finally {
    child.stdout.destroy();
    child.stderr.destroy();
  }
}

/** The real, effective, saved and filesystem uids of a live process, from /proc (any caller may read them). */
export function uidsOf(pid: number): number[] {
  const line = /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return line.split(/\s+/).map(Number);
}
