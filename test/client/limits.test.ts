// Limits: a step that runs too long, burns too much CPU or writes too much is ended, and the
// exit says which limit it hit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type Zygote } from '../../dist/client/index.js';
import { collect, ECHO_MAIN } from '../helpers/index.js';

let z: Zygote;

beforeAll(async () => {
  z = await startZygote({ main: ECHO_MAIN });
});
afterAll(async () => {
  await z?.close();
});

describe('wall-time limit', () => {
  it('ends a child stuck in for(;;){} with reason "timeout", soon after the deadline', async () => {
    const child = await z.spawn({ args: ['spin'], limits: { wallTimeMs: 1500 } });
    const [, status] = await Promise.all([collect(child.stdout), child.exited]);
    expect(status).toMatchObject({ reason: 'timeout', signal: 'SIGKILL' });
    expect(status.wallMs).toBeGreaterThanOrEqual(1500);
    // Killed at the deadline (the serve loop's poll wakes for it); wallMs runs to the reap,
    // which includes tearing down the child's namespaces and cgroup: a loaded 2-core machine
    // stretched that past 10% once (1680 ms). A deadline missed by a whole period would show.
    expect(status.wallMs).toBeLessThan(1500 * 1.5);
  });

  it('positive control: the same child under a limit it does not reach exits normally', async () => {
    const child = await z.spawn({ args: ['sleep', 50], limits: { wallTimeMs: 5000 } });
    const [, status] = await Promise.all([collect(child.stdout), child.exited]);
    expect(status).toMatchObject({ code: 0, reason: 'exit' });
  });

  it('applies the handle\'s default limits, which a spawn may override', async () => {
    const strict = await startZygote({ main: ECHO_MAIN, limits: { wallTimeMs: 300 } });
    try {
      const a = await strict.spawn({ args: ['hang'] });
      expect((await a.exited).reason).toBe('timeout');
      const b = await strict.spawn({ args: ['sleep', 500], limits: { wallTimeMs: 5000 } });
      expect((await b.exited).reason).toBe('exit');
    } finally {
      await strict.close();
    }
  });
});

describe('CPU-time limit', () => {
  it('ends a spinning child with reason "cpu-limit" once it used its CPU seconds', async () => {
    const child = await z.spawn({ args: ['spin'], limits: { cpuTimeMs: 1000, wallTimeMs: 20_000 } });
    const [, status] = await Promise.all([collect(child.stdout), child.exited]);
    expect(status.reason, JSON.stringify(status)).toBe('cpu-limit');
    expect(['SIGXCPU', 'SIGKILL']).toContain(status.signal);
    // The kernel charges precise run time for RLIMIT_CPU; rusage samples it in ticks and has
    // read up to 5% low here, so only "most of a second" is asserted.
    expect(status.cpuMs).toBeGreaterThan(800);
  });
});

describe('output limits', () => {
  it('cuts stdout at the cap, kills a child writing 10 GiB (reason "output-limit"), and buffers no more than the cap', async () => {
    const before = process.memoryUsage().rss;
    const child = await z.spawn({ args: ['flood'], limits: { stdoutBytes: 1 << 20 } });
    let got = 0;
    child.stdout.on('data', (d: Buffer) => (got += d.length));
    const [status] = await Promise.all([child.exited, new Promise((r) => child.stdout.once('end', r))]);
    expect(got).toBe(1 << 20);
    expect(status).toMatchObject({ reason: 'output-limit', signal: 'SIGKILL' });
    // The renderer held at most the cap plus stream buffers, never the flood.
    expect(process.memoryUsage().rss - before).toBeLessThan(64 << 20);
  });

  it('caps stderr the same way', async () => {
    const child = await z.spawn({ args: ['flood-stderr'], limits: { stderrBytes: 4096 } });
    const [err, status] = await Promise.all([collect(child.stderr), child.exited]);
    expect(err.length).toBe(4096);
    expect(status.reason).toBe('output-limit');
  });

  it('positive control: output under the cap passes whole and the child exits normally', async () => {
    const child = await z.spawn({ args: ['echo-args', 'x'.repeat(1000)], limits: { stdoutBytes: 1 << 20 } });
    const [out, status] = await Promise.all([collect(child.stdout), child.exited]);
    expect(JSON.parse(out)).toEqual(['x'.repeat(1000)]);
    expect(status.reason).toBe('exit');
  });

  it('rejects a limit that is not a positive integer, naming it', async () => {
    await expect(z.spawn({ args: ['exit', 0], limits: { wallTimeMs: -1 } })).rejects.toThrow('Expected `limits.wallTimeMs` to be a positive integer (or null for no limit), got -1 (number)');
    await expect(z.spawn({ args: ['exit', 0], limits: { fileBytes: null } as never })).rejects.toThrow('Expected `limits.fileBytes` to be a positive integer, got null');
    await expect(z.spawn({ args: ['exit', 0], limits: { memoryBites: 1 } as never })).rejects.toThrow('Unknown option `limits.memoryBites` in spawn(); known: wallTimeMs, cpuTimeMs, memoryBytes, pids, stdoutBytes, stderrBytes, fileBytes, tmpBytes, outputBytes, outputFiles');
  });
});
