// Faults around a served zygote, with real processes and bounded waits: a client that stops
// reading, a half-written frame, a client gone mid-request, a burst of 200 connections, the
// zygote SIGKILLed (every pending spawn gets a ZygoteGoneError, the handle says 'gone', and
// connect() retries until a new zygote listens) and SIGSTOPped (spawns time out with a typed
// error, and recover after SIGCONT).
import { afterEach, describe, expect, it } from 'vitest';
import { connect, SpawnError, startZygote, ZygoteGoneError, ZygoteRefusedError, type Zygote } from '../../dist/client/index.js';
import { encodeClientMessage } from '../../dist/protocol/control.js';
import { native } from '../../dist/native/index.js';
import { bounded, collect, ECHO_MAIN, waitFor } from '../helpers/index.js';
import { startServed, stopAllServed } from '../helpers/served.js';

afterEach(stopAllServed);

async function timedSpawn(z: Zygote): Promise<number> {
  const t0 = performance.now();
  const c = await z.spawn({ args: ['echo-args'] });
  const ms = performance.now() - t0;
  await Promise.all([collect(c.stdout), c.exited]);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

describe('a served zygote under client faults', () => {
  it("a client that stops reading delays no other client's spawns by more than 100 ms, and is dropped", async () => {
    const s = await startServed();
    const z = await connect(s.socket);
    const baseline: number[] = [];
    for (let i = 0; i < 10; i++) baseline.push(await timedSpawn(z));
    // The staller asks 2,000 questions and never reads an answer: its socket fills (a few
    // hundred packets), the rest of the answers wait in the zygote's queue for it (fewer than
    // the 4,096 that get a client dropped). Each send of the zygote's would block from now on.
    const staller = native.connectUnix(s.socket);
    native.setNonBlocking(staller, true);
    const ask = encodeClientMessage({ kind: 'stats', id: 1 });
    /** Sends n questions; 'dropped' once the zygote has closed the staller. */
    const sendAll = async (n: number): Promise<'sent' | 'dropped'> => {
      for (let sent = 0; sent < n; ) {
        try {
          if (native.sendPacket(staller, ask, [])) sent++;
          else await new Promise((r) => setTimeout(r, 5)); // the zygote reads 64 a round
        } catch (err) {
          if (['ECONNRESET', 'EPIPE'].includes((err as NodeJS.ErrnoException).code ?? '')) return 'dropped';
          throw err;
        }
      }
      return 'sent';
    };
    expect(await bounded(sendAll(2_000), 20_000, 'the staller to fill')).toBe('sent');
    await new Promise((r) => setTimeout(r, 200));
    const during: number[] = [];
    for (let i = 0; i < 10; i++) during.push(await timedSpawn(z));
    expect(median(during) - median(baseline)).toBeLessThan(100);
    // Past 4,096 unsent answers the zygote gives up on it and closes it.
    expect(await bounded(sendAll(5_000), 30_000, 'the staller to overflow')).toBe('dropped');
    await waitFor(() => /closed \(.*\); killed 0 children/.test(s.stderr()), 20_000, 'the staller dropped');
    native.close(staller);
    expect(await timedSpawn(z)).toBeGreaterThan(0);
    await z.close();
  });

  it('a half-written frame and a client gone mid-request leave the server serving, with nothing left behind', async () => {
    const s = await startServed();
    const half = native.connectUnix(s.socket);
    // A frame header that claims 100 bytes, with 10 of them.
    native.sendPacket(half, Buffer.concat([Buffer.from([0, 0, 0, 100]), Buffer.alloc(10, 1)]), []);
    await waitFor(() => s.stderr().includes('bad frame'), 5_000, 'the bad frame logged');
    native.close(half);
    // A spawn request, then gone before the answer.
    const gone = native.connectUnix(s.socket);
    native.sendPacket(gone, encodeClientMessage({ kind: 'spawn', id: 1, argsJson: '["hang"]', name: 'orphan', sandbox: { skip: [] }, limits: {} }), []);
    native.close(gone);
    const z = await connect(s.socket);
    expect(await timedSpawn(z)).toBeGreaterThan(0);
    // The orphan's child is killed and reaped with its connection.
    await waitFor(() => !s.stderr().includes('name="orphan"') || /closed \(.*\); killed 1 children/.test(s.stderr()), 10_000, 'the orphan reaped');
    await bounded(
      (async () => {
        while ((await z.stats()).busy > 0) await new Promise((r) => setTimeout(r, 50));
      })(),
      10_000,
      'no child left',
    );
    await z.close();
  });

  it('a burst of 200 connections is served or refused, each cleanly, and the server stays healthy', async () => {
    const s = await startServed(['--max-connections-per-uid', '64']);
    const results = await bounded(Promise.allSettled(Array.from({ length: 200 }, () => connect(s.socket))), 60_000, '200 connects');
    const served = results.filter((r): r is PromiseFulfilledResult<Zygote> => r.status === 'fulfilled').map((r) => r.value);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);
    expect(served.length + refused.length).toBe(200);
    expect(served.length).toBeGreaterThanOrEqual(1);
    expect(served.length).toBeLessThanOrEqual(64);
    for (const e of refused) expect(e).toBeInstanceOf(ZygoteRefusedError);
    expect(new Set(refused.map((e) => (e as ZygoteRefusedError).reason))).toEqual(new Set(refused.length ? ['connections-per-uid'] : []));
    expect((await served[0].health()).healthy).toBe(true);
    // The rest hang up; the first still spawns (a new connection could race the zygote's reading of those hang-ups).
    await Promise.all(served.slice(1).map((z) => z.close()));
    expect(await timedSpawn(served[0])).toBeGreaterThan(0);
    await served[0].close();
  });
});

