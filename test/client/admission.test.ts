// An embedded zygote's own caps: startZygote({ maxChildren, maxQueue, queueTimeoutMs }). Its one
// client is the renderer, so there is no per-uid share to speak of; the cap on live children
// and the queue hold as for `zygote serve` (test/zygote/serve-tenants.test.ts).
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, SpawnError, startZygote, ZygoteBusyError, type Zygote, type ZygoteChild } from '../../dist/client/index.js';
import { ECHO_MAIN } from '../helpers/index.js';

async function hanging(z: Zygote): Promise<ZygoteChild> {
  const child = await z.spawn({ args: ['hang'] });
  await new Promise((r) => child.stdout.once('data', r));
  return child;
}

describe('startZygote({ maxChildren, maxQueue, queueTimeoutMs })', () => {
  it('refuses a spawn past maxChildren with no queue: a ZygoteBusyError (a SpawnError) naming the cap', async () => {
    const z = await startZygote({ main: ECHO_MAIN, maxChildren: 1, maxQueue: 0 });
    try {
      const first = await hanging(z);
      const err = await z.spawn({ args: ['exit', 0] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ZygoteBusyError);
      expect(err).toBeInstanceOf(SpawnError);
      expect(err).toMatchObject({ code: 'ERR_ZYGOTE_BUSY', cap: 'children', limit: 1, step: 'admission', errno: '' });
      first.kill();
      await first.exited;
      // Positive control: the slot is free again.
      const next = await z.spawn({ args: ['exit', 0] });
      expect((await next.exited).code).toBe(0);
    } finally {
      await z.close();
    }
  });

  it('queues a spawn that finds it full and forks it when a child is reaped, though that takes longer than spawnTimeoutMs (the zygote says it is queued)', async () => {
    const z = await startZygote({ main: ECHO_MAIN, maxChildren: 1, maxQueue: 1, spawnTimeoutMs: 300 });
    try {
      const first = await z.spawn({ args: ['sleep', 800] });
      const t0 = performance.now();
      const queued = await z.spawn({ args: ['exit', 0] });
      // It waited for the first to exit, past its own 300 ms.
      expect(performance.now() - t0).toBeGreaterThan(300);
      expect((await first.exited).code).toBe(0);
      expect((await queued.exited).code).toBe(0);
      // The queue holds one: with one waiting, the next is refused.
      const hold = await hanging(z);
      const waiting = z.spawn({ args: ['exit', 0] });
      const full = await z.spawn({ args: ['exit', 0] }).catch((e: unknown) => e);
      expect(full).toMatchObject({ code: 'ERR_ZYGOTE_BUSY', cap: 'queue-full', limit: 1 });
      hold.kill();
      expect((await (await waiting).exited).code).toBe(0);
    } finally {
      await z.close();
    }
  });

  it('refuses a spawn that waited past queueTimeoutMs (queue-timeout)', async () => {
    const z = await startZygote({ main: ECHO_MAIN, maxChildren: 1, queueTimeoutMs: 200 });
    try {
      const hold = await hanging(z);
      const err = await z.spawn({ args: ['exit', 0] }).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'ZygoteBusyError', code: 'ERR_ZYGOTE_BUSY', cap: 'queue-timeout', limit: 200 });
      expect((err as Error).message).toContain('no child slot came free within 200 ms: the zygote has 1 live children, its cap (1)');
      hold.kill();
    } finally {
      await z.close();
    }
  });

  it.each([
    [{ maxChildren: 0 }, 'Expected `maxChildren` to be an integer from 1 to 9007199254740991, got 0 (number)'],
    [{ maxChildren: 1.5 }, 'Expected `maxChildren` to be an integer from 1 to 9007199254740991, got 1.5 (number)'],
    [{ maxQueue: -1 }, 'Expected `maxQueue` to be an integer from 0 to 9007199254740991, got -1 (number)'],
    [{ maxQueue: '4' }, 'Expected `maxQueue` to be an integer from 0 to 9007199254740991, got "4" (string)'],
    [{ queueTimeoutMs: 0 }, 'Expected `queueTimeoutMs` to be an integer from 1 to 3600000, got 0 (number)'],
    [{ maxChildren: 8, sandbox: { uidRange: { start: 100000, count: 4 } } }, "Expected `maxChildren` (8) to be at most the uid range's count (4)"],
  ])('refuses %j with an InvalidOptionError naming it', async (opts, message) => {
    const err = await startZygote({ main: ECHO_MAIN, ...(opts as object) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as Error).message).toContain(message);
  });
});
