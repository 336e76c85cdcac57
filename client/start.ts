// startZygote() starts an embedded zygote over a socketpair; connect() reaches a served one.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { native } from '../native/index.js';
import { encodeConfig, FORK_SAFE_NODE_FLAGS, type ZygoteConfig } from '../protocol/config.js';
import { builtinLimitPolicy } from '../protocol/limits.js';
import { unsupportedNode } from '../protocol/node-version.js';
import { ControlConnection } from './connection.js';
import { ZygoteStartError } from './errors.js';
import { normalizeConnectOptions, normalizeStartOptions, type ConnectOptions, type StartZygoteOptions } from './options.js';
import { Zygote } from './zygote.js';
import { InvalidOptionError } from '../protocol/errors.js';

/** The zygote's entry point, beside this file in the built package. */
export const ZYGOTE_MAIN = fileURLToPath(new URL('../zygote/main.js', import.meta.url));

/** The fd on which an embedded zygote finds its control socket. */
const CONTROL_FD = 3;
/** The zygote's fd that holds its encoded config (a sealed memfd), read once at start. */
const CONFIG_FD = 4;

/**
 * Starts a zygote owned by this process: it imports `preload` and `main` once, then forks a
 * child per spawn(). Resolves once it is warm. Its stderr is this process's stderr.
 */
export async function startZygote(options: StartZygoteOptions): Promise<Zygote> {
  refuseUnsupportedNode();
  const o = normalizeStartOptions(options);
  const config: ZygoteConfig = {
    main: o.mainUrl,
    preload: o.preload,
    control: { kind: 'fd', fd: CONTROL_FD },
    name: o.name,
    verbose: o.verbose,
    setupTimeoutMs: 10_000,
    shutdownTimeoutMs: 5_000,
    sandbox: o.sandbox,
    // The built-in defaults and no caps: the renderer, this zygote's one client, is trusted.
    limits: builtinLimitPolicy(),
    admission: o.admission,
    allowUnsandboxed: o.allowUnsandboxed,
    pool: o.pool,
    operations: { log: { format: 'text', level: 'info', file: null }, drainMs: 0, metrics: o.metrics },
  };
  const [mine, theirs] = native.socketpair();
  // The config travels in a sealed memfd, not on argv, where ps would show it.
  const configFd = native.sealedDataFd(Buffer.from(encodeConfig(config)), false);
  let cp;
  try {
    cp = spawn(process.execPath, [...FORK_SAFE_NODE_FLAGS, ZYGOTE_MAIN, `--config-fd=${CONFIG_FD}`], {
      // The zygote's environment is the children's: exactly what was configured, nothing of ours.
      env: o.env,
      stdio: ['ignore', 'ignore', 'inherit', theirs, configFd],
    });
  } catch (err) {
    native.close(mine);
    throw new ZygoteStartError(`cannot start the zygote process: ${(err as Error).message}`, { cause: err });
  } finally {
    native.close(theirs);
    native.close(configFd);
  }
  const conn = new ControlConnection(mine, () => `zygote ${o.name} (pid ${cp.pid})`);
  const exited = new Promise<never>((_, reject) => {
    cp.once('error', (err) => reject(new ZygoteStartError(`cannot start the zygote process: ${err.message}`, { cause: err })));
  });
  try {
    const hello = await Promise.race([conn.hello(o.startupTimeoutMs), exited]);
    return new Zygote(conn, hello, o.spawnTimeoutMs, cp, o.limits);
  } catch (err) {
    conn.close();
    cp.kill('SIGKILL');
    throw err;
  }
}

/**
 * Connects to a zygote started with `zygote serve --socket PATH`. A zygote that refuses the
 * connection (this uid not allowed, too many connections, short of fds) rejects it with a
 * ZygoteRefusedError saying why.
 */
export async function connect(path: string, options: ConnectOptions = {}): Promise<Zygote> {
  refuseUnsupportedNode();
  if (typeof path !== 'string' || path === '') throw new InvalidOptionError(`Expected a socket path, got ${String(path)}`);
  const o = normalizeConnectOptions(options);
  const fd = await connectRetrying(path, o.retryMs);
  const conn = new ControlConnection(fd, () => `zygote at ${path}`);
  let hello;
  try {
    hello = await conn.hello(o.timeoutMs);
  } catch (err) {
    // Refused, or no greeting: the socket is closed here rather than when the zygote hangs up.
    conn.close();
    throw err;
  }
  return new Zygote(conn, hello, o.spawnTimeoutMs, null, o.limits);
}

/** Backoff between connect attempts while nothing listens (connect's retryMs). */
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 1_000;

/** Connects; while nothing listens (ENOENT, ECONNREFUSED) tries again until retryMs has passed. */
async function connectRetrying(path: string, retryMs: number): Promise<number> {
  const deadline = performance.now() + retryMs;
  let wait = RETRY_FIRST_MS;
  for (;;) {
    try {
      return native.connectUnix(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const left = deadline - performance.now();
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || left <= 0) {
        throw new ZygoteStartError(`cannot connect to the zygote at ${path}: ${(err as Error).message}${retryMs > 0 ? ` (tried for ${retryMs} ms)` : ''}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, Math.min(wait, left)));
      wait = Math.min(wait * 2, RETRY_MAX_MS);
    }
  }
}

/** Refuses a Node.js zygote is not made for: an embedded zygote runs on this very node, and the client's own addon is built and tested for Node 20 alone. */
function refuseUnsupportedNode(): void {
  const why = unsupportedNode();
  if (why) throw new ZygoteStartError(why);
}
