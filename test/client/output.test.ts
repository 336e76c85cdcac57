// child.output, the client's end of a spawn's output filesystem: its fd is closed on every path
// (closed by the caller, an aborted spawn, a failed one, the handle's close()), no other child
// ever holds it, and reading through it follows no link the step made.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOutputError, mapOutputFile, readOutputFile, startZygote, ZygoteClosedError, type Zygote } from '../../dist/client/index.js';
import { collect, fdsOf, sharedOpenFiles, waitFor } from '../helpers/index.js';

const MAIN = new URL('../fixtures/output-main.mjs', import.meta.url);
let z: Zygote;

beforeAll(async () => {
  z = await startZygote({ main: MAIN, dangerouslyAllowUnsandboxed: true });
  // A child first, so the zygote and this process have their steady fds open.
  const c = await z.spawn({ args: [], output: {} });
  await Promise.all([collect(c.stdout), collect(c.stderr), c.exited]);
  c.output!.close();
});
afterAll(async () => {
  await z?.close();
});

/** Runs a child with an output to its end; returns it. */
async function runToEnd(zygote: Zygote, args: unknown[][] = [], signal?: AbortSignal) {
  const c = await zygote.spawn({ args, output: {}, signal });
  await Promise.all([collect(c.stdout), collect(c.stderr), c.exited]);
  return c;
}

describe('the output fd', () => {
  it('is closed on every path: no fd left in this process or the zygote after 50 spawns', async () => {
    const mine = fdsOf(process.pid).size;
    const zygotes = fdsOf(z.pid).size;
    // 20 read and closed by the caller.
    for (let i = 0; i < 20; i++) {
      const c = await runToEnd(z, [['write', '/output/f', `run ${i}`]]);
      expect(readFileSync(`${c.output!.path}/f`, 'utf8')).toBe(`run ${i}`);
      c.output!.close();
    }
    // 10 aborted while the spawn was in flight: nobody gets the child, so the handle closes it.
    for (let i = 0; i < 10; i++) {
      const ac = new AbortController();
      const p = z.spawn({ args: [['hold']], output: {}, signal: ac.signal });
      ac.abort();
      await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    }
    // 10 whose sandbox setup failed: no child, no output fd sent; the zygote closed its own.
    for (let i = 0; i < 10; i++) {
      await expect(z.spawn({ args: [], output: {}, sandbox: { dangerouslyInjectFailure: { step: 'seccomp', errno: 'EPERM' } } })).rejects.toMatchObject({ code: 'ERR_ZYGOTE_SANDBOX' });
    }
    // 10 never closed by the caller: the handle's close() closes them.
    const other = await startZygote({ main: MAIN });
    const left = [];
    for (let i = 0; i < 10; i++) left.push(await runToEnd(other));
    expect(fdsOf(process.pid).size).toBeGreaterThanOrEqual(mine + 10);
    await other.close();
    expect(left.every((c) => c.output!.closed)).toBe(true);
    // Killed children are reaped, and their ends closed, a little after the aborts.
    await waitFor(() => fdsOf(process.pid).size <= mine, 10_000, `this process's fds back to ${mine}`);
    await waitFor(() => fdsOf(z.pid).size <= zygotes, 10_000, `the zygote's fds back to ${zygotes}`);
  });

  it('is never in another child: a child spawned while a sibling holds its output has no fd of it', async () => {
    const sibling = await z.spawn({ args: [['hold']], output: {} });
    const c = await z.spawn({ args: [['hold']], output: {} });
    const mine = new Map([[sibling.output!.fd, 'sibling output'], [c.output!.fd, 'own output']]);
    // kcmp(KCMP_FILE): no fd of either child (its init, and the step it forked) is the same
    // open file as either output fd here.
    const pids = [sibling, c].flatMap((child) => [child.pid, ...readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)]);
    expect(pids).toHaveLength(4);
    for (const pid of pids) expect(sharedOpenFiles(process.pid, pid, mine)).toEqual([]);
    // Positive control: the same check finds an fd this process shares with itself.
    expect(sharedOpenFiles(process.pid, process.pid, new Map([[c.output!.fd, 'own output']]))).toHaveLength(1);
    for (const child of [sibling, c]) {
      child.stdin.end();
      await child.exited;
      child.output!.close();
    }
  });

  it('once closed, is refused with ZygoteClosedError, and closing again does nothing', async () => {
    const c = await runToEnd(z, [['write', '/output/f', 'x']]);
    c.output!.close();
    c.output!.close();
    expect(c.output!.fd).toBe(-1);
    expect(() => c.output!.path).toThrow(ZygoteClosedError);
    expect(() => c.output!.usage()).toThrow(ZygoteClosedError);
    await expect(readOutputFile(c.output!, 'f', { maxBytes: 10 })).rejects.toThrow(ZygoteClosedError);
  });
});

describe('reading through it', () => {
  it('follows no link the step made: readOutputFile and mapOutputFile refuse it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zygote-output-link-'));
    const hostFile = join(dir, 'renderer-secret');
    writeFileSync(hostFile, "the renderer's");
    const c = await runToEnd(z, [['symlink', hostFile, '/output/link'], ['write', '/output/data', 'step data']]);
    await expect(readOutputFile(c.output!, 'link', { maxBytes: 1 << 20 })).rejects.toMatchObject({ reason: 'symlink' });
    expect(() => mapOutputFile(c.output!, 'link', { maxBytes: 1 << 20 })).toThrow(InvalidOutputError);
    expect((await readOutputFile(c.output!, 'data', { maxBytes: 1 << 20 })).toString()).toBe('step data');
    const mapped = mapOutputFile(c.output!, 'data', { maxBytes: 1 << 20 });
    expect(Buffer.from(mapped.buffer).toString()).toBe('step data');
    mapped.unmap();
    // Positive control: a plain read of the same name through the path follows the link to the host's file.
    expect(readFileSync(`${c.output!.path}/link`, 'utf8')).toBe("the renderer's");
    c.output!.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