describe('the zygote killed or stopped', () => {
  it("SIGKILL: every pending spawn rejects with ZygoteGoneError naming the signal, and the handle emits 'gone'", async () => {
    const z = await startZygote({ main: ECHO_MAIN, maxChildren: 1, queueTimeoutMs: 60_000 });
    const running = await z.spawn({ args: ['hang'] });
    const queued = Array.from({ length: 4 }, () => z.spawn({ args: ['echo-args'] }));
    await bounded(
      (async () => {
        while ((await z.stats()).queued < 4) await new Promise((r) => setTimeout(r, 20));
      })(),
      10_000,
      'four spawns queued',
    );
    const gone = new Promise<ZygoteGoneError>((r) => z.once('gone', r));
    process.kill(z.pid, 'SIGKILL');
    const settled = await bounded(Promise.allSettled(queued), 10_000, 'the queued spawns to settle');
    for (const r of settled) {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason as ZygoteGoneError;
      expect(err).toBeInstanceOf(ZygoteGoneError);
      expect(err).toMatchObject({ code: 'ERR_ZYGOTE_GONE', signal: 'SIGKILL', exitCode: null });
    }
    expect((await bounded(gone, 5_000, "'gone'")).message).toContain('killed by SIGKILL');
    await expect(z.spawn({ args: ['echo-args'] })).rejects.toBeInstanceOf(ZygoteGoneError);
    // Its running child is orphaned with the same error: nobody is left to report its exit.
    await expect(running.exited).rejects.toBeInstanceOf(ZygoteGoneError);
    await z.close();
  });

  it('SIGKILL of a served zygote: its clients get ZygoteGoneError, and connect({ retryMs }) finds the next one', async () => {
    const s = await startServed();
    const z = await connect(s.socket);
    const gone = new Promise<ZygoteGoneError>((r) => z.once('gone', r));
    s.proc.kill('SIGKILL');
    expect(await bounded(gone, 10_000, "'gone'")).toMatchObject({ code: 'ERR_ZYGOTE_GONE', exitCode: null, signal: null });
    await expect(z.spawn({ args: ['echo-args'] })).rejects.toBeInstanceOf(ZygoteGoneError);
    await s.exit;
    // The stale socket is still there: one attempt fails, a retrying connect waits for the restart.
    await expect(connect(s.socket)).rejects.toThrow(/ECONNREFUSED/);
    const retrying = connect(s.socket, { retryMs: 30_000 });
    await new Promise((r) => setTimeout(r, 300));
    await startServed([], { socket: s.socket });
    const again = await bounded(retrying, 30_000, 'the retrying connect');
    expect(await timedSpawn(again)).toBeGreaterThan(0);
    await again.close();
  });

  it('SIGSTOP for 5 s: a spawn times out with a typed error; after SIGCONT the same handle spawns again', async () => {
    const s = await startServed();
    const z = await connect(s.socket, { spawnTimeoutMs: 1_000 });
    expect(await timedSpawn(z)).toBeGreaterThan(0);
    s.proc.kill('SIGSTOP');
    try {
      const err = await z.spawn({ args: ['echo-args'] }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SpawnError);
      expect(err).toMatchObject({ step: 'timeout' });
      await new Promise((r) => setTimeout(r, 4_000));
    } finally {
      s.proc.kill('SIGCONT');
    }
    expect(await bounded(timedSpawn(z), 10_000, 'a spawn after SIGCONT')).toBeGreaterThan(0);
    expect((await z.health()).healthy).toBe(true);
    await z.close();
  });
});
