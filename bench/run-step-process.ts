// The peers that start a process per step and speak the same step protocol to it: a cold
// `node` (the package's `zygote/cold` runner with the step runner as main), the same under
// bubblewrap, and `node --snapshot-blob` from a startup snapshot that preloaded apache-arrow.
// Each step is what runStep does around it: a temp directory, the input written as an Arrow
// file, the request on stdin (talkToStep), the result, the output file mapped and validated,
// the directory removed. With limits, the process starts in a memory+pids cgroup of its own.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ARROW_CAPS, encodeStepRequest, readArrowOutput, stepRunner, talkToStep, writeArrowFile } from 'zygote';
import { encodeColdJob } from 'zygote/cold';
import { BenchCgroups, type StepCgroup } from './lib/cgroup.js';
import { COLD_RUNNER, fixturePath, ROOT_DIR } from './lib/paths.js';
import { faultsFrom, HOLD_MARK, STEP_LIMITS, until, type Held, type Peer, type RunningPeer, type Sample, type StepCase } from './run-step-peer.js';
import { IDENTITY_STEP } from './run-step-zygote.js';

const IDENTITY_STEP_CJS = fixturePath('steps/identity.cjs');
const SNAPSHOT_RUNNER = fixturePath('snapshot-runner.cjs');
const ENV = { LC_ALL: 'C.UTF-8' };
const COLD_JOB = encodeColdJob({ main: stepRunner.href, preload: ['apache-arrow'], args: [] });

/** The directories of one step, as the process sees them (the same paths: no mount moves them). */
interface StepDirs {
  inDir: string;
  outDir: string;
}

interface ProcessKind {
  /** The command that runs one step, given its directories. */
  argv(d: StepDirs): string[];
  /** The step module the request names. */
  module: string;
}

export function coldPeer(cgroups: BenchCgroups | { unavailable: string }): Peer {
  return {
    name: 'cold',
    description: `a fresh \`node ${COLD_RUNNER.split('/').slice(-2).join('/')}\` per step (the package's zygote/cold runner: imports apache-arrow and the step runner, then runs it), no sandbox: the baseline`,
    async start() {
      return processPeer({ argv: () => [process.execPath, COLD_RUNNER, COLD_JOB], module: IDENTITY_STEP }, cgroups);
    },
  };
}

export function bubblewrapPeer(cgroups: BenchCgroups | { unavailable: string }): Peer {
  return {
    name: 'bwrap',
    description: 'the cold runner under bubblewrap: every namespace unshared (user, pid, net, ipc, uts, cgroup), uid 65534, no capabilities, a read-only /usr and package, its own /proc, /dev and /tmp, the input read-only and the output writable; no seccomp filter, Landlock or rlimits',
    async start() {
      const base = bubblewrapArgs();
      // Does it run here at all (installed, user namespaces allowed)?
      const probe = spawnSync('bwrap', [...base, process.execPath, '-e', '0'], { encoding: 'utf8', timeout: 30_000 });
      if (probe.error) return { skipped: `bubblewrap is not installed (${(probe.error as NodeJS.ErrnoException).code}; the bench's setup installs it with apt-get where it can)` };
      if (probe.status !== 0) return { skipped: `bubblewrap cannot run here: ${probe.stderr.trim() || `exit ${probe.status}`}` };
      return processPeer(
        {
          argv: (d) => ['bwrap', ...base, '--ro-bind', d.inDir, d.inDir, '--bind', d.outDir, d.outDir, process.execPath, COLD_RUNNER, COLD_JOB],
          module: IDENTITY_STEP,
        },
        cgroups,
      );
    },
  };
}

export function snapshotPeer(cgroups: BenchCgroups | { unavailable: string }, blobDir: string): Peer {
  return {
    name: 'snapshot',
    description: 'a fresh `node --snapshot-blob` per step, from a startup snapshot that preloaded and warmed apache-arrow (CommonJS build) and the step codec; bench/fixtures/snapshot-runner.cjs speaks the step protocol; no sandbox',
    async start() {
      const blob = join(blobDir, 'step-runner.blob');
      // The step codec the package ships (generated from protocol/step.thrift): CommonJS, so a snapshot can hold it.
      const codec = fileURLToPath(new URL('./protocol/gen/step_types.cjs', import.meta.resolve('zygote')));
      const built = spawnSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', SNAPSHOT_RUNNER], {
        env: { ...ENV, ZYGOTE_BENCH_SNAPSHOT: JSON.stringify({ root: ROOT_DIR, codec }) },
        encoding: 'utf8',
        timeout: 120_000,
      });
      if (built.status !== 0) return { skipped: `node --build-snapshot failed: ${(built.stderr || built.error?.message || '').trim().split('\n').slice(-5).join(' | ')}` };
      return processPeer({ argv: () => [process.execPath, '--snapshot-blob', blob], module: IDENTITY_STEP_CJS }, cgroups);
    },
  };
}

