// End to end: a served zygote, attacked by a raw client speaking packets through the native
// addon. Every bad frame must get an exact reply (a fault and then EOF, or a spawnFailed),
// be logged on the zygote's stderr, and leave the zygote serving other clients.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../dist/client/index.js';
import { native, POLLHUP, POLLIN, type NativePacket } from '../../dist/native/index.js';
import { decodeServerMessage, encodeClientMessage, MAX_CONTROL_FRAME_BYTES, PROTOCOL_VERSION, type ServerMessage } from '../../dist/protocol/control.js';
import { encodeConfig, FORK_SAFE_NODE_FLAGS, type ZygoteConfig } from '../../dist/protocol/config.js';
import { normalizeSandboxDefaults } from '../../dist/protocol/sandbox.js';
import { builtinLimitPolicy } from '../../dist/protocol/limits.js';
import { resolveAdmission } from '../../dist/protocol/admission.js';
import { bounded } from '../helpers/index.js';

const ZYGOTE_MAIN = fileURLToPath(new URL('../../dist/zygote/main.js', import.meta.url));
const FIXTURE_MAIN = new URL('../fixtures/echo-main.mjs', import.meta.url).href;

/** Upper bound for any single wait in this file. */
const WAIT_MS = 10_000;

let dir: string;
let socketPath: string;
let zygote: ChildProcess;
let stderr = '';
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
/** fds this file opened and has not closed yet; closed after each test. */
const open = new Set<number>();

function track(fd: number): number {
  open.add(fd);
  return fd;
}

function closeFd(fd: number): void {
  if (open.delete(fd)) native.close(fd);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls until cond() is truthy or ms pass; returns whether it became truthy. */
async function waitFor(cond: () => boolean, ms = WAIT_MS): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** Settles with p's value, or rejects naming what was awaited once ms pass. */
function within<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  return bounded(p, ms, what);
}

/** The next packet (or EOF) on a raw client socket; throws after ms without one. */
async function nextPacket(fd: number, ms = WAIT_MS): Promise<NativePacket | 'eof'> {
  const deadline = performance.now() + ms;
  for (;;) {
    const p = native.recvPacket(fd, MAX_CONTROL_FRAME_BYTES + 4);
    if (p !== null) {
      if (p !== 'eof') for (const f of p.fds) track(f);
      return p;
    }
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`no packet from the zygote within ${ms} ms`);
    // A short blocking poll, then yield so the zygote's stderr keeps being collected.
    native.poll(Int32Array.from([fd]), Int16Array.from([POLLIN]), new Int16Array(1), Math.min(20, Math.ceil(left)));
    await sleep(0);
  }
}

/** The next packet, which must be a message; returns it with the fds that rode on it. */
async function nextMessage(fd: number): Promise<{ msg: ServerMessage; fds: number[] }> {
  const p = await nextPacket(fd);
  if (p === 'eof') throw new Error('the zygote closed the connection instead of replying');
  expect(p.truncated).toBe(false);
  return { msg: decodeServerMessage(p.data), fds: p.fds };
}

/** Connects a raw client and checks the greeting. */
async function rawClient(): Promise<number> {
  const fd = track(native.connectUnix(socketPath));
  const { msg, fds } = await nextMessage(fd);
  expect(fds).toEqual([]);
  expect(msg).toEqual({ kind: 'hello', protocolVersion: PROTOCOL_VERSION, zygotePid: zygote.pid, nodeVersion: process.version });
  return fd;
}

function send(fd: number, data: Buffer, fds: number[] = []): void {
  expect(native.sendPacket(fd, data, fds), 'the socket took the packet').toBe(true);
}

/** Builds a frame around payload; the length prefix tells the truth unless declared is given. */
function frameOf(payload: ArrayLike<number> | Buffer, declared?: number): Buffer {
  const body = Buffer.from(payload as ArrayLike<number>);
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(declared ?? body.length, 0);
  body.copy(out, 4);
  return out;
}

/** The reply must be exactly one fault with this message, no fds, then EOF. */
async function expectFaultThenEof(fd: number, message: string | RegExp): Promise<string> {
  const { msg, fds } = await nextMessage(fd);
  expect(fds).toEqual([]);
  expect(msg.kind, `reply ${JSON.stringify(msg)}`).toBe('fault');
  const text = (msg as Extract<ServerMessage, { kind: 'fault' }>).message;
  if (typeof message === 'string') expect(text).toBe(message);
  else expect(text).toMatch(message);
  expect(await nextPacket(fd), 'after the fault the zygote hangs up').toBe('eof');
  closeFd(fd);
  return text;
}

function badFrameLines(): string[] {
  return stderr.split('\n').filter((l) => l.includes('error: bad frame from client'));
}

