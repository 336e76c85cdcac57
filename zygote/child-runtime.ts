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

/** Resolves once stdout and stderr have handed everything written so far to the kernel. */
function flushStdio(): Promise<void> {
  const flush = (s: NodeJS.WriteStream) =>
    new Promise<void>((resolve) => {
      if (s.destroyed || !s.writable) return resolve();
      s.write('', () => resolve());
    });
  return Promise.all([flush(process.stdout), flush(process.stderr)]).then(() => undefined);
}
