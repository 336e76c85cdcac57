// The zygote gives back the heap a busy spell grew, once it is quiet (zygote/heap-trim.ts): a
// real `zygote serve`, real spawns, its heap and RSS read from its metrics.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { connect } from '../../dist/client/index.js';
import { HEAP_TRIM_GROWTH_BYTES, HEAP_TRIM_IDLE_MS } from '../../dist/zygote/heap-trim.js';
import { collect, waitFor } from '../helpers/index.js';
import { scrape, value } from '../helpers/metrics.js';
import { startServed, stopAllServed } from '../helpers/served.js';

afterEach(stopAllServed);

const MiB = 2 ** 20;
/**
 * The burst: this many spawns at once, each with an 8 KiB argument. Measured here: the queue
 * grew the committed heap 17 -> 29-30 MiB, with or without three CPU hogs beside it. (400 spawns
 * 8 at a time grew it 1.8 MiB on a quiet host and shrank it 1.5-5.5 MiB on a loaded one.)
 */
const SPAWNS = 300;
const FILLER = 'x'.repeat(8192);

describe('heap trim', () => {
  it('gives back the heap a burst of spawns grew once idle, and only when it grew', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zygote-trim-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const target = { socketPath: join(dir, 'metrics.sock') };
    // Two children at a time and the rest queued: the queue holds every waiting spawn's request,
    // args and all, in the zygote's heap (the young generation's own growth and shrinking
    // follow V8's view of the allocation rate, which a loaded host makes too low to count on).
    const s = await startServed(['--metrics', `unix:${target.socketPath}`, '--max-children', '2', '--max-queue', String(SPAWNS), '--queue-timeout', '600000', '--log-format', 'json', '--log-level', 'debug', '--quiet']);
    const figures = async () => {
      const t = await scrape(target);
      return { heap: value(t, 'zygote_heap_size_bytes'), rss: value(t, 'zygote_resident_memory_bytes'), trims: value(t, 'zygote_heap_trims_total') };
    };
    const start = await figures();
    const z = await connect(s.socket);
    onTestFinished(() => z.close());
    const spawnOne = async (i: number) => {
      const ch = await z.spawn({ args: ['echo-args', String(i), FILLER] });
      const [out, exit] = await Promise.all([collect(ch.stdout), ch.exited]);
      expect(exit).toMatchObject({ code: 0 });
      expect(out).toBe(JSON.stringify([String(i), FILLER]));
    };
    await Promise.all(Array.from({ length: SPAWNS }, (_, i) => spawnOne(i)));
    // The control: right after the burst (well within the idle time) the heap has grown enough
    // to be worth a trim, and none has run.
    const busy = await figures();
    expect(busy.trims).toBe(0);
    expect(busy.heap - start.heap).toBeGreaterThanOrEqual(HEAP_TRIM_GROWTH_BYTES);

    await waitFor(() => s.stderr().includes('"event":"heap-trimmed"'), HEAP_TRIM_IDLE_MS + 10_000, 'the idle zygote to trim its heap');
    const line = JSON.parse(s.stderr().split('\n').find((l) => l.includes('"event":"heap-trimmed"'))!) as { beforeBytes: number; afterBytes: number; ms: number };
    expect(line.beforeBytes).toBeGreaterThan(line.afterBytes);
    const idle = await figures();
    expect(idle.trims).toBe(1);
    // Back below where it started (the warm-up left a young generation larger than V8's initial).
    expect(idle.heap).toBeLessThanOrEqual(start.heap);
    expect(idle.rss).toBeLessThan(busy.rss);
    expect(idle.rss - start.rss).toBeLessThan(4 * MiB);

    // The zygote forks as well after a trim; and a quiet spell after a spawn or two, with nothing
    // grown, is left alone.
    await spawnOne(SPAWNS);
    await new Promise((r) => setTimeout(r, HEAP_TRIM_IDLE_MS + 1_000));
    expect((await figures()).trims).toBe(1);
    // 300 spawns through two slots took 12-23 s here, alone and beside three CPU hogs.
  }, 120_000);
});