/** The zygote's stderr must get a "bad frame" line quoting the fault. */
async function expectLoggedBadFrame(faultText: string): Promise<void> {
  const line = () => badFrameLines().find((l) => l.endsWith(`: ${faultText}`));
  const found = await waitFor(() => line() !== undefined);
  expect(found, `the zygote's stderr logs the bad frame "${faultText}"; stderr so far:\n${stderr}`).toBe(true);
  expect(line()).toMatch(new RegExp(`zygote\\[${zygote.pid}\\] error: bad frame from client fd=\\d+ uid=\\d+ pid=${process.pid}: `));
}

/** The zygote is alive, and a fresh client-library connection spawns a child that exits 0. */
async function expectZygoteStillServes(): Promise<void> {
  expect(zygote.exitCode, `the zygote exited; stderr:\n${stderr}`).toBeNull();
  expect(zygote.signalCode).toBeNull();
  const z = await within(connect(socketPath, { timeoutMs: WAIT_MS, spawnTimeoutMs: WAIT_MS }), 'connect()');
  try {
    expect(z.pid).toBe(zygote.pid);
    const child = await within(z.spawn({ args: ['echo-args', 'still', 'serving'], name: 'survivor' }), 'spawn()');
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    const stdoutEnded = new Promise<void>((resolve) => child.stdout.once('end', () => resolve()));
    const status = await within(child.exited, 'the survivor child to exit');
    await within(stdoutEnded, "the survivor child's stdout to end");
    expect(status).toMatchObject({ code: 0, signal: null, reason: 'exit' });
    expect(Buffer.concat(chunks).toString()).toBe('["still","serving"]');
  } finally {
    await within(z.close(), 'close()');
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'zygote-bad-frames-'));
  socketPath = join(dir, 'zygote.sock');
  const config: ZygoteConfig = {
    main: FIXTURE_MAIN,
    preload: [],
    control: { kind: 'listen', path: socketPath, allowUids: [process.getuid!()] },
    name: 'bad-frames',
    setupTimeoutMs: WAIT_MS,
    verbose: false,
    shutdownTimeoutMs: 5_000,
    sandbox: normalizeSandboxDefaults(undefined),
    limits: builtinLimitPolicy(),
    admission: resolveAdmission({}, { uids: 1, uidRangeCount: null }),
    allowUnsandboxed: false,
  };
  zygote = spawn(process.execPath, [...FORK_SAFE_NODE_FLAGS, ZYGOTE_MAIN, encodeConfig(config)], { stdio: ['ignore', 'ignore', 'pipe'], env: {} });
  zygote.stderr!.setEncoding('utf8');
  zygote.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
  });
  exited = new Promise((resolve) => zygote.once('exit', (code, signal) => resolve({ code, signal })));
  const up = await waitFor(() => existsSync(socketPath) || zygote.exitCode !== null);
  if (!up || !existsSync(socketPath)) throw new Error(`the zygote did not create ${socketPath} within ${WAIT_MS} ms (exit code ${zygote.exitCode}); stderr:\n${stderr}`);
});

afterEach(() => {
  for (const fd of [...open]) closeFd(fd);
});

