// Many tenants, one `zygote serve`: how much one client uid may take (connections, live
// children, the queue), and that the rest is left for the others. The real CLI runs as root
// with two allowed unprivileged uids; each client is a real process of its uid (setpriv)
// driven a command at a time (test/fixtures/tenant-client.mjs). Each cap is refused with its
// typed error naming it, beside a positive control where the same requests succeed with the
// cap raised.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { scratchPackage } from '../helpers/deputy.js';
import { waitFor } from '../helpers/index.js';
import { fdCount, fdList, serveAsRoot, steadyFdCount, Tenant, type Served } from '../helpers/tenant.js';

const A = 23472;
const B = 23473;
const UNLISTED = 23474;
const RANGE = '230000:3';
const HANG = ['hang'];

let scratch: string;
let pkg: string;
let n = 0;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(() => {
  ({ scratch, pkg } = scratchPackage('zygote-tenants-'));
});
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function serve(extra: string[]): Promise<Served> {
  const s = await serveAsRoot(join(scratch, `t${n++}.sock`), [A, B], extra);
  cleanup.push(() => s.stop());
  return s;
}

/** A client of uid, connected (handle 'main'). */
async function tenant(uid: number, socket: string): Promise<Tenant> {
  const t = Tenant.start(pkg, uid, socket);
  cleanup.push(() => t.stop());
  expect(await t.call('connect')).toMatchObject({ ok: true });
  return t;
}

/** Holds a hanging child of t's under tag. */
async function hold(t: Tenant, tag: string): Promise<void> {
  expect(await t.call('spawn', { tag, args: HANG }), `uid ${t.uid} spawning ${tag}`).toMatchObject({ ok: true });
}

const busy = (cap: string, limit: number) => ({ ok: false, name: 'ZygoteBusyError', code: 'ERR_ZYGOTE_BUSY', step: 'admission', cap, limit });

describe('--max-connections-per-uid', () => {
  it('refuses the third connection of a uid at 2 with a ZygoteRefusedError naming the cap; the other uid still connects', async () => {
    const s = await serve(['--max-connections-per-uid', '2']);
    const a = await tenant(A, s.socket);
    expect(await a.call('connect', { handle: 'second' })).toMatchObject({ ok: true });
    const third = await a.call('connect', { handle: 'third' });
    expect(third).toMatchObject({ ok: false, name: 'ZygoteRefusedError', code: 'ERR_ZYGOTE_REFUSED', reason: 'connections-per-uid', limit: 2 });
    expect(third.message).toContain(`refused this connection (connections-per-uid): uid ${A} has 2 connections already`);
    await tenant(B, s.socket);
    // A connection given back makes room again.
    expect(await a.call('close', { handle: 'second' })).toMatchObject({ ok: true });
    // The zygote sees the hang-up on its next round: a connect in between is still refused.
    let again = await a.call('connect', { handle: 'third' });
    for (let i = 0; i < 20 && !again.ok; i++) again = await a.call('connect', { handle: 'third' });
    expect(again).toMatchObject({ ok: true });
  });

  it('positive control: with the cap at 3, the same third connection is served', async () => {
    const s = await serve(['--max-connections-per-uid', '3']);
    const a = await tenant(A, s.socket);
    expect(await a.call('connect', { handle: 'second' })).toMatchObject({ ok: true });
    expect(await a.call('connect', { handle: 'third' })).toMatchObject({ ok: true });
  });
});

