// spawn(): stdio, arguments, environment, exit codes and signals, concurrency, per-process state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type Zygote } from '../../dist/client/index.js';
import { collect, ECHO_MAIN } from '../helpers/index.js';

const ENV = { LC_ALL: 'C.UTF-8', STEP_SETTING: 'x=1; y="two"' };
let z: Zygote;

beforeAll(async () => {
  z = await startZygote({ main: ECHO_MAIN, preload: ['apache-arrow'], env: ENV });
});
afterAll(async () => {
  await z?.close();
});

async function run(args: unknown[], stdin?: string) {
  const child = await z.spawn({ args, name: String(args[0]) });
  if (stdin !== undefined) child.stdin.end(stdin);
  const [stdout, stderr, status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  return { child, stdout, stderr, status };
}

describe('spawn()', () => {
  it('passes JSON arguments to main and returns its stdout', async () => {
    const args = ['s', 1, 2.5, true, null, { nested: ['a', { b: 'ü€😀' }] }, []];
    const { stdout, status } = await run(['echo-args', ...args]);
    expect(JSON.parse(stdout)).toEqual(args);
    expect(status).toMatchObject({ code: 0, signal: null, reason: 'exit' });
  });

  it('connects stdin, stdout and stderr to the child', async () => {
    const input = 'line one\n'.repeat(20_000); // 180 KB: more than a pipe buffer each way
    const { stdout } = await run(['cat'], input);
    expect(stdout).toBe(input);
    const { stderr } = await run(['stderr', 'to stderr']);
    expect(stderr).toBe('to stderr');
  });

  it('gives the child exactly the configured environment and nothing of the client', async () => {
    process.env.CLIENT_SECRET = 'must-not-leak';
    const { stdout } = await run(['whoami']);
    expect(JSON.parse(stdout).env).toEqual(ENV);
  });

  it('reports its own pid (2, under its pid namespace\'s init), a host pid for the client whose parent is the zygote, and a fresh Math.random per child', async () => {
    const seen = await Promise.all([0, 1, 2, 3].map(() => run(['whoami'])));
    for (const { child, stdout } of seen) {
      const me = JSON.parse(stdout);
      expect(me.pid).toBe(2);
      expect(me.ppid).toBe(1);
      expect(me.title).toContain('zygote-child');
      expect(child.pid).toBeGreaterThan(2);
    }
    const randoms = new Set(seen.map(({ stdout }) => JSON.parse(stdout).random));
    expect(randoms.size).toBe(4);
  });

  it('exits 1 with the stack trace on stderr when main throws', async () => {
    const { stderr, status } = await run(['throw', 'the step broke']);
    expect(status).toMatchObject({ code: 1, reason: 'exit' });
    expect(stderr).toMatch(/^Error: the step broke\n\s+at main \(.*echo-main\.mjs/);
  });

  it('exits 1 when main rejects later', async () => {
    const { stderr, status } = await run(['reject-later']);
    expect(status.code).toBe(1);
    expect(stderr).toContain('TypeError: rejected later');
  });

  it('honours process.exit(n) and process.exitCode', async () => {
    expect((await run(['exit', 42])).status).toMatchObject({ code: 42, reason: 'exit' });
    expect((await run(['exit', 0])).status.code).toBe(0);
    expect((await run(['exit-code', 7])).status.code).toBe(7);
  });

  it('reports a death by signal as reason "signal" with the signal name', async () => {
    const { status } = await run(['signal', 'SIGTERM']);
    expect(status).toMatchObject({ code: null, signal: 'SIGTERM', reason: 'signal' });
    // Linux has two names for 6 (SIGABRT, SIGIOT): the canonical one, as child_process says.
    expect((await run(['signal', 'SIGABRT'])).status).toMatchObject({ signal: 'SIGABRT', reason: 'signal' });
  });

  it('exits 13 with a message when main never settles and nothing is left to run', async () => {
    const { stderr, status } = await run(['never-settles']);
    expect(status.code).toBe(13);
    expect(stderr).toContain('never settled');
  });

  it('reports wall time, CPU time and peak RSS', async () => {
    const { status } = await run(['gc-heavy']);
    expect(status.wallMs).toBeGreaterThan(0);
    expect(status.cpuMs).toBeGreaterThan(0);
    expect(status.maxRssBytes).toBeGreaterThan(10 * 1024 * 1024);
  });

  it('ends Worker threads after a full GC without waiting for the platform threads a fork left behind', async () => {
    // Before the platform fix, 1 to 3 children in 10 hung here for ever.
    for (let i = 0; i < 12; i++) {
      const { stdout, status } = await run(['gc-then-worker']);
      expect(stdout).toBe('hi');
      expect(status.code).toBe(0);
    }
  });

  it('runs many spawns in flight at once on one handle, each with its own output', async () => {
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => run(['echo-args', i])));
    results.forEach(({ stdout, status }, i) => {
      expect(JSON.parse(stdout)).toEqual([i]);
      expect(status.code).toBe(0);
    });
    expect(new Set(results.map((r) => r.child.pid)).size).toBe(24);
  });

  it('rejects arguments too large for one control frame with a TypeError, and stays usable', async () => {
    const err = await z.spawn({ args: ['echo-args', 'x'.repeat(200_000)] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/frame of \d+ bytes exceeds the 131072-byte limit \(the `args` are too large/);
    expect(z.closed).toBe(false);
    const { stdout } = await run(['echo-args', 'x'.repeat(100_000)]);
    expect(JSON.parse(stdout)[0]).toHaveLength(100_000);
  });

  it('rejects bad options with a message naming the option', async () => {
    await expect(z.spawn({ args: 'nope' as never })).rejects.toThrow('Expected the `args` option to be an array, got "nope" (string)');
    await expect(z.spawn({ args: [1n] as never })).rejects.toThrow('Expected the `args` option to hold JSON values');
    await expect(z.spawn({ name: 5 as never })).rejects.toThrow('Expected the `name` option to be a string, got 5 (number)');
  });
});
