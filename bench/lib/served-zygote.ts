// A real `zygote serve` (the package's CLI in dist/) as a child of this process: started on a
// socket, its stderr kept (the tail), stopped with SIGTERM and reaped, every wait bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT_DIR } from './paths.js';
import { TimeoutError, within } from './waits.js';

/** The stderr kept: the last this many characters. */
const STDERR_TAIL = 256 * 1024;

export interface ServeStop {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** It did not exit within the bound after SIGTERM and was SIGKILLed. */
  killed: boolean;
}

export class ServedZygote {
  private err = '';
  private readonly exit: Promise<ServeStop>;

  private constructor(
    private readonly proc: ChildProcess,
    readonly socket: string,
  ) {
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.err = (this.err + d).slice(-STDERR_TAIL);
    });
    this.exit = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal, killed: false })));
    // A served zygote does not notice its parent's end: if this process exits first (an error,
    // or a SIGINT handler's process.exit), it is told to stop, and cleans up after itself.
    const stopWithUs = () => proc.kill('SIGTERM');
    process.once('exit', stopWithUs);
    void this.exit.then(() => process.off('exit', stopWithUs));
  }

  /**
   * `zygote serve --socket SOCKET ...flags`; resolves once it says it listens (the CLI becomes
   * the zygote by execve, so its pid is the zygote's). Throws with its stderr if it exits first
   * or is not listening within boundMs (it is killed then).
   */
  static async start(socket: string, flags: readonly string[], boundMs: number): Promise<ServedZygote> {
    const proc = spawn(process.execPath, [join(ROOT_DIR, 'dist/cli.js'), 'serve', '--socket', socket, ...flags], { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT_DIR });
    const z = new ServedZygote(proc, socket);
    const listening = new Promise<void>((resolve, reject) => {
      const onData = () => {
        if (!z.err.includes(`listening on ${socket} `)) return;
        proc.stderr!.off('data', onData);
        resolve();
      };
      proc.stderr!.on('data', onData);
      void z.exit.then((s) => reject(new Error(`zygote serve exited (code ${s.code}, signal ${s.signal}) before listening: ${z.err.trim()}`)));
    });
    try {
      await within(listening, boundMs, 'zygote serve to listen');
    } catch (err) {
      await z.stop(5_000);
      throw err;
    }
    return z;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Its stderr so far (the tail). */
  stderr(): string {
    return this.err;
  }

  /** SIGTERM, then waits up to boundMs for the exit; SIGKILL (and a bounded wait) if it does not come. */
  async stop(boundMs: number): Promise<ServeStop> {
    if (this.running) this.proc.kill('SIGTERM');
    try {
      return await within(this.exit, boundMs, 'zygote serve to exit after SIGTERM');
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      this.proc.kill('SIGKILL');
      const s = await within(this.exit, 5_000, 'zygote serve to exit after SIGKILL');
      return { ...s, killed: true };
    }
  }
}
