// kill(), AbortSignal and close(): every way the client ends a child, and what it reports.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, startZygote, ZygoteClosedError, type Zygote } from '../../dist/client/index.js';
import { ECHO_MAIN, exists, waitFor, zombiesOf } from '../helpers/index.js';

let z: Zygote;

beforeAll(async () => {
  z = await startZygote({ main: ECHO_MAIN });
});
afterAll(async () => {
  await z?.close();
});

/** Spawns a child that hangs after saying so, and waits until it has. */
async function hanging(signal?: AbortSignal) {
  const child = await z.spawn({ args: ['hang'], signal });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  return child;
}

describe('kill()', () => {
  it('kills with SIGKILL by default and reports reason "killed"', async () => {
    const child = await hanging();
    expect(child.kill()).toBe(true);
    expect(await child.exited).toMatchObject({ code: null, signal: 'SIGKILL', reason: 'killed' });
    expect(exists(child.pid)).toBe(false);
  });

  it('sends the signal it is given', async () => {
    const child = await hanging();
    child.kill('SIGTERM');
    expect(await child.exited).toMatchObject({ signal: 'SIGTERM', reason: 'killed' });
  });

  it('returns false once the child has exited, and signals nothing', async () => {
    const child = await z.spawn({ args: ['exit', 0] });
    await child.exited;
    expect(child.kill()).toBe(false);
  });

  it('rejects an unknown signal name', async () => {
    const child = await hanging();
    expect(() => child.kill('SIGNOPE' as NodeJS.Signals)).toThrow('Expected a signal name or number, got SIGNOPE');
    child.kill();
    await child.exited;
  });
});

describe('AbortSignal', () => {
  it('kills a running child when aborted', async () => {
    const ac = new AbortController();
    const child = await hanging(ac.signal);
    ac.abort(new Error('user cancelled'));
    expect(await child.exited).toMatchObject({ signal: 'SIGKILL', reason: 'killed' });
  });

  it('rejects spawn() at once with AbortError when already aborted', async () => {
    const reason = new Error('too late');
    await expect(z.spawn({ args: ['hang'], signal: AbortSignal.abort(reason) })).rejects.toMatchObject({ name: 'AbortError', cause: reason });
  });

  it('rejects a spawn aborted while in flight, and kills the child it produced', async () => {
    const ac = new AbortController();
    const pending = z.spawn({ args: ['hang'], signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortError);
    await waitFor(() => zombiesOf(z.pid).length === 0, 5000, 'the aborted child to be reaped');
  });
});

describe('close()', () => {
  it('kills and reaps the handle\'s children, rejects later spawns, and ends the embedded zygote', async () => {
    const own = await startZygote({ main: ECHO_MAIN });
    const children = await Promise.all([0, 1, 2].map(() => own.spawn({ args: ['hang'] })));
    await own.close();
    for (const c of children) {
      expect(await c.exited).toMatchObject({ signal: 'SIGKILL', reason: 'killed' });
      expect(exists(c.pid)).toBe(false);
    }
    expect(exists(own.pid)).toBe(false);
    await expect(own.spawn({ args: ['exit', 0] })).rejects.toBeInstanceOf(ZygoteClosedError);
    await own.close(); // idempotent
  });

  it('rejects spawns that were still in flight', async () => {
    const own = await startZygote({ main: ECHO_MAIN });
    const pending = own.spawn({ args: ['hang'] });
    const closing = own.close();
    await expect(pending).rejects.toThrow(ZygoteClosedError);
    await closing;
  });
});