describe('--max-children', () => {
  it('at 2 with no queue, refuses a third live child, whoever asks, with a ZygoteBusyError (children, 2)', async () => {
    const s = await serve(['--max-children', '2', '--max-children-per-uid', '2', '--max-queue', '0']);
    const a = await tenant(A, s.socket);
    const b = await tenant(B, s.socket);
    await hold(a, 'a1');
    await hold(b, 'b1');
    const refused = await a.call('spawn', { tag: 'a2', args: HANG });
    expect(refused).toMatchObject(busy('children', 2));
    expect(refused.message).toContain('the zygote has 2 live children, its cap (2), and no queue');
    expect(await b.call('spawn', { tag: 'b2', args: HANG })).toMatchObject(busy('children', 2));
    // A reaped child frees its slot.
    expect(await b.call('kill', { tag: 'b1' })).toMatchObject({ ok: true });
    await hold(a, 'a2');
  });

  it('positive control: with --max-children 3, the same spawn is forked', async () => {
    const s = await serve(['--max-children', '3', '--max-children-per-uid', '2', '--max-queue', '0']);
    const a = await tenant(A, s.socket);
    const b = await tenant(B, s.socket);
    await hold(a, 'a1');
    await hold(b, 'b1');
    await hold(a, 'a2');
  });
});

describe('--max-children-per-uid', () => {
  it('by default leaves a slot for each other uid: at --max-children 3 and two uids, one uid gets 2, its third is refused (children-per-uid, 2; no queue), and the other uid still spawns', async () => {
    const s = await serve(['--max-children', '3', '--max-queue', '0']);
    const a = await tenant(A, s.socket);
    const b = await tenant(B, s.socket);
    await hold(a, 'a1');
    await hold(a, 'a2');
    const refused = await a.call('spawn', { tag: 'a3', args: HANG });
    expect(refused).toMatchObject(busy('children-per-uid', 2));
    expect(refused.message).toContain(`uid ${A} has 2 live children, the most one client uid may have (2), and the zygote has no queue`);
    await hold(b, 'b1');
  });

  it('positive control: with --max-children-per-uid 3, the same third child is forked', async () => {
    const s = await serve(['--max-children', '3', '--max-children-per-uid', '3', '--max-queue', '0']);
    const a = await tenant(A, s.socket);
    for (const tag of ['a1', 'a2', 'a3']) await hold(a, tag);
  });
});

