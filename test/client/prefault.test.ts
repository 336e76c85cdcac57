// Pool children copy, before their claim, the pages a claimed child writes first
// (zygote/prefault.ts): a learner pool child runs main's rehearsal, the zygote reads which
// pages it made its own, and every later pool child copies them (MADV_POPULATE_WRITE) before
// it is ready. The learner also times a read of each of its pages and names those it had
// accessed; pool children read them once (native/pretouch.h), which marks their page-table
// entries accessed (smaps: Referenced). The learner serves no spawn; a main with no rehearsal
// learns nothing.
import { readFileSync } from 'node:fs';
import { tableFromArrays } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStep, startZygote, stepRunner, type Zygote } from '../../dist/index.js';
import { ECHO_MAIN } from '../helpers/index.js';

const FAILING_REHEARSAL = new URL('../fixtures/rehearse-throws-main.mjs', import.meta.url);
const STEP = new URL('../fixtures/steps/count.mjs', import.meta.url).pathname;

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Each ready pool child's step-to-be (the child of its init) and its private dirty memory in KiB. */
function poolSteps(zpid: number): { pid: number; privateDirtyKb: number }[] {
  const out = [];
  for (const init of childrenOf(zpid)) {
    let comm = '';
    try {
      comm = readFileSync(`/proc/${init}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm !== 'zygote-pool') continue;
    for (const pid of childrenOf(init)) {
      try {
        const kb = Number(/^Private_Dirty:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))![1]);
        out.push({ pid, privateDirtyKb: kb });
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return out;
}

/** KiB of pid's anonymous memory (the JS heap, malloc's heap, its stack) whose page-table entries say accessed. */
function anonymousReferencedKb(pid: number): number {
  let kb = 0;
  let anonymous = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      anonymous = head[1] === '0' && ['', '[heap]', '[stack]'].includes(head[2]);
      continue;
    }
    const m = /^Referenced:\s+(\d+) kB$/.exec(line);
    if (m && anonymous) kb += Number(m[1]);
  }
  return kb;
}

/** Waits until the pool holds `size` ready children and returns them. */
/**
 * Waits until the pool holds `size` children, each ready (it has said so: its copies and reads
 * ahead are done; a pool child sets up at nice 19, so on a busy host that takes a while) and
 * passing ok, and returns them.
 */
async function fullPool(z: Zygote, size: number, ok: (s: { privateDirtyKb: number }) => boolean = () => true) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    // The same children before and after the zygote says they are ready: a learner's step (a
    // pool child's too) may be the one seen first, and be gone by the time the pool is full.
    const steps = poolSteps(z.pid);
    if (steps.length === size && steps.every(ok) && (await z.stats()).poolIdle === size && samePids(poolSteps(z.pid), steps)) return steps;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${size} ready pool children`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function samePids(a: { pid: number }[], b: { pid: number }[]): boolean {
  return a.length === b.length && a.every((x) => b.some((y) => y.pid === x.pid));
}

describe('prefaulted pool children', () => {
  let learning: Zygote;
  let plain: Zygote;
  beforeAll(async () => {
    [learning, plain] = await Promise.all([startZygote({ main: stepRunner, preload: ['apache-arrow'], pool: { size: 2 } }), startZygote({ main: ECHO_MAIN, pool: { size: 2 } })]);
  });
  afterAll(async () => {
    await Promise.all([learning?.close(), plain?.close()]);
  });

  it('copy what the rehearsal wrote before any claim: megabytes of their own, where a main without a rehearsal leaves a few hundred KiB', async () => {
    // Control: echo-main has no rehearse export, so its pool children copy nothing.
    const bare = await fullPool(plain, 2);
    for (const s of bare) expect(s.privateDirtyKb).toBeLessThan(1024);
    // The step runner rehearses: once learned, the idle children are replaced by ones that copy.
    const copied = await fullPool(learning, 2, (s) => s.privateDirtyKb > 2 * 1024);
    expect(copied).toHaveLength(2);
  });

  it('read what the rehearsal read before any claim: MiBs of anonymous pages accessed beyond those they copied', async () => {
    // A fork's page-table entries start not accessed. Control: echo-main's children touched
    // only what their setup did.
    const bareKb = (await fullPool(plain, 2)).map((s) => anonymousReferencedKb(s.pid));
    for (const kb of bareKb) expect(kb).toBeLessThan(3 * 1024);
    // Copying alone marks the copied pages (Private_Dirty) accessed, and no more: reading what
    // the learner read adds the rest. Measured here: 8.3 MiB accessed with 3.5 MiB copied;
    // 4.6 MiB with the same copy and no read-ahead; 1.6 MiB for echo-main's.
    const learned = await fullPool(learning, 2, (s) => s.privateDirtyKb > 2 * 1024);
    for (const s of learned) expect(anonymousReferencedKb(s.pid) - s.privateDirtyKb).toBeGreaterThan(Math.max(...bareKb) + 1024);
  });

  it('never gives the learner a spawn: every step is served by a prefaulted child, and claims count only those', async () => {
    await fullPool(learning, 2, (s) => s.privateDirtyKb > 2 * 1024);
    const before = await learning.stats();
    const served = poolSteps(learning.pid).map((s) => s.pid);
    const out = await runStep(learning, { module: STEP, input: tableFromArrays({ x: Float64Array.of(1, 2, 3) }) });
    expect(out.ok, out.ok ? '' : out.error.message).toBe(true);
    if (out.ok) expect(out.table.getChild('rows')!.get(0)).toBe(3);
    const after = await learning.stats();
    expect(after.claimed).toBe(before.claimed + 1);
    expect(after.forked).toBe(before.forked);
    // The one claimed was one of the prefaulted children.
    expect(poolSteps(learning.pid).map((s) => s.pid).filter((p) => served.includes(p))).toHaveLength(1);
  });

  it('a rehearsal that throws teaches nothing, and the pool serves as before', async () => {
    const z = await startZygote({ main: FAILING_REHEARSAL, pool: { size: 1 } });
    try {
      const steps = await fullPool(z, 1);
      expect(steps[0].privateDirtyKb).toBeLessThan(1024);
      const child = await z.spawn({ args: ['hi'] });
      child.stdout.resume();
      child.stderr.resume();
      expect(await child.exited).toMatchObject({ code: 0 });
      expect((await z.stats()).claimed).toBe(1);
    } finally {
      await z.close();
    }
  });
});
