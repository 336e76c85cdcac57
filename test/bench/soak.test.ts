// `npm run soak` at test scale: the real CLI (zygote serve, two client processes of another uid,
// a pool, a network) runs 300 spawns of every kind and passes, with every figure measured
// before and after. And that it can fail: growth beyond noise is flagged, and the probes count
// a leak planted in a real zygote (a cgroup in its tree), and the zygote is not idle while it is
// there. Networked zygotes run in a network namespace of their own (`unshare --net`): one turns
// on IPv4 forwarding where it runs, and namespaces other tests make meanwhile would inherit it.
// The soak runs from a scratch copy of the package that its clients' uid can read (the checkout
// may sit in a 0700 directory, as a `mktemp -d` clone does).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type Zygote } from 'zygote';
import { judgeGrowth, measureIdle, rssNoise, soakFigures, type SoakReport, type SoakSnapshot, type ZygoteNetwork } from '../../dist/bench/soak.js';
import { zygoteCgroupTrees } from '../../dist/bench/stress.js';
import { bounded, collect, ROOT } from '../helpers/index.js';
import { scratchPackage } from '../helpers/deputy.js';

const MiB = 1024 * 1024;
const FIGURES = ['zygote RSS', 'zygote fds', 'zygote mounts', 'host mounts', 'child cgroups', 'nft rules', 'nft set elements', 'veths', 'zombies', 'live children'];