describe(`--uid-range ${RANGE} shared by two client uids`, () => {
  it("client A holds what it may (2 of the 3 uids), its next spawn waits; client B's spawn gets the last uid at once; each waiting spawn is forked when a child exits", async () => {
    const s = await serve(['--uid-range', RANGE]);
    const a = await tenant(A, s.socket);
    const b = await tenant(B, s.socket);
    await hold(a, 'a1');
    await hold(a, 'a2');
    expect(await a.call('start', { tag: 'a3', args: HANG })).toMatchObject({ ok: true });
    await waitFor(() => new RegExp(`spawn id=3 for client fd=\\d+ uid=${A} pid=\\d+ queued: uid ${A} has 2 live children, the most one client uid may have \\(2\\)`).test(s.stderr()), 10_000, "A's spawn to be queued");
    // A waits, yet the last uid of the range is B's.
    await hold(b, 'b1');
    expect(await a.call('kill', { tag: 'a1' })).toMatchObject({ ok: true });
    expect(await a.call('result', { tag: 'a3' })).toMatchObject({ ok: true });
    // Every uid is in use: B's next waits for one, too.
    expect(await b.call('start', { tag: 'b2', args: ['exit', 0] })).toMatchObject({ ok: true });
    await waitFor(() => new RegExp(`spawn id=2 for client fd=\\d+ uid=${B} pid=\\d+ queued: the zygote has 3 live children, its cap \\(3\\)`).test(s.stderr()), 10_000, "B's spawn to be queued");
    expect(await a.call('kill', { tag: 'a2' })).toMatchObject({ ok: true });
    expect(await b.call('result', { tag: 'b2' })).toMatchObject({ ok: true });
  });

  it('serves the queue fairly: when a slot frees, the uid with fewer live children goes first, though it queued later', async () => {
    const s = await serve(['--uid-range', RANGE, '--max-children-per-uid', '3']);
    const a = await tenant(A, s.socket);
    const b = await tenant(B, s.socket);
    await hold(a, 'a1');
    await hold(a, 'a2');
    await hold(b, 'b1');
    expect(await a.call('start', { tag: 'a3', args: HANG })).toMatchObject({ ok: true });
    await waitFor(() => /spawn id=3 for client fd=\d+ uid=23472 pid=\d+ queued/.test(s.stderr()), 10_000, "A's spawn to be queued");
    expect(await b.call('start', { tag: 'b2', args: HANG })).toMatchObject({ ok: true });
    await waitFor(() => /spawn id=2 for client fd=\d+ uid=23473 pid=\d+ queued/.test(s.stderr()), 10_000, "B's spawn to be queued");
    // One slot: B (no live child left) before A (two), though A waited longer.
    expect(await b.call('kill', { tag: 'b1' })).toMatchObject({ ok: true });
    expect(await b.call('result', { tag: 'b2' })).toMatchObject({ ok: true });
    expect(s.stderr()).not.toMatch(/spawn id=3 pid=\d+ name="" for client fd=\d+ uid=23472/);
    // The next slot is A's.
    expect(await a.call('kill', { tag: 'a1' })).toMatchObject({ ok: true });
    expect(await a.call('result', { tag: 'a3' })).toMatchObject({ ok: true });
  });

  it("refuses a spawn past a uid's share of the queue or the whole queue (queue-full), and one that waited past --queue-timeout (queue-timeout, 1500)", async () => {
    const s = await serve(['--uid-range', RANGE, '--max-children-per-uid', '3', '--max-queue', '2', '--queue-timeout', '1500']);
    const a = await tenant(A, s.socket);
    const b = await tenant(B, s.socket);
    await hold(a, 'a1');
    await hold(b, 'b1');
    await hold(b, 'b2');
    expect(await a.call('start', { tag: 'a2', args: HANG })).toMatchObject({ ok: true });
    await waitFor(() => /uid=23472 pid=\d+ queued/.test(s.stderr()), 10_000, "A's spawn to be queued");
    // Each of the two uids may hold half of the queue: A's next waits nowhere.
    const share = await a.call('spawn', { tag: 'a3', args: HANG });
    expect(share).toMatchObject(busy('queue-full', 1));
    expect(share.message).toContain(`uid ${A} has 1 spawns waiting, its share of the queue (1)`);
    // B's share was kept for it; then the queue is full for everyone.
    expect(await b.call('start', { tag: 'b3', args: HANG })).toMatchObject({ ok: true });
    await waitFor(() => /uid=23473 pid=\d+ queued/.test(s.stderr()), 10_000, "B's spawn to be queued");
    const full = await a.call('spawn', { tag: 'a4', args: HANG });
    expect(full).toMatchObject(busy('queue-full', 2));
    expect(full.message).toContain('and 2 spawns waiting, as many as its queue holds (2)');
    // Nothing exits: both wait their 1.5 s and are refused.
    for (const [t, tag] of [[a, 'a2'], [b, 'b3']] as const) {
      const timedOut = await t.call('result', { tag });
      expect(timedOut).toMatchObject(busy('queue-timeout', 1500));
      expect(timedOut.message).toContain('no child slot came free within 1500 ms: the zygote has 3 live children, its cap (3)');
    }
    // The queue is empty again, the slots still taken: the next spawn waits, and gets the first free one.
    expect(await a.call('start', { tag: 'a5', args: ['exit', 0] })).toMatchObject({ ok: true });
    expect(await b.call('kill', { tag: 'b1' })).toMatchObject({ ok: true });
    expect(await a.call('result', { tag: 'a5' })).toMatchObject({ ok: true });
  });

  it('a client that disconnects while its spawns wait leaves nothing behind: the fds the queue held are closed', async () => {
    const s = await serve(['--uid-range', RANGE, '--max-children-per-uid', '3']);
    const a = await tenant(A, s.socket);
    await hold(a, 'a1');
    await hold(a, 'a2');
    const input = join(scratch, `b-input-${n}`);
    mkdirSync(input);
    chmodSync(input, 0o755);
    const flat = await steadyFdCount(s.pid);
    const flatList = fdList(s.pid);
    const b = await tenant(B, s.socket);
    await hold(b, 'b1');
    const held = await steadyFdCount(s.pid);
    // Two mounts each: the queue holds their fds while the spawns wait.
    const mounts = [{ source: input, target: '/in' }, { source: pkg, target: '/pkg' }];
    expect(await b.call('start', { tag: 'b2', args: HANG, mounts })).toMatchObject({ ok: true });
    expect(await b.call('start', { tag: 'b3', args: HANG, mounts })).toMatchObject({ ok: true });
    await waitFor(() => /spawn id=3 for client fd=\d+ uid=23473 pid=\d+ queued/.test(s.stderr()), 10_000, `B's spawns to be queued: ${s.stderr()}`);
    expect(fdCount(s.pid)).toBe(held + 4);
    b.kill();
    // B's connection, its child's fds and the queued mount fds all go: back to before B came.
    await waitFor(() => fdCount(s.pid) === flat, 10_000, "the zygote's fds to be as before B came").catch((err: Error) => {
      throw new Error(`${err.message}: before ${flatList}; now ${fdList(s.pid)}`);
    });
    expect(fdList(s.pid)).not.toContain(input);
    // A, whose children were never touched, is served on, and so is a fresh B.
    expect(await a.call('kill', { tag: 'a1' })).toMatchObject({ ok: true });
    await hold(a, 'a3');
    const again = await tenant(B, s.socket);
    expect(await again.call('latency', { n: 1, args: ['exit', 0] })).toMatchObject({ ok: true });
  });
});

