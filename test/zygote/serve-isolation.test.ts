// One request whose handling throws ends its own connection and nothing else: the serve loop
// carries on for every other client. No real request makes the loop throw (each failure it
// knows of is a typed reply), so a test-only one does: a zygote started with allowUnsandboxed
// throws while handling a spawn whose dangerouslyInjectFailure.step is "serve-loop". That
// zygote is served on a socket, started by hand with its config as `zygote serve` would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, ZygoteClosedError, type Zygote } from '../../dist/index.js';
import { encodeConfig, FORK_SAFE_NODE_FLAGS, type ZygoteConfig } from '../../dist/protocol/config.js';
import { builtinLimitPolicy } from '../../dist/protocol/limits.js';
import { normalizeSandboxDefaults } from '../../dist/protocol/sandbox.js';
import { resolveAdmission } from '../../dist/protocol/admission.js';
import { bounded, collect, ECHO_MAIN, isAlive, ROOT, waitFor } from '../helpers/index.js';
import { fdCount, steadyFdCount } from '../helpers/tenant.js';

let dir: string;
let socket: string;
let server: ChildProcess;
let stderr = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zygote-isolation-'));
  socket = join(dir, 'z.sock');
  const config: ZygoteConfig = {
    main: ECHO_MAIN.href,
    preload: [],
    control: { kind: 'listen', path: socket, allowUids: [0] },
    name: 'isolation',
    verbose: true,
    setupTimeoutMs: 10_000,
    shutdownTimeoutMs: 5_000,
    sandbox: normalizeSandboxDefaults({}),
    limits: builtinLimitPolicy(),
    admission: resolveAdmission({}, { uids: 1, uidRangeCount: null }),
    allowUnsandboxed: true,
  };
  server = spawn(process.execPath, [...FORK_SAFE_NODE_FLAGS, join(ROOT, 'dist/zygote/main.js'), encodeConfig(config)], { stdio: ['ignore', 'ignore', 'pipe'], env: {} });
  server.stderr!.on('data', (d) => (stderr += d));
  await waitFor(() => stderr.includes(`listening on ${socket} `) || server.exitCode !== null, 15_000, 'the zygote to listen');
  if (server.exitCode !== null) throw new Error(`the zygote exited: ${stderr}`);
});
afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await bounded(new Promise((r) => server.once('exit', r)), 10_000, 'the zygote to exit');
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a request whose handling throws', () => {
  it('drops its own connection (its fds closed) and nothing else: another client spawns on, and so does a new one', async () => {
    const steady: Zygote = await connect(socket);
    const bystander = await steady.spawn({ args: ['hang'] });
    await new Promise((r) => bystander.stdout.once('data', r));
    const doomed = await connect(socket);
    const before = await steadyFdCount(server.pid!);
    const err = await doomed.spawn({ args: ['exit', 0], mounts: [{ source: dir, target: '/in' }], sandbox: { dangerouslyInjectFailure: { step: 'serve-loop', errno: 'EIO' } } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZygoteClosedError);
    await waitFor(() => /handling client fd=\d+ uid=0 pid=\d+ failed, dropping it: Error: a failure injected into the serve loop \(tests only\)/.test(stderr), 5000, 'the failure in the log');
    // Its connection and the mount fd it sent are closed.
    await waitFor(() => fdCount(server.pid!) === before - 1, 5000, `the zygote's fds to drop by its connection (${fdCount(server.pid!)}, was ${before})`);
    expect(server.exitCode).toBeNull();
    // The other client's child runs on, and it spawns.
    expect(isAlive(bystander.pid)).toBe(true);
    const next = await steady.spawn({ args: ['echo-args', 'still'] });
    expect(await collect(next.stdout)).toBe('["still"]');
    bystander.kill();
    await bystander.exited;
    await steady.close();
    await doomed.close();
    // Positive control: the same request without the injected failure is served.
    const fresh = await connect(socket);
    const ok = await fresh.spawn({ args: ['exit', 0], mounts: [{ source: dir, target: '/in' }] });
    expect((await ok.exited).code).toBe(0);
    await fresh.close();
  });
});
