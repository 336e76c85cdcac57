// V8's optimizing compiler, paused while a forked child runs trusted one-shot code.
//
// The zygote runs --single-threaded, so TurboFan compiles on the main thread, synchronously. A
// fork inherits every function's tier-up budget as the zygote left it; functions the zygote ran
// often (fs.realpathSync, the ESM resolver) sit just below their threshold, so each child pushed
// them over and compiled them again, only to exit: 10-20 ms of a child's start-up, in some
// zygotes and not others (measured with --trace-opt). A one-shot child's own runtime gains
// nothing from optimized code; the untrusted code it runs may, so the compiler is resumed for it.
// The flag is read at each tier-up decision, so it can change while the process runs.
import { setFlagsFromString } from 'node:v8';

/** No optimizing compiles from now on (functions already optimized stay so). */
export function pauseOptimizer(): void {
  setFlagsFromString('--no-opt');
}

/** Optimizing compiles again, as in any Node process. */
export function resumeOptimizer(): void {
  setFlagsFromString('--opt');
}
