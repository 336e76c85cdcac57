// Many tenants of one `zygote serve`: the server as root (optionally under a lowered
// RLIMIT_NOFILE), and clients as unprivileged uids (setpriv) running test/fixtures/tenant-client.mjs,
// driven a command at a time, or test/fixtures/flood-client.mjs.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { bounded, collect, ECHO_MAIN, ROOT, waitFor } from './index.js';

export interface Served {
  proc: ChildProcess;
  pid: number;
  socket: string;
  stderr(): string;
  /** SIGTERM, then waits (bounded) for the exit. */
  stop(): Promise<void>;
}

/**
 * `zygote serve` of ROOT's CLI, as root, on socket, allowing uids, with extra flags; resolves
 * once it listens. nofile: start it with that RLIMIT_NOFILE (soft and hard), through prlimit.
 */
export async function serveAsRoot(socket: string, uids: number[], extra: string[] = [], opts: { nofile?: number } = {}): Promise<Served> {
  const argv = [process.execPath, join(ROOT, 'dist/cli.js'), 'serve', '--socket', socket, '--main', ECHO_MAIN.pathname, ...uids.flatMap((u) => ['--allow-uid', String(u)]), ...extra];
  const [cmd, ...args] = opts.nofile === undefined ? argv : ['prlimit', `--nofile=${opts.nofile}:${opts.nofile}`, ...argv];
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await waitFor(() => err.includes(`listening on ${socket} `) || proc.exitCode !== null, 20_000, 'zygote serve to listen');
  if (proc.exitCode !== null) throw new Error(`zygote serve exited: ${err}`);
  return {
    proc,
    pid: proc.pid!,
    socket,
    stderr: () => err,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await bounded(exit, 10_000, 'zygote serve to exit').catch(() => proc.kill('SIGKILL'));
      }
    },
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Answer = { ok: boolean; [k: string]: any };

/** A tenant-client.mjs process running as uid, answering one command at a time. */
export class Tenant {
  private seq = 0;
  private readonly waiting = new Map<number, (a: Answer) => void>();
  private stderr = '';

  private constructor(
    readonly uid: number,
    private readonly cp: ChildProcess,
  ) {
    createInterface({ input: cp.stdout! }).on('line', (line) => {
      const a = JSON.parse(line) as Answer & { seq: number };
      this.waiting.get(a.seq)?.(a);
      this.waiting.delete(a.seq);
    });
    cp.stderr!.on('data', (d) => (this.stderr += d));
  }

  static start(pkg: string, uid: number, socket: string): Tenant {
    const cp = spawn('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', process.execPath, join(pkg, 'test/fixtures/tenant-client.mjs'), JSON.stringify({ pkg, socket })], {
      cwd: pkg,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new Tenant(uid, cp);
  }

  /** Sends a command; resolves with its answer (bounded). */
  call(op: string, args: Record<string, unknown> = {}): Promise<Answer> {
    const seq = ++this.seq;
    const answer = new Promise<Answer>((resolve) => this.waiting.set(seq, resolve));
    this.cp.stdin!.write(`${JSON.stringify({ op, seq, ...args })}\n`);
    return bounded(answer, 60_000, `uid ${this.uid}'s ${op} (stderr: ${this.stderr})`);
  }

  /** Ends the client (its handle closes, its children die with it), bounded. */
  async stop(): Promise<void> {
    if (this.cp.exitCode !== null || this.cp.signalCode !== null) return;
    const exit = new Promise((resolve) => this.cp.once('exit', resolve));
    this.cp.stdin!.end();
    await bounded(exit, 10_000, `uid ${this.uid}'s client to exit`).catch(() => this.cp.kill('SIGKILL'));
  }

  kill(): void {
    this.cp.kill('SIGKILL');
  }
}

export interface FloodCounts {
  attempts: number;
  hello: number;
  eof: number;
  unanswered: number;
  refused: Record<string, number>;
  connectErrors: Record<string, number>;
}

/** flood-client.mjs as uid for durationMs (at most max connections); resolves with its counts. */
export async function flood(pkg: string, uid: number, socket: string, durationMs: number, max: number): Promise<FloodCounts> {
  const cp = spawn('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', process.execPath, join(pkg, 'test/fixtures/flood-client.mjs'), JSON.stringify({ pkg, socket, durationMs, max })], {
    cwd: pkg,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exit = new Promise<number | null>((resolve) => cp.once('exit', (code) => resolve(code)));
  try {
    const [out, err, code] = await bounded(Promise.all([collect(cp.stdout!), collect(cp.stderr!), exit]), durationMs + 30_000, `the flood as uid ${uid}`);
    if (code !== 0) throw new Error(`the flood as uid ${uid} exited ${code}: ${err}`);
    return JSON.parse(out) as FloodCounts;
  } finally {
    if (cp.exitCode === null) cp.kill('SIGKILL');
  }
}

/** How many fds pid has open. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * How many fds pid has once that stops changing (the same over 100 ms): a zygote closes a
 * child's stdio just after sending them, and a client can ask in between.
 */
export async function steadyFdCount(pid: number): Promise<number> {
  const deadline = Date.now() + 5000;
  let last = fdCount(pid);
  for (let same = 0; same < 5 && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 20));
    const now = fdCount(pid);
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

/** pid's fds and what each is, for messages. */
export function fdList(pid: number): string {
  const what = (fd: string) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '?';
    }
  };
  return readdirSync(`/proc/${pid}/fd`)
    .map((fd) => `${fd} ${what(fd)}`)
    .join(', ');
}

/** CPU time (user + system) pid has used, in milliseconds. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5), counted from the state (field 3), in
  // clock ticks of 100 Hz (USER_HZ, fixed for x86-64 user space).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
