// `zygote serve` limits: its defaults apply to a client that asks nothing; its caps (--max-*,
// --tmp-bytes, --fsize, --nofile) may be gone below but never above, nor lifted with null. A
// request above a cap is a LimitCapError naming the field, the value and the cap; at or below
// it works. The server checks what arrives on the wire, not only what the client library sends.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, LimitCapError, type Limits, type Zygote, type ZygoteChild } from '../../dist/client/index.js';
import { native, POLLIN } from '../../dist/native/index.js';
import { decodeServerMessage, encodeClientMessage, MAX_CONTROL_FRAME_BYTES, NO_LIMIT, type ServerMessage, type WireLimits } from '../../dist/protocol/control.js';
import { bounded, childCgroupFile, CLI, collect, ECHO_MAIN, ROOT, waitFor } from '../helpers/index.js';

const MiB = 2 ** 20;
const CAPS = ['--default-memory', '256M', '--max-memory', '512M', '--max-pids', '24', '--default-wall-time', '400', '--max-wall-time', '5000', '--tmp-bytes', '16M', '--fsize', '1M', '--nofile', '128', '--default-output-bytes', '8M', '--max-output-bytes', '16M', '--max-output-files', '100'];

let dir: string;
let server: ChildProcess;
let stderr = '';
let socket: string;
let z: Zygote;

/** Starts `zygote serve` with args; resolves once it listens, or with its exit code and stderr. */
async function serve(args: string[], path: string): Promise<{ proc: ChildProcess; exit: Promise<number | null>; err: () => string }> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--socket', path, '--main', ECHO_MAIN.pathname, '--quiet', ...args], { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await waitFor(() => err.includes(`listening on ${path} `) || proc.exitCode !== null, 15_000, 'the server to listen or exit');
  return { proc, exit, err: () => err };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zygote-serve-limits-'));
  socket = join(dir, 'z.sock');
  const s = await serve(CAPS, socket);
  server = s.proc;
  stderr = s.err();
  if (server.exitCode !== null) throw new Error(`zygote serve exited: ${stderr}`);
  z = await connect(socket);
});
afterAll(async () => {
  await z?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await bounded(new Promise((r) => server.once('exit', r)), 10_000, 'zygote serve to exit');
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function hanging(zygote: Zygote, limits?: Limits, sandbox?: { rlimits?: { nofile?: number } }): Promise<ZygoteChild> {
  const child = await zygote.spawn({ args: ['hang'], limits, sandbox });
  await new Promise((r) => child.stdout.once('data', r));
  return child;
}

async function refusal(p: Promise<unknown>): Promise<LimitCapError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LimitCapError);
  return err as LimitCapError;
}

