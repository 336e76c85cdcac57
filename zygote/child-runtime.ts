// What runs in a forked child once the native setup succeeded: make per-process state fresh,
// install an exit path that cannot hang, call main's default export, exit.
//
// Also used as-is by the cold runner (zygote/cold.ts), so the benchmark's cold baseline runs
// exactly the same code after its start-up.
import { getRandomValues } from 'node:crypto';
import { native } from '../native/index.js';

/** A step's entry point: main's default export. */
export type MainFunction = (...args: unknown[]) => unknown;

/** Exit code when main's promise never settled and nothing else was left to run (as Node's own). */
export const UNSETTLED_EXIT_CODE = 13;

/**
 * Fixes what a fork copies but must differ per process: process.pid (Node caches it at
 * start-up) and Math.random (V8's generator state is copied, so every child would draw the
 * same numbers). Math.random is replaced by one fed from the kernel via OpenSSL, which
 * reseeds itself when it sees a new pid.
 */
export function freshenProcessState(pid: number): void {
  Object.defineProperty(process, 'pid', { value: pid, enumerable: true, configurable: true, writable: false });
  const pool = new Uint32Array(1024);
  let next = pool.length;
  Math.random = function random(): number {
    if (next + 2 > pool.length) {
      getRandomValues(pool);
      next = 0;
    }
    // 53 random bits, as V8 gives: 27 high bits and 26 low bits.
    const hi = pool[next++] >>> 5;
    const lo = pool[next++] >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  };
}

/**
 * Routes every way out through exit_group. Node's own teardown waits for V8 platform
 * threads, and in a forked child those threads do not exist: a plain process.exit() or a
 * drained loop would hang forever (fork-safety.md, failure modes 2-4). process.exit() still
 * emits 'exit' to listeners first; only the final reallyExit is replaced.
 */
export function installExitPath(): void {
  const proc = process as unknown as { reallyExit: (code?: number) => never };
  proc.reallyExit = (code?: number) => native.exitNow(typeof code === 'number' ? code : 0);
  process.on('uncaughtException', (err) => {
    writeStderr(`${formatError(err)}\n`);
    process.exit(1);
  });
}

/** Calls main with the arguments, then exits: 0 (or process.exitCode) if it resolved, 1 if it threw. */
export async function runMain(main: MainFunction, args: unknown[]): Promise<never> {
  let settled = false;
  process.on('beforeExit', () => {
    // The loop drained while main's promise was still pending: nothing can settle it now.
    if (settled) return;
    writeStderr('zygote: main returned a promise that never settled and left nothing to run\n');
    process.exit(UNSETTLED_EXIT_CODE);
  });
  let code: number;
  try {
    await main(...args);
    code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    writeStderr(`${formatError(err)}\n`);
    code = 1;
  }
  settled = true;
  await flushStdio();
  process.exit(code);
}

function formatError(err: unknown): string {
  return err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : `Uncaught ${String(err)}`;
}

function writeStderr(text: string): void {
  try {
    process.stderr.write(text);
  } catch {
    // stderr is gone: the exit code still tells.
  }
}

/**
 * Resolves once stdout and stderr have handed everything written so far to the kernel. Only
 * streams main made are flushed: process.stdout and process.stderr are created on first use,
 * and making one just to flush it would run their stream code for the first time in the child
 * (milliseconds of copy-on-write faults on every exit).
 */
function flushStdio(): Promise<void> {
  const flush = (s: NodeJS.WriteStream) =>
    new Promise<void>((resolve) => {
      if (s.destroyed || !s.writable) return resolve();
      s.write('', () => resolve());
    });
  return Promise.all(stdioMade().map(flush)).then(() => undefined);
}

/** The fds (1, 2) whose process.stdout / process.stderr main made, set by watchStdio. */
const made = new Set<number>();

/** process.stdout and process.stderr as far as they were made (watchStdio), else both. */
function stdioMade(): NodeJS.WriteStream[] {
  if (!watching) return [process.stdout, process.stderr];
  const out: NodeJS.WriteStream[] = [];
  if (made.has(1)) out.push(process.stdout);
  if (made.has(2)) out.push(process.stderr);
  return out;
}
let watching = false;

/**
 * Notes when main first makes process.stdout or process.stderr (Node's own lazy getters, kept
 * and called through), so the exit flushes those and makes no other. A main that redefines
 * them (the step runner points stdout at stderr) replaces the getter: its streams are then
 * made through ours only if its own getter uses them, and flushing what it made is its to do.
 */
export function watchStdio(): void {
  for (const [name, fd] of [['stdout', 1], ['stderr', 2]] as const) {
    const own = Object.getOwnPropertyDescriptor(process, name);
    if (!own?.get || !own.configurable) return;
    const get = own.get;
    Object.defineProperty(process, name, {
      ...own,
      get() {
        made.add(fd);
        return get.call(process);
      },
    });
  }
  watching = true;
}
