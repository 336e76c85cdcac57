// A zygote's cgroup tree is named by its pid, and pids are reused (pid_max is 32768 here): a
// zygote killed with SIGKILL leaves its tree behind, and a later one with the same pid found
// child-1 already there (EEXIST: every limited spawn failed). The full suite met this once.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startZygote, type Zygote } from '../../dist/index.js';
import { readCgroupFacts } from '../../dist/zygote/doctor/index.js';
import { collect, ECHO_MAIN } from '../helpers/index.js';
import { describeNeeds, type Facility } from '../helpers/host.js';

let z: Zygote;
let sleeper: ChildProcess;
let trees: string[] = [];

beforeAll(async () => {
  z = await startZygote({ main: ECHO_MAIN });
});
afterAll(async () => {
  sleeper?.kill('SIGKILL');
  await z?.close();
  for (const tree of trees) for (const leaf of ['child-1', 'child-2']) if (existsSync(join(tree, leaf))) rmdirSafe(join(tree, leaf));
});

function rmdirSafe(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // A cgroup whose last process is still exiting; the zygote's own sweep takes it later.
  }
}

/** cgroup v1 memory and pids: where a zygote's tree is one directory per controller (v2: the guest's own tests). */
function cgroupV1(): Facility {
  const f = readCgroupFacts();
  const v1 = f.memory.version === 'v1' && f.pids.version === 'v1' && f.memory.dir !== null && f.pids.dir !== null;
  return { present: v1, reason: v1 ? 'cgroup v1 memory and pids' : `cgroup memory ${f.memory.version ?? 'missing'}, pids ${f.pids.version ?? 'missing'} here; this test lays out a v1 tree` };
}

describeNeeds(cgroupV1(), "a zygote whose pid's cgroup tree a dead zygote left behind", () => {
  it('removes the stale empty children, skips one still in use, and its limited spawns work', async () => {
    const facts = readCgroupFacts();
    const bases = [facts.memory.dir!, facts.pids.dir!];
    trees = bases.map((b) => join(b, `zygote-${z.pid}`));
    // What a SIGKILLed zygote of the same pid would have left: child-1 empty, child-2 in use.
    sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    for (const tree of trees) {
      mkdirSync(join(tree, 'child-1'), { recursive: true });
      mkdirSync(join(tree, 'child-2'));
      writeFileSync(join(tree, 'child-2', 'cgroup.procs'), String(sleeper.pid));
    }
    const child = await z.spawn({ args: ['exit', 0], limits: { memoryBytes: 64 << 20, pids: 32 } });
    const [, , status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    expect(status).toMatchObject({ code: 0, reason: 'exit' });
    // The one in use was left alone, with its process.
    for (const tree of trees) expect(readFileSync(join(tree, 'child-2', 'cgroup.procs'), 'utf8').trim()).toBe(String(sleeper.pid));
  });
});