describe('zygote serve defaults and caps', () => {
  it("gives a client that asks nothing the operator's defaults: memory 256 MiB, pids at the cap 24, wall time 400 ms, /tmp 16 MiB, fsize 1 MiB, nofile 128, output 8 MiB and at the cap 100 files", async () => {
    const child = await hanging(z);
    expect(childCgroupFile(child.pid, 'memory', 'memory.limit_in_bytes')).toBe(String(256 * MiB));
    expect(childCgroupFile(child.pid, 'pids', 'pids.max')).toBe('24');
    expect(child.limits).toMatchObject({ memoryBytes: 256 * MiB, pids: 24, wallTimeMs: 400, cpuTimeMs: null, tmpBytes: 16 * MiB, fileBytes: MiB, nofile: 128, outputBytes: 8 * MiB, outputFiles: 100 });
    // The output filesystem is made to those sizes, not just reported.
    const withOutput = await z.spawn({ args: ['exit', 0], output: {} });
    await withOutput.exited;
    expect(withOutput.output!.usage()).toMatchObject({ maxBytes: 8 * MiB, maxFiles: 100 });
    withOutput.output!.close();
    // The default wall time is enforced, not just reported.
    expect((await child.exited).reason).toBe('timeout');
    const tmp = await z.spawn({ args: ['tmp-size'] });
    expect(Number(await collect(tmp.stdout))).toBe(16 * MiB);
  });

  it.each([
    ['memory above --max-memory', { limits: { memoryBytes: 1024 * MiB } }, 'memoryBytes', 1024 * MiB, 512 * MiB],
    ['no memory limit (null) under --max-memory', { limits: { memoryBytes: null } }, 'memoryBytes', null, 512 * MiB],
    ['pids above --max-pids', { limits: { pids: 25 } }, 'pids', 25, 24],
    ['wall time above --max-wall-time', { limits: { wallTimeMs: 5001 } }, 'wallTimeMs', 5001, 5000],
    ['no wall-time limit (null) under --max-wall-time', { limits: { wallTimeMs: null } }, 'wallTimeMs', null, 5000],
    ['a 1 TiB /tmp above --tmp-bytes', { limits: { tmpBytes: 2 ** 40 } }, 'tmpBytes', 2 ** 40, 16 * MiB],
    ['a /tmp above --tmp-bytes through sandbox.tmpBytes', { sandbox: { tmpBytes: 32 * MiB } }, 'tmpBytes', 32 * MiB, 16 * MiB],
    ['fsize 2^52 above --fsize', { limits: { fileBytes: 2 ** 52 } }, 'fileBytes', 2 ** 52, MiB],
    ['fsize above --fsize through sandbox.rlimits.fsize', { sandbox: { rlimits: { fsize: 2 * MiB } } }, 'fileBytes', 2 * MiB, MiB],
    ['nofile 20000 above --nofile', { sandbox: { rlimits: { nofile: 20_000 } } }, 'nofile', 20_000, 128],
    ['a 1 TiB output above --max-output-bytes', { limits: { outputBytes: 2 ** 40 }, output: {} }, 'outputBytes', 2 ** 40, 16 * MiB],
    ['101 output files above --max-output-files', { limits: { outputFiles: 101 } }, 'outputFiles', 101, 100],
  ] as const)('refuses %s with a LimitCapError naming the field, the value and the cap', async (_what, opts, field, requested, cap) => {
    const err = await refusal(z.spawn({ args: ['exit', 0], ...(opts as object) }));
    expect(err).toMatchObject({ field, requested, cap, step: 'limits' });
    const path = field === 'nofile' ? 'sandbox.rlimits.nofile' : `limits.${field}`;
    expect(err.message).toContain(`\`${path}\` asked for ${requested === null ? 'no limit (null)' : requested}, above this zygote's cap of ${cap}`);
    // The connection carries on: the next spawn works.
    const next = await z.spawn({ args: ['exit', 0] });
    expect((await next.exited).code).toBe(0);
  });

  it('positive control: at each cap, and below it, the spawn works and the child gets exactly that', async () => {
    const atCap = await hanging(z, { memoryBytes: 512 * MiB, pids: 24, wallTimeMs: 5000, tmpBytes: 16 * MiB, fileBytes: MiB }, { rlimits: { nofile: 128 } });
    expect(childCgroupFile(atCap.pid, 'memory', 'memory.limit_in_bytes')).toBe(String(512 * MiB));
    expect(atCap.limits).toMatchObject({ memoryBytes: 512 * MiB, pids: 24, wallTimeMs: 5000, tmpBytes: 16 * MiB, fileBytes: MiB, nofile: 128 });
    atCap.kill();
    expect((await atCap.exited).reason).toBe('killed');
    const below = await hanging(z, { memoryBytes: 64 * MiB, pids: 12, wallTimeMs: 2000 });
    expect(childCgroupFile(below.pid, 'memory', 'memory.limit_in_bytes')).toBe(String(64 * MiB));
    expect(childCgroupFile(below.pid, 'pids', 'pids.max')).toBe('12');
    below.kill();
    await below.exited;
    const tmp = await z.spawn({ args: ['tmp-size'], limits: { tmpBytes: 4 * MiB } });
    expect(Number(await collect(tmp.stdout))).toBe(4 * MiB);
    const output = await z.spawn({ args: ['exit', 0], limits: { outputBytes: 16 * MiB, outputFiles: 100 }, output: {} });
    await output.exited;
    expect(output.output!.usage()).toMatchObject({ maxBytes: 16 * MiB, maxFiles: 100 });
    output.output!.close();
  });

  it("applies connect(path, { limits }) as that handle's defaults, within the caps", async () => {
    const h = await connect(socket, { limits: { memoryBytes: 128 * MiB, wallTimeMs: 3000 } });
    try {
      const child = await hanging(h);
      expect(childCgroupFile(child.pid, 'memory', 'memory.limit_in_bytes')).toBe(String(128 * MiB));
      expect(child.limits).toMatchObject({ memoryBytes: 128 * MiB, wallTimeMs: 3000 });
      child.kill();
      await child.exited;
      const over = await connect(socket, { limits: { memoryBytes: 600 * MiB } });
      try {
        expect(await refusal(over.spawn({ args: ['exit', 0] }))).toMatchObject({ field: 'memoryBytes', requested: 600 * MiB, cap: 512 * MiB });
      } finally {
        await over.close();
      }
    } finally {
      await h.close();
    }
  });
});

