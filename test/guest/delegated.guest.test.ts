// The deployment case on cgroup v2: a zygote started inside a delegated subtree rather than the
// root, as `zygote serve` runs as a systemd unit with Delegate=yes (its cgroup has memory and
// pids, and the zygote is its only process) or as a Kubernetes sidecar (the same, seen through
// a cgroup namespace of its own). Limits work, nothing it makes is outside the subtree, and
// at exit the subtree is as it was. Runs in the cgroup v2 guest only (vitest.guest.config.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, type Limits, type Zygote } from '../../dist/client/index.js';
import { CLI, collect, ECHO_MAIN, ROOT, waitFor } from '../helpers/index.js';
import { cgroupV2, describeNeeds } from '../helpers/host.js';

const CG = '/sys/fs/cgroup';
const MiB = 2 ** 20;

/** pid's cgroup v2 path as this process (in the root cgroup namespace) sees it. */
function cgroupOf(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
  if (!line) throw new Error(`no cgroup v2 line in /proc/${pid}/cgroup`);
  return line.slice(3);
}

/** Every cgroup directory below dir, as paths relative to the hierarchy's root. */
function below(dir: string): string[] {
  return readdirSync(join(CG, dir), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => [`${dir}/${e.name}`, ...below(`${dir}/${e.name}`)]);
}

/** Every cgroup directory anywhere named for zygote pid. */
function namedFor(pid: number): string[] {
  return below('').filter((d) => d.endsWith(`/zygote-${pid}`));
}

/** What the subtree's owner can see of dir: its children, controllers and processes. */
function stateOf(dir: string) {
  const read = (f: string) => readFileSync(join(CG, dir, f), 'utf8').trim();
  return { children: below(dir), subtreeControl: read('cgroup.subtree_control'), procs: read('cgroup.procs') };
}

/** A subtree of the root with memory and pids available to it (the root enables them, as systemd does). */
function delegatedSubtree(name: string): string {
  const enabled = readFileSync(`${CG}/cgroup.subtree_control`, 'utf8').split(/\s+/);
  const missing = ['memory', 'pids'].filter((c) => !enabled.includes(c));
  if (missing.length > 0) writeFileSync(`${CG}/cgroup.subtree_control`, missing.map((c) => `+${c}`).join(' '));
  const dir = `/${name}-${process.pid}`;
  mkdirSync(join(CG, dir));
  return dir;
}

interface Served {
  proc: ChildProcess;
  socket: string;
  stderr: () => string;
  exit: Promise<unknown>;
}

/**
 * Starts `zygote serve` as the only process of dir: a shell moves itself in and execs it (as
 * systemd starts a unit's ExecStart in the unit's cgroup); with a cgroup namespace, it first
 * unshares one rooted there and mounts cgroup2 afresh (showing that root) as a container
 * runtime does.
 */
