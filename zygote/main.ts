// zygote/: the server: serve loop, children, sandbox policy, cgroups, network, `zygote serve`,
// `zygote doctor`, the cold runner. Imports protocol/ and native/ only.
// The zygote process: checks its flags, warms up (preload, main), serves, and in each
// forked child runs main. Started by startZygote() or `zygote serve`, never directly.
import { closeSync, readFileSync } from 'node:fs';
import { encodeServerMessage } from '../protocol/control.js';
import { native, POLLIN } from '../native/index.js';
import type { ChildTask } from './children.js';
import { freshenProcessState, installExitPath, runMain, watchStdio, type MainFunction } from './child-runtime.js';
import { decodeConfig, FORK_SAFE_NODE_FLAGS, type ZygoteConfig } from '../protocol/config.js';
import { unsupportedNode } from '../protocol/node-version.js';
import { Log } from './log.js';
import { collectGarbage, loadMainModule, preloadModules, type RehearseFunction } from './preload.js';
import { Server } from './server.js';
import { awaitClaim } from './claim.js';
import { settleBufferDeprecation } from './buffer-warning.js';
import { encodeLearnerAnswer, MAX_PRETOUCH_PAGES } from './prefault.js';
import { pauseOptimizer, resumeOptimizer } from '../native/optimizer.js';

/** A pool child outlives its maxIdleMs by this much before it leaves by itself (the zygote retires it first). */
const POOL_WAIT_SLACK_MS = 10_000;

const log = new Log('zygote');

// 1. Start-up: any failure is reported to an embedded client, which is waiting for Hello.
let config: ZygoteConfig | undefined;
let main: MainFunction;
let rehearse: RehearseFunction | null = null;
let server: Server;
try {
  config = decodeConfig(configArgument(process.argv[2]));
  log.configure(config.operations!.log);
  // The config came on argv: overwrite it there (libuv rewrites the argv area in place), so
  // neither ps nor a child's /proc/1/cmdline (its init is a fork of this process) shows it.
  process.title = config.control.kind === 'listen' ? `zygote serve ${config.control.path}` : `zygote ${config.name || 'embedded'}`;
  checkForkSafety();
  settleBufferDeprecation();
  await preloadModules(config.main, config.preload);
  ({ main, rehearse } = await loadMainModule(config.main));
  collectGarbage();
  // Forked children have no platform worker thread; see native/platform.cc.
  native.patchPlatformDrain();
  server = new Server(config, log, rehearse !== null);
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  log.error('start-failed', `cannot start: ${message}`);
  if (config?.control.kind === 'fd') {
    try {
      native.sendPacket(config.control.fd, encodeServerMessage({ kind: 'startupFailed', message }));
    } catch {
      // The client is gone; the exit code is all that is left.
    }
  }
  native.exitNow(1);
}

// 2. Serve: blocks in poll(2) for the zygote's whole life; returns only in a forked child.
let task: ChildTask;
try {
  task = server.run();
} catch (err) {
  log.error('serve-failed', `serve loop failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  try {
    server.abort();
  } catch (cleanup) {
    log.error('serve-failed', `cleaning up after the failure failed too: ${cleanup instanceof Error ? cleanup.message : String(cleanup)}`);
  }
  native.exitNow(1);
}

// 3. In the child, with its fds, loop and pipes already set up by native code. A pool child
// first waits for the spawn that claims it, and applies it (zygote/claim.ts). Until main runs,
// nothing is worth an optimizing compile (native/optimizer.ts).
pauseOptimizer();
if (task.claimFd !== undefined) task = awaitClaim(task.claimFd, (config!.pool?.maxIdleMs ?? 0) + POOL_WAIT_SLACK_MS, task.pid);
freshenProcessState(task.pid);
// Node caches its cwd: after pivot_root the real one is the new root's "/". (Without a new root
// the cwd is the zygote's, which the child's uid may not even be allowed to search.)
if (task.newRoot) process.chdir('/');
process.title = `zygote-child ${task.name || task.id}`;
process.argv = [process.execPath, new URL(config.main).pathname];
installExitPath();
watchStdio();
// A learner rehearses here, after every child's own set-up, so that the pages that set-up
// writes and reads are learned too (zygote/prefault.ts): measured, freshen, chdir and the exit
// path took 1.5 ms in a claimed child before, 0.4 after.
if (task.rehearse) await runRehearsal(task.claimFd!);
resumeOptimizer();
await runMain(main, JSON.parse(task.argsJson) as unknown[]);

/**
 * The encoded config: read from the sealed fd named by `--config-fd=N` (how the client and the
 * CLI pass it, so it is never on argv), then closed; or, for a zygote started by hand, the
 * encoded config itself (on argv until the title below replaces it).
 */
function configArgument(arg: string | undefined): string | undefined {
  const m = /^--config-fd=(\d+)$/.exec(arg ?? '');
  if (!m) return arg;
  const fd = Number(m[1]);
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Refuses to serve in a process that cannot be forked safely. */
function checkForkSafety(): void {
  const node = unsupportedNode();
  if (node) throw new Error(node);
  const missing = FORK_SAFE_NODE_FLAGS.filter((f) => !process.execArgv.includes(f));
  if (missing.length > 0) {
    throw new Error(`node must run the zygote with ${FORK_SAFE_NODE_FLAGS.join(' ')} (missing ${missing.join(' ')}); see README "How it works"`);
  }
  if (process.env.UV_USE_IO_URING === '1') {
    // libuv's io_uring rings are fds the child's fd sweep cannot tell from the zygote's own.
    throw new Error('UV_USE_IO_URING=1 is not supported in a zygote (libuv io_uring fds cannot be forked safely)');
  }
}

/**
 * A learner: runs main's rehearsal, says "rehearsed" (or "failed"), then waits until the zygote,
 * having read which pages it wrote, kills it or closes the socket. Never returns.
 */
async function runRehearsal(claimFd: number): Promise<never> {
  let said: 'rehearsed' | 'failed' = 'rehearsed';
  try {
    await rehearse!();
  } catch {
    said = 'failed';
  }
  // Last: timing its reads spends the first-access trap of every page it had not touched.
  const accessed = said === 'rehearsed' ? native.accessedPages(MAX_PRETOUCH_PAGES) : [];
  native.setNonBlocking(claimFd, false);
  try {
    native.sendPacket(claimFd, encodeLearnerAnswer(said, accessed));
  } catch {
    // Too big for the socket (EMSGSIZE): the word alone, so the zygote learns the writes.
    native.sendPacket(claimFd, encodeLearnerAnswer(said, []));
  }
  native.poll(Int32Array.of(claimFd), Int16Array.of(POLLIN), new Int16Array(1), 60_000);
  native.exitNow(0);
}
