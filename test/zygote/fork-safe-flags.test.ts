// The zygote refuses to serve from a node started without any one of the flags that make a warm
// Node safe and fast to fork (protocol/config.ts, README "Forking a warm Node safely"): it logs
// which flag is missing, exits 1 and never listens. Positive control: the same command line with
// every flag listens.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FORK_SAFE_NODE_FLAGS } from '../../dist/protocol/config.js';
import { bounded, ROOT, waitFor } from '../helpers/index.js';
import { echoListenConfig } from '../helpers/zygote-config.js';

const MAIN = join(ROOT, 'dist/zygote/main.js');
const dir = mkdtempSync(join(tmpdir(), 'zygote-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the zygote without a fork-safety flag', () => {
  it('names the memory reducer among the flags (its timer would fire in every child forked later)', () => {
    expect(FORK_SAFE_NODE_FLAGS).toEqual(['--single-threaded', '--v8-pool-size=1', '--no-memory-reducer']);
  });

  it.each(FORK_SAFE_NODE_FLAGS.map((f) => [f]))('without %s: logs the missing flag, exits 1, never listens', (flag) => {
    const socket = join(dir, `without${flag}.sock`);
    const r = spawnSync(process.execPath, [...FORK_SAFE_NODE_FLAGS.filter((f) => f !== flag), MAIN, echoListenConfig(socket, 'fork-safe-flags')], { env: {}, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`cannot start: node must run the zygote with ${FORK_SAFE_NODE_FLAGS.join(' ')} (missing ${flag})`);
    expect(existsSync(socket)).toBe(false);
  });

  it('positive control: with every flag, the same command line listens', async () => {
    const socket = join(dir, 'all.sock');
    const zygote = spawn(process.execPath, [...FORK_SAFE_NODE_FLAGS, MAIN, echoListenConfig(socket, 'fork-safe-flags')], { stdio: ['ignore', 'ignore', 'pipe'], env: {} });
    let stderr = '';
    zygote.stderr!.on('data', (d) => (stderr += d));
    try {
      await waitFor(() => existsSync(socket) || zygote.exitCode !== null, 20_000, 'the zygote to listen');
      expect(zygote.exitCode, stderr).toBeNull();
    } finally {
      zygote.kill('SIGTERM');
      await bounded(new Promise((r) => zygote.once('exit', r)), 10_000, 'the zygote to exit');
    }
  });
});