describe('the caps hold on the wire, whatever the client library does', () => {
  /** A raw client: greets, sends one spawn with these wire limits, returns the reply. */
  async function rawSpawn(limits: WireLimits, sandbox: { nofile?: number; fsize?: number } = {}): Promise<ServerMessage> {
    const fd = native.connectUnix(socket);
    try {
      const next = async (): Promise<ServerMessage> => {
        const deadline = performance.now() + 10_000;
        for (;;) {
          const p = native.recvPacket(fd, MAX_CONTROL_FRAME_BYTES + 4);
          if (p === 'eof') throw new Error('the zygote hung up');
          if (p !== null) {
            for (const f of p.fds) native.close(f);
            return decodeServerMessage(p.data);
          }
          if (performance.now() > deadline) throw new Error('no reply from the zygote within 10 s');
          native.poll(Int32Array.from([fd]), Int16Array.from([POLLIN]), new Int16Array(1), 20);
          await new Promise((r) => setTimeout(r, 0));
        }
      };
      expect((await next()).kind).toBe('hello');
      native.sendPacket(fd, encodeClientMessage({ kind: 'spawn', id: 1, argsJson: '["exit", 0]', name: 'raw', sandbox: { skip: [], ...sandbox }, limits }), []);
      return await next();
    } finally {
      native.close(fd);
    }
  }

  it.each([
    ['memory above the cap', { memoryBytes: 2 ** 40 }, {}, { field: 'memoryBytes', requested: 2 ** 40, cap: 512 * MiB }],
    ['no memory limit (NO_LIMIT, 0)', { memoryBytes: NO_LIMIT }, {}, { field: 'memoryBytes', requested: null, cap: 512 * MiB }],
    ['no pids limit', { pids: NO_LIMIT }, {}, { field: 'pids', requested: null, cap: 24 }],
    ['a 1 TiB /tmp', { tmpBytes: 2 ** 40 }, {}, { field: 'tmpBytes', requested: 2 ** 40, cap: 16 * MiB }],
    ['fsize 2^52', {}, { fsize: 2 ** 52 }, { field: 'fileBytes', requested: 2 ** 52, cap: MiB }],
    ['nofile 20000', {}, { nofile: 20_000 }, { field: 'nofile', requested: 20_000, cap: 128 }],
    ['a 1 TiB output', { outputBytes: 2 ** 40 }, {}, { field: 'outputBytes', requested: 2 ** 40, cap: 16 * MiB }],
    ['a million output files', { outputFiles: 1e6 }, {}, { field: 'outputFiles', requested: 1e6, cap: 100 }],
  ] as const)('refuses %s sent by a raw client with a spawnFailed carrying aboveCap', async (_what, limits, sandbox, aboveCap) => {
    const reply = await rawSpawn(limits as WireLimits, sandbox);
    expect(reply).toMatchObject({ kind: 'spawnFailed', id: 1, step: 'limits', aboveCap });
  });

  it('refuses a negative limit or a /tmp of 0 (a tmpfs of size 0 is unbounded), naming the field', async () => {
    expect(await rawSpawn({ wallTimeMs: -5 })).toMatchObject({ kind: 'spawnFailed', step: 'limits', message: 'limits.wallTimeMs must be a positive integer, or 0 for no limit, got -5' });
    expect(await rawSpawn({ tmpBytes: 0 })).toMatchObject({ kind: 'spawnFailed', step: 'limits', message: 'tmpBytes must be a positive integer, got 0' });
    expect(await rawSpawn({ outputBytes: 0 })).toMatchObject({ kind: 'spawnFailed', step: 'limits', message: 'outputBytes must be a positive integer, got 0' });
  });

  it('positive control: the same raw client at the caps is served', async () => {
    const reply = await rawSpawn({ memoryBytes: 512 * MiB, pids: 24, tmpBytes: 16 * MiB }, { nofile: 128, fsize: MiB });
    expect(reply).toMatchObject({ kind: 'spawned', id: 1, limits: { memoryBytes: 512 * MiB, pids: 24, tmpBytes: 16 * MiB, nofile: 128, fileBytes: MiB } });
  });
});

describe('zygote serve limit flags', () => {
  it.each([
    [['--default-memory', '2G', '--max-memory', '1G'], '--default-memory 2147483648 is above --max-memory 1073741824'],
    [['--default-pids', 'none', '--max-pids', '64'], '--default-pids none is above --max-pids 64'],
    [['--max-memory', 'lots'], 'expected a positive number of bytes (a K, M, G or T suffix for KiB, MiB...) or "none", got "lots"'],
    [['--default-pids', '5'], 'Expected the default `pids` to be at least 10, got 5'],
    [['--tmp-bytes', '0'], 'expected a positive number of bytes'],
    [['--default-output-bytes', '32M', '--max-output-bytes', '16M'], '--default-output-bytes 33554432 is above --max-output-bytes 16777216'],
    [['--max-output-files', 'none'], 'expected a positive integer, got "none"'],
  ])('refuses %j at start-up, saying why', async (args, message) => {
    const s = await serve(args, join(dir, `bad-${Math.random().toString(16).slice(2)}.sock`));
    expect(await bounded(s.exit, 10_000, 'zygote serve to exit')).not.toBe(0);
    expect(s.err()).toContain(message);
  });

  it('positive control: --max-memory none lets a client lift its memory limit', async () => {
    const path = join(dir, 'open.sock');
    const s = await serve(['--max-memory', 'none'], path);
    const h = await connect(path);
    try {
      const child = await hanging(h, { memoryBytes: null });
      expect(childCgroupFile(child.pid, 'memory', 'memory.limit_in_bytes')).toBeNull();
      expect(child.limits.memoryBytes).toBeNull();
      child.kill();
      await child.exited;
    } finally {
      await h.close();
      s.proc.kill('SIGTERM');
      await bounded(s.exit, 10_000, 'zygote serve to exit');
    }
  });
});
