// On cgroup v2 alone, in the hierarchy's root (the guest, as a VM or a host runs it): what
// zygote doctor says, where a limited child's cgroup is and what it holds, and runStep with
// limits. Runs in the cgroup v2 guest only (vitest.guest.config.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tableFromArrays } from 'apache-arrow';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MIN_MEMORY_BYTES, runStep, startZygote, stepRunner, type Zygote } from '../../dist/index.js';
import { CLI, ECHO_MAIN, ROOT, waitFor } from '../helpers/index.js';
import { cgroupV2, describeNeeds } from '../helpers/host.js';

const GOOD = fileURLToPath(new URL('../fixtures/steps/double.mjs', import.meta.url));
const HOG = fileURLToPath(new URL('../fixtures/steps/hog.mjs', import.meta.url));
const OUTPUT_HOG = fileURLToPath(new URL('../fixtures/steps/output-hog.mjs', import.meta.url));
const MiB = 2 ** 20;
/** Under emulation a zygote that preloads apache-arrow takes tens of seconds to warm up. */
const STARTUP = { startupTimeoutMs: 120_000, spawnTimeoutMs: 60_000 };

/** pid's cgroup v2 path ("0::/a/b" in /proc/PID/cgroup). */
function cgroupOf(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
  if (!line) throw new Error(`no cgroup v2 line in /proc/${pid}/cgroup`);
  return line.slice(3);
}

const read = (dir: string, file: string) => readFileSync(`/sys/fs/cgroup${dir}/${file}`, 'utf8').trim();

describeNeeds(cgroupV2(), 'on cgroup v2 alone', () => {
  let z: Zygote;
  let steps: Zygote;
  beforeAll(async () => {
    [z, steps] = await Promise.all([startZygote({ main: ECHO_MAIN, ...STARTUP }), startZygote({ main: stepRunner, preload: ['apache-arrow'], ...STARTUP })]);
  });
  afterAll(async () => {
    await Promise.all([z?.close(), steps?.close()]);
  });

  it('zygote doctor says v2, with memory and pids for per-child cgroups, and every required layer available', () => {
    const r = spawnSync(process.execPath, [CLI, 'doctor', '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { results: { layer: string; status: string; detail: string; data?: Record<string, unknown> }[]; failing: string[] };
    const layer = (name: string) => report.results.find((x) => x.layer === name)!;
    expect(report.failing).toEqual([]);
    expect(layer('cgroups').data).toMatchObject({ mode: 'v2', v1: [] });
    for (const name of ['cgroup-memory', 'cgroup-pids']) {
      expect(layer(name)).toMatchObject({ status: 'ok', data: { version: 'v2', dir: '/sys/fs/cgroup' } });
      expect(layer(name).detail).toContain("under the hierarchy's root, where the zygote stays");
    }
  });

  it("runs a limited child in a cgroup of its own under the zygote's, with its limits, no swap and the OOM group; the zygote stays in the root", async () => {
    const child = await z.spawn({ args: ['hang'], limits: { memoryBytes: 96 * MiB, pids: 40 } });
    await new Promise((r) => child.stdout.once('data', r));
    const dir = cgroupOf(child.pid);
    expect(dir).toMatch(new RegExp(`^/zygote-${z.pid}/child-\\d+$`));
    expect(cgroupOf(z.pid)).toBe('/');
    expect({ max: read(dir, 'memory.max'), swap: read(dir, 'memory.swap.max'), group: read(dir, 'memory.oom.group'), pids: read(dir, 'pids.max') }).toEqual({
      max: String(96 * MiB),
      swap: '0',
      group: '1',
      pids: '40',
    });
    // Its init and the step are both in it: nothing of the child runs elsewhere.
    expect(readFileSync(`/sys/fs/cgroup${dir}/cgroup.procs`, 'utf8').trim().split('\n')).toHaveLength(2);
    child.kill();
    expect((await child.exited).reason).toBe('killed');
    await waitFor(() => !existsSync(`/sys/fs/cgroup${dir}`), 10_000, 'the child cgroup to be removed');
  });

  it('runs a step at the memory floor (MIN_MEMORY_BYTES, 32 MiB) 20 times in a row, each well under it', async () => {
    expect(MIN_MEMORY_BYTES).toBe(32 * MiB);
    const peaks: number[] = [];
    for (let i = 0; i < 20; i++) {
      const out = await runStep(steps, { module: GOOD, input: tableFromArrays({ x: Int32Array.from([1, 2, 3]) }), limits: { memoryBytes: MIN_MEMORY_BYTES, wallTimeMs: 120_000 } });
      if (!out.ok) throw new Error(`step ${i + 1}: ${out.error.kind}: ${out.error.message} (peaks so far, MiB: ${peaks.map((p) => (p / MiB).toFixed(1)).join(', ')})`);
      peaks.push(out.exit.memoryPeakBytes ?? 0);
      out.release();
    }
    expect(Math.max(...peaks)).toBeLessThan(MIN_MEMORY_BYTES);
  });

  it('runs a step with runStep under memory and pids limits, and returns its table', async () => {
    const input = tableFromArrays({ x: Float64Array.of(1, 2, 3) });
    const out = await runStep(steps, { module: GOOD, input, params: { label: 'v2' }, limits: { memoryBytes: 256 * MiB, pids: 64, wallTimeMs: 120_000 } });
    if (!out.ok) throw new Error(`${out.error.kind}: ${out.error.message}`);
    expect(Array.from(out.table.getChild('x')!.toArray())).toEqual([2, 4, 6]);
    // Its figures are its cgroup's: what the step touched itself (the pages it shares with the
    // zygote since the fork stay charged to the zygote), well under the limit.
    expect(out.exit.memoryPeakBytes).toBeGreaterThan(0);
    expect(out.exit.memoryPeakBytes).toBeLessThan(256 * MiB);
    out.release();
  });

  it("caps runStep's output filesystem at limits.outputBytes on a kernel whose tmpfs takes no idmap (6.1: the child's own): 'output-limit' past it, the table within it", async () => {
    const fill = { attack: 'fill', count: 3, bytes: 8 * MiB };
    const over = await runStep(steps, { module: OUTPUT_HOG, params: fill, limits: { outputBytes: 16 * MiB, wallTimeMs: 120_000 } });
    expect(over.ok ? 'ok' : `${over.error.kind}: ${over.error.message}`).toMatch(/^output-limit: /);
    // Positive control: with room for the three files, the same step succeeds.
    const within = await runStep(steps, { module: OUTPUT_HOG, params: fill, limits: { outputBytes: 32 * MiB, wallTimeMs: 120_000 } });
    if (!within.ok) throw new Error(`${within.error.kind}: ${within.error.message}`);
    expect(within.table.numRows).toBe(3);
    within.release();
  });

  it("ends a runStep past its memory limit as 'oom', naming the step's peak memory (its cgroup's, at the limit)", async () => {
    const input = tableFromArrays({ x: Float64Array.of(1) });
    const out = await runStep(steps, { module: HOG, input, params: { mib: 300 }, limits: { memoryBytes: 128 * MiB, wallTimeMs: 120_000 } });
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.error.kind).toBe('oom');
    expect(out.exit?.memoryPeakBytes).toBeGreaterThanOrEqual(96 * MiB);
    expect(out.error.message).toMatch(/^the step ran out of memory \(its cgroup's limit\) and was killed; peak memory 1[0-2]\d MiB$/);
  });
});