describe("an unprivileged client's close()", () => {
  it('kills its children through the zygote (they run as another uid, which it may not signal): each ends as killed', async () => {
    const s = await serve([]);
    const a = await tenant(A, s.socket);
    await hold(a, 'a1');
    await hold(a, 'a2');
    expect(await a.call('close')).toMatchObject({ ok: true, ends: ['killed', 'killed'] });
  });
});

describe('--allow-uid', () => {
  it('a uid not in --allow-uid that reaches the socket gets a ZygoteRefusedError (not-allowed), not a bare hang-up', async () => {
    const s = await serve([]);
    // Take away the outer layer (the socket's 0600 mode and ACL), so the peer check is what refuses.
    chmodSync(s.socket, 0o666);
    const t = Tenant.start(pkg, UNLISTED, s.socket);
    cleanup.push(() => t.stop());
    const refused = await t.call('connect');
    expect(refused).toMatchObject({ ok: false, name: 'ZygoteRefusedError', code: 'ERR_ZYGOTE_REFUSED', reason: 'not-allowed', limit: null });
    expect(refused.message).toContain(`uid ${UNLISTED} is not in --allow-uid`);
    await waitFor(() => s.stderr().includes(`refused connection from uid ${UNLISTED}`), 5000, 'the refusal in the log');
    // Positive control: an allowed uid through the same socket.
    await tenant(A, s.socket);
  });
});

describe('the caps at start-up', () => {
  it.each([
    [['--uid-range', RANGE, '--max-children', '4'], "Expected --max-children (4) to be at most the uid range's count (3)"],
    [['--max-children', '3', '--max-children-per-uid', '4'], 'Expected --max-children-per-uid (4) to be at most --max-children (3)'],
    [['--max-queue', '-1'], "error: option '--max-queue <n>' argument '-1' is invalid"],
    [['--queue-timeout', '0'], "error: option '--queue-timeout <ms>' argument '0' is invalid"],
    [['--queue-timeout', '3600001'], 'Expected --queue-timeout to be an integer from 1 to 3600000, got 3600001 (number)'],
    [['--max-connections-per-uid', 'many'], "error: option '--max-connections-per-uid <n>' argument 'many' is invalid"],
  ])('refuses %j, saying why', async (args, message) => {
    const err = await serveAsRoot(join(scratch, `bad${n++}.sock`), [A], args).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toContain(message);
  });
});
