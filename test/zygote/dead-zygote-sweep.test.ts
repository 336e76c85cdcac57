// A zygote killed with SIGKILL cleans up nothing: its cgroup tree (`zygote-PID`) and its
// nftables table (`inet zygote_PID`) stay. The next zygote to start removes those of pids that
// are no longer zygotes, and never touches a live zygote's.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { connect, startZygote, type Zygote } from '../../dist/client/index.js';
import { bounded, CLI, collect, ECHO_MAIN, isAlive, waitFor } from '../helpers/index.js';
import { describeNeeds, networkTestbed } from '../helpers/host.js';

/** Every cgroup directory named for zygote pid, under any mounted hierarchy. */
function treesOf(pid: number): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 4 || !existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (e.name === `zygote-${pid}`) out.push(join(dir, e.name));
      else if (!e.name.startsWith('zygote-')) walk(join(dir, e.name), depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return out;
}

/** An embedded zygote with a limited child running (so it has a cgroup tree). */
async function zygoteWithLimitedChild(): Promise<{ z: Zygote; childPid: number }> {
  const z = await startZygote({ main: ECHO_MAIN });
  const child = await z.spawn({ args: ['hang'], limits: { memoryBytes: 64 << 20, pids: 16 } });
  child.exited.catch(() => {}); // the zygote's death orphans it
  return { z, childPid: child.pid };
}

it('removes the cgroup tree of a zygote killed with SIGKILL at the next start, and keeps a live zygote\'s', async () => {
  const dead = await zygoteWithLimitedChild();
  const live = await zygoteWithLimitedChild();
  try {
    const deadTrees = treesOf(dead.z.pid);
    expect(deadTrees.length).toBeGreaterThan(0);
    process.kill(dead.z.pid, 'SIGKILL');
    // Its child dies with it (PR_SET_PDEATHSIG); only then can its cgroup go.
    await waitFor(() => !isAlive(dead.childPid) && !isAlive(dead.z.pid), 10_000, 'the killed zygote and its child to be gone');
    // Positive control: nothing removed the tree by itself.
    expect(deadTrees.filter((d) => existsSync(d))).toEqual(deadTrees);

    const next = await startZygote({ main: ECHO_MAIN });
    try {
      expect(deadTrees.filter((d) => existsSync(d))).toEqual([]);
      // The live zygote's tree, with its child's cgroup in use, is untouched, and it still spawns.
      expect(treesOf(live.z.pid).length).toBeGreaterThan(0);
      const c = await live.z.spawn({ args: ['echo-args', 'ok'], limits: { memoryBytes: 64 << 20 } });
      expect((await Promise.all([collect(c.stdout), c.exited]))[1].code).toBe(0);
    } finally {
      await next.close();
    }
  } finally {
    await live.z.close();
    dead.z.close().catch(() => {});
  }
});

const testbed = networkTestbed();

describeNeeds(testbed, 'a dead zygote\'s nftables table', () => {
  const ns = `zt-sweep-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'zt-sweep-'));
  const processes: ChildProcess[] = [];
  const inNs = (cmd: string, ...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: 10_000 });
  const tables = () => inNs('nft', 'list', 'tables').trim().split('\n').filter(Boolean);
  const forwarding = () => inNs('cat', '/proc/sys/net/ipv4/ip_forward').trim();

  afterAll(() => {
    for (const p of processes) p.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
    rmSync(dir, { recursive: true, force: true });
  });

  /** `zygote serve` with a network inside ns (no cgroups: `ip netns exec` hides them). */
  async function serveInNs(name: string, subnet: string): Promise<{ z: Zygote; cp: ChildProcess; log: () => string }> {
    const sock = join(dir, `${name}.sock`);
    const cp = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, 'serve', '--socket', sock, '--main', ECHO_MAIN.pathname, '--network-subnet', subnet, '--default-memory', 'none', '--default-pids', 'none'], { stdio: ['ignore', 'ignore', 'pipe'] });
    processes.push(cp);
    let log = '';
    cp.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
    await waitFor(() => existsSync(sock) || cp.exitCode !== null, 20_000, `${name} to listen`);
    if (cp.exitCode !== null) throw new Error(`${name} exited ${cp.exitCode}: ${log}`);
    return { z: await connect(sock), cp, log: () => log };
  }

  it('deletes it at the next start (and turns forwarding back off, which it had turned on), keeping a live zygote\'s', async () => {
    execFileSync('ip', ['netns', 'add', ns], { timeout: 10_000 });
    inNs('ip', 'link', 'set', 'lo', 'up');
    expect(forwarding()).toBe('0');
    const first = await serveInNs('first', '10.211.0.0/16');
    const firstTable = `table inet zygote_${first.z.pid}`;
    expect(tables()).toContain(firstTable);
    expect(forwarding()).toBe('1');
    first.cp.kill('SIGKILL');
    await bounded(new Promise((r) => first.cp.once('exit', r)), 10_000, 'the first zygote to die');
    first.z.close().catch(() => {});
    // Positive control: SIGKILL left its table, and forwarding on.
    expect(tables()).toContain(firstTable);
    expect(forwarding()).toBe('1');

    // A live zygote's table beside it must survive the sweep.
    const live = await serveInNs('live', '10.212.0.0/16');
    try {
      expect(live.log()).toContain(`deleted nftables table inet zygote_${first.z.pid}, left by a zygote that died`);
      expect(tables()).not.toContain(firstTable);
      // The live one turned forwarding on again for itself: it found it off.
      expect(forwarding()).toBe('1');
      const third = await serveInNs('third', '10.213.0.0/16');
      try {
        expect(tables()).toEqual(expect.arrayContaining([`table inet zygote_${live.z.pid}`, `table inet zygote_${third.z.pid}`]));
        expect(third.log()).not.toContain('deleted nftables table');
      } finally {
        await third.z.close();
        third.cp.kill('SIGTERM');
        await bounded(new Promise((r) => third.cp.once('exit', r)), 10_000, 'the third zygote to exit');
      }
    } finally {
      await live.z.close();
      live.cp.kill('SIGTERM');
      await bounded(new Promise((r) => live.cp.once('exit', r)), 10_000, 'the live zygote to exit');
    }
    // The last marked table gone, forwarding is back off.
    expect(tables().filter((t) => t.includes('zygote_'))).toEqual([]);
    expect(forwarding()).toBe('0');
  });
});