/** bubblewrap's arguments before the step's own mounts and command. */
function bubblewrapArgs(): string[] {
  const node = realpathSync(process.execPath);
  const args = ['--unshare-all', '--die-with-parent', '--new-session', '--cap-drop', 'ALL', '--uid', '65534', '--gid', '65534'];
  args.push('--ro-bind', '/usr', '/usr', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--symlink', 'usr/bin', '/bin');
  if (!node.startsWith('/usr/')) args.push('--ro-bind', dirname(node), dirname(node));
  args.push('--ro-bind', ROOT_DIR, ROOT_DIR, '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--clearenv', '--setenv', 'LC_ALL', ENV.LC_ALL);
  return args;
}

function processPeer(kind: ProcessKind, cgroups: BenchCgroups | { unavailable: string }): RunningPeer {
  return {
    residentPid: null,
    noLimits: 'unavailable' in cgroups ? cgroups.unavailable : undefined,
    run: (c) => runOne(kind, cgroups, c, null),
    hold: async <T>(c: StepCase, atHold: (h: Held) => T) => {
      let held = false;
      let value: T | undefined;
      await runOne(kind, cgroups, c, (h) => ((held = true), (value = atHold(h))));
      if (!held) throw new Error('the step ended without holding');
      return value as T;
    },
    close: async () => undefined,
  };
}

/** One step through a process, start to validated finish; with `hold`, a step that waits while hold runs. */
async function runOne(kind: ProcessKind, cgroups: BenchCgroups | { unavailable: string }, c: StepCase, hold: ((h: Held) => void) | null): Promise<Sample> {
  if (c.limited && 'unavailable' in cgroups) throw new Error(`no cgroup for a limited step: ${cgroups.unavailable}`);
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'zygote-bench-step-'));
  let cgroup: StepCgroup | null = null;
  let sample: Sample;
  try {
    const d: StepDirs = { inDir: join(dir, 'in'), outDir: join(dir, 'out') };
    mkdirSync(d.inDir);
    mkdirSync(d.outDir);
    writeArrowFile(join(d.inDir, 'input.arrow'), c.table);
    let argv = kind.argv(d);
    if (c.limited) {
      cgroup = (cgroups as BenchCgroups).make(STEP_LIMITS);
      argv = cgroup.wrap(argv);
    }
    const cp = spawn(argv[0], argv.slice(1), { env: ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      cp.once('close', (code, signal) => resolve({ code, signal }));
      cp.once('error', () => resolve({ code: null, signal: null }));
    });
    const release = join(d.outDir, 'release');
    let holding = false;
    if (hold) cp.stderr!.on('data', (b: Buffer) => (holding ||= b.toString().includes(HOLD_MARK)));
    const request = encodeStepRequest({ module: kind.module, params: hold ? { release } : {}, inputPath: join(d.inDir, 'input.arrow'), outputPath: join(d.outDir, 'output.arrow') });
    const talking = talkToStep({ stdin: cp.stdin!, stdout: cp.stdout!, stderr: cp.stderr!, exited, kill: () => void cp.kill('SIGKILL') }, request, { resultTimeoutMs: 60_000, stderrBytes: 64 * 1024 });
    if (hold) {
      let over = false;
      // A step that ends before it holds ends the wait; talking then says why.
      talking.then(() => (over = true), () => (over = true));
      try {
        await until(() => holding || over, 30_000, 'the held step saying it holds');
        if (holding) hold({ pid: cp.pid! });
      } finally {
        writeFileSync(release, '');
      }
    }
    const x = await talking;
    if (!x.result?.ok || x.exit.code !== 0) {
      const why = x.protocolError?.message ?? (x.result && !x.result.ok ? x.result.message : `exit ${x.exit.code ?? x.exit.signal}`);
      throw new Error(`the step failed: ${why}\n${x.stderr.text}`);
    }
    const out = readArrowOutput(d.outDir, 'output.arrow', DEFAULT_ARROW_CAPS);
    const rows = out.table.numRows;
    out.unmap();
    if (rows !== c.table.numRows) throw new Error(`the identity step returned ${rows} rows, not ${c.table.numRows}`);
    sample = { ms: NaN, faults: faultsFrom(x.stderr.text) };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    cgroup?.remove();
    throw err;
  }
  rmSync(dir, { recursive: true, force: true });
  sample.ms = performance.now() - t0;
  // Off the clock, as the zygote removes a child's cgroup when idle.
  cgroup?.remove();
  return sample;
}