afterAll(async () => {
  if (zygote && zygote.exitCode === null && zygote.signalCode === null) {
    zygote.kill('SIGKILL');
    await within(exited, 'the zygote to die after SIGKILL').catch(() => undefined);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The zygote kept no copy of the pipe's write end it was sent: once ours is closed, the read end hangs up. */
async function expectFdNotKept(readEnd: number, writeEnd: number): Promise<void> {
  closeFd(writeEnd);
  const revents = new Int16Array(1);
  const hungUp = await waitFor(() => {
    native.poll(Int32Array.from([readEnd]), Int16Array.from([POLLIN]), revents, 0);
    return (revents[0] & POLLHUP) !== 0;
  });
  expect(hungUp, 'the zygote closed the fd it was sent').toBe(true);
}

describe('a served zygote attacked with bad frames', () => {
  it('greets a raw client with Hello and serves a well-formed spawn (the baseline the attacks are measured against)', async () => {
    const fd = await rawClient();
    send(fd, encodeClientMessage({ kind: 'spawn', id: 1, argsJson: '["echo-args"]', name: 'baseline', sandbox: { skip: [] }, limits: {} }));
    const spawned = await nextMessage(fd);
    expect(spawned.msg).toMatchObject({ kind: 'spawned', id: 1 });
    expect(spawned.fds).toHaveLength(4);
    const exit = await nextMessage(fd);
    expect(exit.msg).toMatchObject({ kind: 'exited', id: 1, code: 0, signal: null });
    await expectZygoteStillServes();
  });

  it('attack: a garbage payload behind a truthful length prefix gets a fault naming where decoding stopped, then EOF', async () => {
    const fd = await rawClient();
    send(fd, frameOf([0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03]));
    const text = await expectFaultThenEof(fd, /^ClientMessage does not decode at offset \d+ of 7: \S/);
    await expectLoggedBadFrame(text);
    await expectZygoteStillServes();
  });

  it('attack: raw garbage whose first 4 bytes claim 16 MiB gets a fault naming the claim and the limit, then EOF', async () => {
    const fd = await rawClient();
    send(fd, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9]));
    const text = await expectFaultThenEof(fd, `frame header claims 16909060 bytes; the limit is ${MAX_CONTROL_FRAME_BYTES}`);
    await expectLoggedBadFrame(text);
    await expectZygoteStillServes();
  });

  it('attack: a length prefix claiming more bytes than the packet holds gets a fault saying so, then EOF', async () => {
    const fd = await rawClient();
    const good = encodeClientMessage({ kind: 'kill', id: 1, signal: 15 });
    const lying = Buffer.from(good);
    lying.writeUInt32BE(good.length - 4 + 100, 0);
    send(fd, lying);
    const text = await expectFaultThenEof(fd, `frame header claims ${good.length - 4 + 100} bytes but ${good.length - 4} followed`);
    await expectLoggedBadFrame(text);
    await expectZygoteStillServes();
  });

  it('attack: a length prefix claiming fewer bytes than the packet holds gets a fault saying so, then EOF', async () => {
    const fd = await rawClient();
    const good = encodeClientMessage({ kind: 'spawn', id: 1, argsJson: '[]', name: '', sandbox: { skip: [] }, limits: {} });
    const lying = Buffer.from(good);
    lying.writeUInt32BE(3, 0);
    send(fd, lying);
    const text = await expectFaultThenEof(fd, `frame header claims 3 bytes but ${good.length - 4} followed`);
    await expectLoggedBadFrame(text);
    await expectZygoteStillServes();
  });

  it('attack: a 2-byte packet, shorter than a frame header, gets a fault saying so, then EOF', async () => {
    const fd = await rawClient();
    send(fd, Buffer.from([0, 0]));
    const text = await expectFaultThenEof(fd, 'frame of 2 bytes is shorter than its 4-byte header');
    await expectLoggedBadFrame(text);
    await expectZygoteStillServes();
  });

  it('attack: an oversized packet (limit + 5 bytes, truthful prefix) gets a fault naming the limit, then EOF', async () => {
    const fd = await rawClient();
    const packet = frameOf(Buffer.alloc(MAX_CONTROL_FRAME_BYTES + 1, 0x41));
    expect(packet.length).toBe(MAX_CONTROL_FRAME_BYTES + 5);
    send(fd, packet);
    const text = await expectFaultThenEof(fd, `frame larger than ${MAX_CONTROL_FRAME_BYTES} bytes`);
    await expectLoggedBadFrame(text);
    await expectZygoteStillServes();
  });

  it('attack: a frame whose ClientMessage union has no member gets a fault saying so, then EOF', async () => {
    const fd = await rawClient();
    send(fd, frameOf([0x00]));
    const text = await expectFaultThenEof(fd, 'ClientMessage must have exactly one member set, found none');
    await expectLoggedBadFrame(text);
    await expectZygoteStillServes();
  });

  it('attack: a spawn missing its required argsJson gets a fault naming the field, then EOF', async () => {
    const fd = await rawClient();
    // 1c: spawn; 15 02: id = 1; 00 00: end of SpawnRequest, end of ClientMessage.
    send(fd, frameOf([0x1c, 0x15, 0x02, 0x00, 0x00]));
    const text = await expectFaultThenEof(fd, 'SpawnRequest.argsJson is required and must be a string');
    await expectLoggedBadFrame(text);
    await expectZygoteStillServes();
  });

  it('attack: a valid kill frame carrying a pipe fd gets a fault about the fd, then EOF, and the zygote does not keep the fd', async () => {
    const fd = await rawClient();
    const [readEnd, writeEnd] = native.pipe().map(track);
    send(fd, encodeClientMessage({ kind: 'kill', id: 1, signal: 15 }), [writeEnd]);
    const text = await expectFaultThenEof(fd, 'unexpected 1 fds on a client frame');
    await expectLoggedBadFrame(text);
    await expectFdNotKept(readEnd, writeEnd);
    await expectZygoteStillServes();
  });

  it('attack: a spawn frame whose fds do not match its mounts, one per mount, gets a fault, and the zygote keeps none of them', async () => {
    const fd = await rawClient();
    const [readEnd, writeEnd] = native.pipe().map(track);
    send(fd, encodeClientMessage({ kind: 'spawn', id: 1, argsJson: '[]', name: '', sandbox: { skip: [] }, limits: {} }), [writeEnd]);
    const text = await expectFaultThenEof(fd, 'a spawn frame with 0 mounts carries 1 fds (one per mount)');
    await expectLoggedBadFrame(text);
    await expectFdNotKept(readEnd, writeEnd);
    await expectZygoteStillServes();
  });

  it('attack: a mount whose fd is not O_PATH (an open file, whose close could wait on its filesystem) gets spawnFailed, and the connection stays usable', async () => {
    const fd = await rawClient();
    const file = track(native.openDirectory('/var/tmp'));
    const mounts = [{ source: '/var/tmp', target: '/tmp/x', writable: false }];
    send(fd, encodeClientMessage({ kind: 'spawn', id: 51, argsJson: '["exit-code", 0]', name: '', sandbox: { skip: [], mounts }, limits: {} }), [file]);
    const failed = await nextMessage(fd);
    expect(failed.msg).toMatchObject({ kind: 'spawnFailed', id: 51, step: 'sandbox policy', message: 'mounts[0] (/var/tmp): its source fd was not opened with O_PATH' });
    closeFd(file);
    send(fd, encodeClientMessage({ kind: 'spawn', id: 52, argsJson: '["exit-code", 0]', name: '', sandbox: { skip: [] }, limits: {} }));
    expect((await nextMessage(fd)).msg).toMatchObject({ kind: 'spawned', id: 52 });
    closeFd(fd);
  });

  it.each([
    ['a JSON object', '{"a":1}'],
    ['a JSON string', '"echo-args"'],
    ['not JSON at all', 'echo-args'],
    ['empty', ''],
  ])('attack: a spawn whose argsJson is %s gets spawnFailed at "arguments", not a fault, and the connection stays usable', async (_, argsJson) => {
    const faultsBefore = badFrameLines().length;
    const fd = await rawClient();
    send(fd, encodeClientMessage({ kind: 'spawn', id: 41, argsJson, name: 'bad-args', sandbox: { skip: [] }, limits: {} }));
    const failed = await nextMessage(fd);
    expect(failed.fds).toEqual([]);
    expect(failed.msg).toEqual({ kind: 'spawnFailed', id: 41, step: 'arguments', errnoName: '', message: 'argsJson is not a JSON array', sandbox: false });
    // Not a fault: the same connection still spawns.
    send(fd, encodeClientMessage({ kind: 'spawn', id: 42, argsJson: '["exit-code", 0]', name: 'after-bad-args', sandbox: { skip: [] }, limits: {} }));
    const spawned = await nextMessage(fd);
    expect(spawned.msg).toMatchObject({ kind: 'spawned', id: 42 });
    expect(spawned.fds).toHaveLength(4);
    const exit = await nextMessage(fd);
    expect(exit.msg).toMatchObject({ kind: 'exited', id: 42, code: 0, signal: null });
    expect(badFrameLines().length, 'a bad argument is not logged as a bad frame').toBe(faultsBefore);
    await expectZygoteStillServes();
  });

  it('attack: a second spawn reusing the id of a live child gets a fault naming the id, then EOF, and the live child is killed', async () => {
    const fd = await rawClient();
    send(fd, encodeClientMessage({ kind: 'spawn', id: 7, argsJson: '["sleep", 60000]', name: 'first', sandbox: { skip: [] }, limits: {} }));
    const spawned = await nextMessage(fd);
    expect(spawned.msg).toMatchObject({ kind: 'spawned', id: 7 });
    expect(spawned.fds).toHaveLength(4);
    const pidfd = spawned.fds[3];
    send(fd, encodeClientMessage({ kind: 'spawn', id: 7, argsJson: '["echo-args"]', name: 'duplicate', sandbox: { skip: [] }, limits: {} }));
    const text = await expectFaultThenEof(fd, 'spawn id 7 is already in use on this connection');
    await expectLoggedBadFrame(text);
    // Dropping the connection kills its children: the first child's pidfd becomes readable when it dies.
    const revents = new Int16Array(1);
    const died = await waitFor(() => {
      native.poll(Int32Array.from([pidfd]), Int16Array.from([POLLIN]), revents, 0);
      return (revents[0] & POLLIN) !== 0;
    });
    expect(died, 'the live child of the faulted connection was killed').toBe(true);
    await expectZygoteStillServes();
  });

  it('survived every attack and shuts down on SIGTERM with exit code 0, removing its socket file', async () => {
    await expectZygoteStillServes();
    expect(stderr).not.toMatch(/serve loop failed|cannot start/);
    expect(existsSync(socketPath)).toBe(true);
    zygote.kill('SIGTERM');
    const status = await within(exited, 'the zygote to exit after SIGTERM');
    expect(status, `stderr:\n${stderr}`).toEqual({ code: 0, signal: null });
    expect(existsSync(socketPath)).toBe(false);
  });
});
