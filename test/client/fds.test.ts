// fd hygiene: a child holds nothing of the zygote's, and neither side leaks fds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type Zygote } from '../../dist/client/index.js';
import { collect, ECHO_MAIN, fdsOf, sharedOpenFiles, waitFor } from '../helpers/index.js';

let z: Zygote;

beforeAll(async () => {
  z = await startZygote({ main: ECHO_MAIN, preload: ['apache-arrow'] });
  // A few children first, so the zygote has had pidfds, pipes and report pipes open.
  await Promise.all([0, 1, 2].map(() => runToEnd(['exit', 0])));
});
afterAll(async () => {
  await z?.close();
});

/** Spawns, reads stdout and stderr to their end, and waits for the exit: leaves nothing open. */
async function runToEnd(args: unknown[]) {
  const c = await z.spawn({ args });
  await Promise.all([collect(c.stdout), collect(c.stderr), c.exited]);
}

describe('a child', () => {
  it('shares no open file with the zygote: no socket, pipe, pidfd, eventfd or file', async () => {
    // Another child alive at the same time, so its pidfd and pipes are open in the zygote.
    const sibling = await z.spawn({ args: ['hang'] });
    const child = await z.spawn({ args: ['fds', 2000] });
    const seen = JSON.parse(await new Promise<string>((r) => child.stdout.once('data', (d) => r(String(d))))) as Record<string, string>;
    expect(fdsOf(z.pid).size).toBeGreaterThan(5);
    // kcmp(KCMP_FILE): the same open file description, not just the same kind of thing.
    const seenFds = new Map(Object.entries(seen).map(([fd, t]) => [Number(fd), t]));
    expect(sharedOpenFiles(child.pid, z.pid, seenFds)).toEqual([]);
    expect(Object.values(seen).filter((t) => t.startsWith('socket:'))).toEqual([]);
    expect(Object.values(seen).filter((t) => t.includes('pidfd'))).toEqual([]);
    // 0-2 are the child's own pipes; any other pipe is one libuv made in the child.
    expect(seen['0']).toMatch(/^pipe:/);
    expect(seen['1']).toMatch(/^pipe:/);
    expect(seen['2']).toMatch(/^pipe:/);
    child.kill();
    sibling.kill();
    await Promise.all([child.exited, sibling.exited]);
    for (const c of [child, sibling]) for (const s of [c.stdout, c.stderr]) s.destroy();
  });

  it('the zygote does hold the sockets and pidfds an unswept child would inherit', () => {
    // The zygote itself does hold a control socket and the children's pidfds: the test
    // above would see them if they were inherited.
    const kinds = [...fdsOf(z.pid).values()];
    expect(kinds.some((t) => t.startsWith('socket:'))).toBe(true);
  });
});

describe('fd counts', () => {
  it('do not grow in the zygote or the client across 60 spawns', async () => {
    // Streams destroyed by the test before close their fds on a later turn of the loop.
    await new Promise((r) => setTimeout(r, 100));
    const before = { zygote: fdsOf(z.pid).size, client: fdsOf(process.pid).size };
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 20 }, () => runToEnd(['echo-args', round])));
    }
    // The last streams' handles close on the next turns of the loop: wait (bounded) for it.
    const counts = () => ({ zygote: fdsOf(z.pid).size, client: fdsOf(process.pid).size });
    await waitFor(() => counts().zygote === before.zygote && counts().client === before.client, 3000, 'fd counts back at baseline').catch(() => undefined);
    expect(counts()).toEqual(before);
  });
});