describe('npm run soak --spawns 300 --clients 2 --concurrency 8', () => {
  let code: number | null;
  let stdout: string;
  let stderr: string;
  let report: SoakReport;

  let scratch: string;

  beforeAll(async () => {
    let pkg: string;
    ({ scratch, pkg } = scratchPackage('zygote-soak-', ['bench/fixtures']));
    const cp = spawn('unshare', ['--net', process.execPath, join(pkg, 'dist/bench/soak.js'), '--spawns', '300', '--clients', '2', '--concurrency', '8'], { cwd: pkg, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = collect(cp.stdout);
    const err = collect(cp.stderr);
    const exit = new Promise<number | null>((resolve) => cp.once('exit', (c) => resolve(c)));
    try {
      code = await bounded(exit, 120_000, 'the soak to finish');
    } catch (e) {
      cp.kill('SIGKILL');
      await bounded(exit, 10_000, 'the killed soak to exit');
      throw e;
    }
    [stdout, stderr] = await Promise.all([out, err]);
    const file = /^summary: (.+)$/m.exec(stdout)?.[1];
    if (!file) throw new Error(`no summary line; stdout: ${stdout}\nstderr: ${stderr}`);
    report = JSON.parse(readFileSync(file, 'utf8')) as SoakReport;
    rmSync(file);
  }, 150_000);

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('exits 0 and says PASSED, with no problems', () => {
    expect(report.problems).toEqual([]);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/\nPASSED\n/);
  });

  it('runs the warm-up and the 300 spawns, every one ending as planned, every kind among them', () => {
    expect(report.phases.map((p) => [p.name, p.spawns, p.counts.ok])).toEqual([
      ['warm-up', 200, 200],
      ['soak', 300, 300],
    ]);
    const soak = report.phases[1];
    expect(Object.keys(soak.byKind).sort()).toEqual(['exit-code', 'killed', 'limited', 'network', 'network-allow', 'plain']);
    expect(soak.zygoteSpawns.claimed + soak.zygoteSpawns.forked).toBe(300);
    expect(soak.zygoteSpawns.claimed).toBeGreaterThan(0);
  });

  it('measures every figure before and after, on an idle zygote, and prints each', () => {
    expect(report.figures.map((f) => f.name)).toEqual(FIGURES);
    for (const f of report.figures) {
      expect(Number.isFinite(f.before), f.name).toBe(true);
      expect(Number.isFinite(f.after), f.name).toBe(true);
      expect(f.grew, f.name).toBe(false);
      expect(stdout).toMatch(new RegExp(`^${f.name} `, 'm'));
    }
    const soak = report.phases[1];
    expect(soak.rssSamples.length).toBeGreaterThan(0);
    expect(soak.rssFloors).toHaveLength(10);
    for (const s of [report.before!, report.after!]) {
      expect(s.settled).toBe(true);
      expect(s.stats).toMatchObject({ busy: 0, queued: 0, poolIdle: 4, poolSize: 4 });
      expect(s.nft?.rules).toBeGreaterThan(0);
    }
  });

  it('runs its clients as the client uid, which close cleanly, and leaves nothing after the zygote stops', () => {
    expect(report.clients.map((c) => c.exit)).toEqual([
      { code: 0, signal: null, killed: false },
      { code: 0, signal: null, killed: false },
    ]);
    expect(report.serverStop).toEqual({ code: 0, signal: null, killed: false });
    expect(report.afterClose).toEqual({ trees: [], processes: [], nftTable: false, veths: [], socket: false });
  });
});

describe("the soak's growth check", () => {
  const figure = (before: number, after: number, noise: number) => ({ name: 'f', unit: 'count' as const, before, after, noise });

  it('flags growth beyond the noise, and only that', () => {
    expect(judgeGrowth([figure(5, 5, 0), figure(5, 4, 0), figure(5, 6, 0), figure(100, 108, 8), figure(100, 109, 8)]).map((f) => [f.growth, f.grew])).toEqual([
      [0, false],
      [-1, false],
      [1, true],
      [8, false],
      [9, true],
    ]);
  });

  it('flags a figure it could not measure', () => {
    expect(judgeGrowth([figure(16, NaN, 0), figure(NaN, 16, 0)]).map((f) => f.grew)).toEqual([true, true]);
  });

  it("allows the zygote's RSS 8 MiB or 10%, the larger", () => {
    expect(rssNoise(60 * MiB)).toBe(8 * MiB);
    expect(rssNoise(200 * MiB)).toBe(20 * MiB);
  });
});

describe("the soak's probes on a real zygote with a pool (positive control)", () => {
  let z: Zygote;
  const net: ZygoteNetwork | null = null;
  let before: SoakSnapshot;
  let leaking: SoakSnapshot;
  let cleaned: SoakSnapshot;
  const planted: string[] = [];

  beforeAll(async () => {
    z = await startZygote({ main: join(ROOT, 'bench/fixtures/soak-main.mjs'), pool: { size: 1 } });
    // One child, so that the tree exists.
    const child = await z.spawn({ limits: { memoryBytes: 64 * MiB, pids: 16 } });
    child.stdin.end();
    await bounded(child.exited, 20_000, 'the child to exit');
    before = await measureIdle(z, net, 10_000);
    // What spawns that were never cleaned up would leave.
    for (const tree of zygoteCgroupTrees(z.pid).filter((t) => existsSync(t))) {
      mkdirSync(join(tree, 'child-planted-by-test'));
      planted.push(join(tree, 'child-planted-by-test'));
    }
    leaking = await measureIdle(z, net, 1_000);
    for (const dir of planted) rmdirSync(dir);
    cleaned = await measureIdle(z, net, 10_000);
  }, 60_000);

  afterAll(async () => {
    for (const dir of planted) if (existsSync(dir)) rmdirSync(dir);
    await z?.close();
  });

  it('planted a cgroup in at least one tree', () => {
    expect(planted.length).toBeGreaterThan(0);
  });

  it('finds the zygote idle before and after the leak is cleaned up, with nothing grown', () => {
    expect(before.settled).toBe(true);
    expect(cleaned.settled).toBe(true);
    expect(judgeGrowth(soakFigures(before, cleaned, false)).filter((f) => f.grew)).toEqual([]);
  });

  it('counts the planted cgroups as growth, and the zygote as not idle', () => {
    expect(leaking.settled).toBe(false);
    const grew = judgeGrowth(soakFigures(before, leaking, false)).filter((f) => f.grew);
    expect(grew.map((f) => [f.name, f.growth])).toEqual([['child cgroups', planted.length]]);
    expect([...leaking.leakedCgroups].sort()).toEqual([...planted].sort());
  });
});
