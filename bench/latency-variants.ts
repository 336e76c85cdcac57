// The ways the latency bench starts a step. Each variant is one entry in VARIANTS; a new one
// (a sandboxed zygote, say) only has to say how to start up, launch a step and shut down.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { SANDBOX_LAYERS, startZygote, type Limits, type Mount, type SpawnSandboxOptions, type Zygote } from 'zygote';
import { encodeColdJob } from 'zygote/cold';
import { COLD_RUNNER, fixtureUrl } from './lib/paths.js';

/** The bench main's modes: 'exit' writes a byte and returns; 'hold' then waits for stdin EOF. */
export type StepMode = 'exit' | 'hold';

/** A launched step, whatever started it. */
export interface Step {
  pid: number;
  stdin: Writable;
  stdout: Readable;
  /** Resolves once the step's process is gone. */
  exited: Promise<void>;
  kill(): void;
}

export interface RunningVariant {
  /** A long-lived process every step depends on (the zygote), whose RSS is a standing cost. */
  residentPid: number | null;
  launch(mode: StepMode): Promise<Step>;
  close(): Promise<void>;
}

export interface Variant {
  name: string;
  description: string;
  start(): Promise<RunningVariant>;
}

export interface VariantConfig {
  main: URL;
  preload: string[];
  /** The steps' whole environment. */
  env: Record<string, string>;
}

export const BENCH_CONFIG: VariantConfig = {
  main: fixtureUrl('first-byte-main.mjs'),
  preload: ['apache-arrow'],
  env: {},
};

/** Opting out of the default memory and pids limits: no cgroup per child. */
export const NO_CGROUP_LIMITS: Limits = { memoryBytes: null, pids: null };

/**
 * The variants the bench runs, alternating. 'cold' is the reference the ratios divide by;
 * the unsandboxed fork is there so the sandbox's own cost is a measured difference.
 */
export const VARIANTS: readonly Variant[] = [
  // What a spawn gets by default: the full sandbox and the default limits (a memory + pids cgroup).
  zygoteVariant('zygote', BENCH_CONFIG),
  // The same without a cgroup (memory and pids limits lifted): the difference is the cgroup's cost.
  zygoteVariant('zygote-no-cgroup', BENCH_CONFIG, undefined, NO_CGROUP_LIMITS),
  // Per-layer costs, against zygote-no-cgroup: the full sandbox without one layer each (the
  // difference is that layer's cost), and without any namespace.
  zygoteVariant('zygote-no-pid-ns', BENCH_CONFIG, { dangerouslySkip: ['pid-namespace'] }, NO_CGROUP_LIMITS),
  zygoteVariant('zygote-no-root', BENCH_CONFIG, { dangerouslySkip: ['mount-namespace'] }, NO_CGROUP_LIMITS),
  zygoteVariant('zygote-no-user-ns', BENCH_CONFIG, { dangerouslySkip: ['user-namespace'] }, NO_CGROUP_LIMITS),
  zygoteVariant('zygote-no-landlock', BENCH_CONFIG, { dangerouslySkip: ['landlock'] }, NO_CGROUP_LIMITS),
  zygoteVariant(
    'zygote-no-namespaces',
    BENCH_CONFIG,
    { dangerouslySkip: ['pid-namespace', 'cgroup-namespace', 'network-namespace', 'ipc-namespace', 'uts-namespace', 'mount-namespace', 'user-namespace'] },
    NO_CGROUP_LIMITS,
  ),
  // What runStep asks for: a read-only input directory and a writable output directory.
  zygoteVariant('zygote+mounts', BENCH_CONFIG, undefined, undefined, true),
  // Every layer but close-fds, which is the core's fd hygiene (issue 2), not sandboxing: a
  // child that kept the zygote's fds would even hold the write end of its own stdin. No cgroup.
  zygoteVariant('zygote-unsandboxed', BENCH_CONFIG, { dangerouslySkip: SANDBOX_LAYERS.filter((l) => l !== 'close-fds') }, NO_CGROUP_LIMITS),
  coldVariant('cold', BENCH_CONFIG),
];

export const REFERENCE_VARIANT = 'cold';

/** Fork from a warm zygote that preloaded the modules and imported main; sandboxed unless `sandbox` skips layers. */
export function zygoteVariant(name: string, cfg: VariantConfig, sandbox?: SpawnSandboxOptions, limits?: Limits, withMounts = false): Variant {
  const skipped = sandbox?.dangerouslySkip ?? [];
  const what = skipped.length === 0 ? 'full sandbox' : skipped.length >= SANDBOX_LAYERS.length - 1 ? 'no sandbox' : `sandbox without ${skipped.join(', ')}`;
  return {
    name,
    description: `fork from a warm zygote (preload ${cfg.preload.join(', ')}), ${what}, ${limits?.memoryBytes === null && limits?.pids === null ? 'no memory or pids limit (no cgroup)' : 'the default limits (a memory+pids cgroup per child)'}${withMounts ? ', an input mount and an output filesystem (as runStep asks)' : ''}`,
    async start() {
      const dir = withMounts ? mkdtempSync('/var/tmp/zygote-bench-') : null;
      const mounts: Mount[] = [];
      if (dir) {
        mkdirSync(join(dir, 'in'));
        writeFileSync(join(dir, 'in', 'input.arrow'), '');
        mounts.push({ source: join(dir, 'in'), target: '/input' });
      }
      const z: Zygote = await startZygote({
        main: cfg.main,
        preload: cfg.preload,
        env: cfg.env,
        name: `bench-${name}`,
        dangerouslyAllowUnsandboxed: skipped.length > 0,
        limits,
      });
      let n = 0;
      return {
        residentPid: z.pid,
        async launch(mode) {
          const child = await z.spawn({ args: [mode], name: `${name}-${++n}`, sandbox, mounts, ...(withMounts ? { output: {} } : {}) });
          child.stderr.pipe(process.stderr, { end: false });
          return {
            pid: child.pid,
            stdin: child.stdin,
            stdout: child.stdout,
            exited: child.exited.then(() => child.output?.close()),
            kill: () => void child.kill(),
          };
        },
        async close() {
          await z.close();
          if (dir) rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/** A fresh `node` per step running the cold runner: same preloads, same main, same runtime. */
export function coldVariant(name: string, cfg: VariantConfig): Variant {
  return {
    name,
    description: `child_process.spawn(node ${COLD_RUNNER.split('/').slice(-2).join('/')}) importing ${cfg.preload.join(', ')} and main`,
    async start() {
      return {
        residentPid: null,
        async launch(mode) {
          const job = encodeColdJob({ main: cfg.main.href, preload: cfg.preload, args: [mode] });
          const cp = spawn(process.execPath, [COLD_RUNNER, job], { env: cfg.env, stdio: ['pipe', 'pipe', 'inherit'] });
          const exited = new Promise<void>((resolve) => {
            cp.once('close', () => resolve());
            cp.once('error', () => resolve());
          });
          if (cp.pid === undefined) {
            await exited;
            throw new Error(`cannot spawn ${process.execPath}`);
          }
          return { pid: cp.pid, stdin: cp.stdin!, stdout: cp.stdout!, exited, kill: () => void cp.kill('SIGKILL') };
        },
        close: async () => undefined,
      };
    },
  };
}
