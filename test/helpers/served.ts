// A real `zygote serve` for a test: started from dist/cli.js in a temp directory, its stderr
// kept, killed and its directory removed by stopAllServed() (call it in afterEach).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ECHO_MAIN, ROOT, waitFor } from './index.js';

export interface Served {
  proc: ChildProcess;
  socket: string;
  dir: string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running: Served[] = [];

/**
 * Starts `zygote serve --socket DIR/z.sock --main echo-main ...args` (no --socket or --main
 * when opts.bare: the test gives them another way) and waits until it is listening: its socket
 * logged so (on stderr, or in opts.logFile), whatever its log format; a silent one (--log-level
 * error) once its socket exists. With expectExit it may exit instead.
 */
export async function startServed(args: string[] = [], opts: { env?: NodeJS.ProcessEnv; bare?: boolean; expectExit?: boolean; socket?: string; logFile?: string; silent?: boolean; prefix?: string[] } = {}): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'zygote-served-'));
  const socket = opts.socket ?? join(dir, 'z.sock');
  const base = opts.bare ? [] : ['--socket', socket, '--main', ECHO_MAIN.pathname];
  // prefix: a command that execs the server (`ip netns exec NS`): the pid stays the zygote's.
  const argv = [process.execPath, CLI, 'serve', ...base, ...args];
  const [cmd, ...rest] = [...(opts.prefix ?? []), ...argv];
  const proc = spawn(cmd, rest, { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT, env: opts.env ?? process.env });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const served: Served = { proc, socket, dir, stderr: () => err, exit };
  running.push(served);
  const log = () => (opts.logFile === undefined ? err : existsSync(opts.logFile) ? readFileSync(opts.logFile, 'utf8') : '');
  const ready = () => (opts.silent ? existsSync(socket) : log().includes(`listening on ${socket} `));
  await waitFor(() => ready() || proc.exitCode !== null, 20_000, 'zygote serve to listen');
  // Bound, then listening: a connect in between would be refused.
  if (opts.silent) await new Promise((r) => setTimeout(r, 100));
  if (proc.exitCode !== null && !opts.expectExit) throw new Error(`zygote serve exited early (${proc.exitCode}): ${err}`);
  return served;
}

/** Kills every server still running and removes their directories. */
export async function stopAllServed(): Promise<void> {
  for (const s of running.splice(0)) {
    if (s.proc.exitCode === null && s.proc.signalCode === null) {
      s.proc.kill('SIGKILL');
      await s.exit;
    }
    rmSync(s.dir, { recursive: true, force: true });
  }
}