async function serveIn(dir: string, tmp: string, cgroupNamespace: boolean): Promise<Served> {
  const socket = join(tmp, `${cgroupNamespace ? 'ns' : 'unit'}.sock`);
  const serve = [process.execPath, CLI, 'serve', '--socket', socket, '--main', ECHO_MAIN.pathname].map((w) => `'${w}'`).join(' ');
  const script = cgroupNamespace
    ? `echo $$ > ${CG}${dir}/cgroup.procs && exec unshare --cgroup --mount --propagation private sh -c "umount ${CG} && mount -t cgroup2 cgroup2 ${CG} && exec ${serve.replaceAll('"', '\\"')}"`
    : `echo $$ > ${CG}${dir}/cgroup.procs && exec ${serve}`;
  const proc = spawn('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const exit = new Promise((resolve) => proc.once('exit', resolve));
  await waitFor(() => err.includes(`listening on ${socket} `) || proc.exitCode !== null, 120_000, 'zygote serve to listen');
  if (proc.exitCode !== null) throw new Error(`zygote serve exited early: ${err}`);
  return { proc, socket, stderr: () => err, exit };
}

async function stop(s: Served): Promise<void> {
  s.proc.kill('SIGTERM');
  await s.exit;
}

async function run(z: Zygote, args: unknown[], limits: Limits) {
  const child = await z.spawn({ args, limits });
  const [stdout, , status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
  return { stdout, status };
}

describeNeeds(cgroupV2(), 'a zygote in a delegated subtree', () => {
  let tmp: string;
  const made: string[] = [];
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'zygote-delegated-'));
  });
  afterAll(() => {
    for (const dir of made.reverse()) if (existsSync(join(CG, dir))) rmdirSync(join(CG, dir));
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const cgroupNamespace of [false, true]) {
    const as = cgroupNamespace ? 'as a Kubernetes sidecar (its own cgroup namespace)' : 'as a systemd unit with Delegate=yes';
    it(`${as}: limits work, nothing escapes the subtree, and at exit the subtree is as it was`, async () => {
      const dir = delegatedSubtree(cgroupNamespace ? 'zt-sidecar' : 'zt-unit');
      made.push(dir);
      const before = stateOf(dir);
      const s = await serveIn(dir, tmp, cgroupNamespace);
      const zpid = s.proc.pid!;
      const z = await connect(s.socket, { timeoutMs: 60_000, spawnTimeoutMs: 60_000 });
      try {
        const held = await z.spawn({ args: ['hang'], limits: { memoryBytes: 96 * MiB, pids: 24 } });
        await new Promise((r) => held.stdout.once('data', r));
        // The zygote moved into a leaf of its own tree, its child has a cgroup in that tree, and
        // every directory named for it is inside the subtree.
        expect(cgroupOf(zpid)).toBe(`${dir}/zygote-${zpid}/supervisor`);
        expect(cgroupOf(held.pid)).toMatch(new RegExp(`^${dir}/zygote-${zpid}/child-\\d+$`));
        expect(namedFor(zpid)).toEqual([`${dir}/zygote-${zpid}`]);
        const limit = (file: string) => readFileSync(join(CG, cgroupOf(held.pid), file), 'utf8').trim();
        expect([limit('memory.max'), limit('pids.max')]).toEqual([String(96 * MiB), '24']);
        held.kill();
        await held.exited;

        const oom = await run(z, ['memory-bomb'], { memoryBytes: 64 * MiB });
        expect(oom.status).toMatchObject({ reason: 'oom', signal: 'SIGKILL' });
        expect(oom.status.memoryPeakBytes).toBeGreaterThanOrEqual(48 * MiB);
        const fine = await run(z, ['allocate', 16], { memoryBytes: 64 * MiB, pids: 24 });
        expect(fine).toMatchObject({ stdout: 'allocated 16 MiB', status: { code: 0, reason: 'exit' } });
      } finally {
        await z.close();
        await stop(s);
      }
      expect(s.stderr()).not.toContain('left a cgroup behind');
      expect(stateOf(dir)).toEqual(before);
      expect(namedFor(zpid)).toEqual([]);
    });
  }

  it('refuses limits, saying why and what to do, when the zygote shares its cgroup with its client; and leaves nothing', async () => {
    const dir = delegatedSubtree('zt-shared');
    made.push(dir);
    const before = stateOf(dir);
    // An embedded zygote's client (this script) stays in the cgroup the zygote starts in.
    const client = `
      import { startZygote } from ${JSON.stringify(`${ROOT}dist/client/index.js`)};
      const z = await startZygote({ main: new URL(${JSON.stringify(ECHO_MAIN.href)}), startupTimeoutMs: 120_000 });
      const err = await z.spawn({ args: ['exit', 0], limits: { memoryBytes: 64 << 20 } }).then(() => null, (e) => e);
      // Every spawn has memory and pids limits unless it lifts both: then it needs no cgroup.
      const after = await z.spawn({ args: ['echo-args', 'unlimited'], limits: { memoryBytes: null, pids: null } });
      let out = '';
      for await (const d of after.stdout) out += d;
      await z.close();
      console.log(JSON.stringify({ zygotePid: z.pid, step: err?.step, code: err?.errno, message: err?.message, unlimited: out }));
    `;
    const proc = spawn('sh', ['-c', `echo $$ > ${CG}${dir}/cgroup.procs && exec '${process.execPath}' --input-type=module -e "$0"`, client], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
    const [out, code] = await Promise.all([collect(proc.stdout!), new Promise((resolve) => proc.once('exit', resolve))]);
    expect(code).toBe(0);
    const r = JSON.parse(out) as { zygotePid: number; step: string; code: string; message: string; unlimited: string };
    expect(r).toMatchObject({ step: 'cgroup', code: 'EBUSY', unlimited: '["unlimited"]' });
    expect(r.message).toContain(`cgroup: write "+memory +pids" to ${CG}${dir}/cgroup.subtree_control failed: EBUSY (`);
    expect(r.message).toMatch(/other processes share it \(pids \d+/);
    expect(r.message).toContain('Delegate=yes');
    expect(stateOf(dir)).toEqual(before);
    expect(namedFor(r.zygotePid)).toEqual([]);
  });
});
