// Start-up failures, client death and zygote death: everything ends cleanly, nothing is left.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startZygote, ZygoteClosedError, ZygoteStartError } from '../../dist/client/index.js';
import { collect, ECHO_MAIN, isAlive, ROOT, waitFor, zombiesOf } from '../helpers/index.js';

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url);

describe('startZygote()', () => {
  it('rejects a missing main with a TypeError naming the path', async () => {
    await expect(startZygote({ main: '/nonexistent/step.js' })).rejects.toThrow('The `main` module does not exist: /nonexistent/step.js');
  });

  it('rejects a relative main path', async () => {
    await expect(startZygote({ main: 'step.js' })).rejects.toThrow('Expected the `main` option to be a file: URL or an absolute path, got "step.js" (string)');
  });

  it('rejects a main without a default function, saying what it found', async () => {
    const err = await startZygote({ main: fixture('no-default-main.mjs') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZygoteStartError);
    expect((err as Error).message).toMatch(/zygote failed to start: main module .*no-default-main\.mjs must have a function as its default export, found object/);
  });

  it('rejects a failing preload, naming the module', async () => {
    const err = await startZygote({ main: ECHO_MAIN, preload: ['no-such-package-zygote-test'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZygoteStartError);
    expect((err as Error).message).toContain('preload of "no-such-package-zygote-test" failed');
  });

  it('rejects bad env entries before starting anything', async () => {
    await expect(startZygote({ main: ECHO_MAIN, env: { 'A=B': 'x' } })).rejects.toThrow('Expected `env` keys to be variable names, got "A=B"');
    await expect(startZygote({ main: ECHO_MAIN, env: { A: 1 as never } })).rejects.toThrow('Expected `env.A` to be a string without NUL, got 1 (number)');
  });
});

describe('when the client dies', () => {
  it('the embedded zygote kills its children and exits, leaving no zombie', async () => {
    // A separate client process that starts a zygote, spawns a hanging child and reports pids.
    const client = spawn(process.execPath, [fixture('client-that-hangs.mjs').pathname, ECHO_MAIN.href], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
    const line = await new Promise<string>((resolve) => client.stdout.once('data', (d) => resolve(String(d))));
    const { zygotePid, childPid } = JSON.parse(line) as { zygotePid: number; childPid: number };
    expect(isAlive(childPid)).toBe(true);
    client.kill('SIGKILL');
    await waitFor(() => !isAlive(childPid), 5000, 'the orphaned child to die');
    await waitFor(() => !isAlive(zygotePid), 5000, 'the zygote to exit');
  });
});

describe('when the zygote dies', () => {
  it('rejects pending and later calls with ZygoteClosedError, and its children die with it', async () => {
    const z = await startZygote({ main: ECHO_MAIN });
    const child = await z.spawn({ args: ['hang'] });
    await new Promise((r) => child.stdout.once('data', r));
    const stdoutEnd = collect(child.stdout);
    process.kill(z.pid, 'SIGKILL');
    const err = await child.exited.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZygoteClosedError);
    expect((err as Error).message).toMatch(/zygote .* closed the connection/);
    // Dead, or a zombie waiting for init: reparented children are init's to reap.
    await waitFor(() => !isAlive(child.pid), 5000, 'the child to die with its zygote (PR_SET_PDEATHSIG)');
    await stdoutEnd; // the pipe closes when the child dies: nothing hangs
    await expect(z.spawn({ args: ['exit', 0] })).rejects.toBeInstanceOf(ZygoteClosedError);
    expect(z.closed).toBe(true);
    await z.close();
  });
});

describe('reaping', () => {
  it('leaves no zombie behind after many children exit', async () => {
    const z = await startZygote({ main: ECHO_MAIN });
    await Promise.all(Array.from({ length: 30 }, () => z.spawn({ args: ['exit', 3] }).then((c) => c.exited)));
    // An exit is told once the step is the last of its sandbox to end; its init is reaped
    // moments later, so none is left for long.
    await waitFor(() => zombiesOf(z.pid).length === 0, 5000, 'every init to be reaped');
    await z.close();
  });
});

describe('when an exit is told', () => {
  const OUTPUT_MAIN = new URL('../fixtures/output-main.mjs', import.meta.url);

  it('tells a step that was the last of its sandbox at once, and one that left a process behind only once that is dead too', async () => {
    // The init's exit record says whether the step was alone (native/init.cc): a step that was
    // is told before its init is reaped; one whose process outlives it is told only after the
    // init's exit killed that too, so nothing writes to its output once the client knows.
    const z = await startZygote({ main: OUTPUT_MAIN, dangerouslyAllowUnsandboxed: true });
    try {
      // A plain step: told, and its init reaped right after (no zombie, the slot freed).
      const plain = await z.spawn({ args: [['write', '/output/f', 'x']], output: {}, limits: { pids: 32 } });
      await Promise.all([collect(plain.stdout), collect(plain.stderr)]);
      expect(await plain.exited).toMatchObject({ code: 0, signal: null });
      plain.output!.close();
      let busy = 1;
      for (let i = 0; i < 100 && busy !== 0; i++) {
        busy = (await z.stats()).busy;
        if (busy !== 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(busy).toBe(0);
      // A fork is only possible with seccomp skipped.
      const c = await z.spawn({ args: [['outlive', '/output/log']], output: {}, limits: { pids: 32 }, sandbox: { dangerouslySkip: ['seccomp'] } });
      const [out] = await Promise.all([collect(c.stdout), collect(c.stderr)]);
      expect(JSON.parse(out)).toEqual([{ ok: true }]);
      await c.exited;
      const log = `${c.output!.path}/log`;
      const atExit = readFileSync(log, 'utf8');
      // Control: the writer ran on after the step ended (lines after the step's own).
      expect(atExit.split('step-exit\n')[0]).toContain('writer');
      await new Promise((r) => setTimeout(r, 300));
      // Nothing wrote after the exit was told: the writer was dead by then.
      expect(readFileSync(log, 'utf8')).toBe(atExit);
      c.output!.close();
    } finally {
      await z.close();
    }
  });
});
