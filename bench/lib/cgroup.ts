// Memory and pids limits for the bench's process peers (a cold node, bubblewrap, a snapshot):
// a cgroup per step, as a renderer spawning those would need, joined by a shell before it
// execs the program (as cgexec does), so nothing of the step runs outside it. The zygote makes
// its own; this is only for the peers it is compared with.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface StepLimits {
  memoryBytes: number;
  pids: number;
}

/** One step's cgroup(s): the argv that runs a program inside, and the removal. */
export interface StepCgroup {
  wrap(argv: readonly string[]): string[];
  remove(): void;
}

type Layout = { version: 'v1'; memory: string; pids: string } | { version: 'v2'; home: string };

/** Cgroups under this process's own, in a directory of this bench run; removed by close(). */
export class BenchCgroups {
  private seq = 0;
  private readonly bases: string[];

  private constructor(private readonly layout: Layout) {
    const name = `zygote-bench-${process.pid}`;
    this.bases = layout.version === 'v1' ? [join(layout.memory, name), join(layout.pids, name)] : [join(layout.home, name)];
    for (const b of this.bases) mkdirSync(b);
    try {
      if (layout.version === 'v2') writeFileSync(join(this.bases[0], 'cgroup.subtree_control'), '+memory +pids');
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** The cgroups, or why this host cannot give a bench process memory and pids limits. */
  static open(): BenchCgroups | { unavailable: string } {
    try {
      return new BenchCgroups(detect());
    } catch (err) {
      return { unavailable: (err as Error).message };
    }
  }

  make(limits: StepLimits): StepCgroup {
    const n = ++this.seq;
    const dirs = this.layout.version === 'v1' ? [join(this.bases[0], `s${n}`), join(this.bases[1], `s${n}`)] : [join(this.bases[0], `s${n}`)];
    for (const d of dirs) mkdirSync(d);
    const [memory, pids] = this.layout.version === 'v1' ? dirs : [dirs[0], dirs[0]];
    writeFileSync(join(memory, this.layout.version === 'v1' ? 'memory.limit_in_bytes' : 'memory.max'), String(limits.memoryBytes));
    writeFileSync(join(pids, 'pids.max'), String(limits.pids));
    const procs = [...new Set([memory, pids])].map((d) => join(d, 'cgroup.procs'));
    return {
      // sh -c SCRIPT PROCS... ARGV...: $0 (and $1 on v1) are the cgroup.procs files.
      wrap: (argv) =>
        procs.length === 2
          ? ['/bin/sh', '-c', 'echo $$ > "$0" && echo $$ > "$1" && shift && exec "$@"', ...procs, ...argv]
          : ['/bin/sh', '-c', 'echo $$ > "$0" && exec "$@"', ...procs, ...argv],
      remove: () => {
        for (const d of dirs) rmdirRetry(d);
      },
    };
  }

  close(): void {
    for (const b of this.bases) rmdirRetry(b);
  }
}

function detect(): Layout {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
  const v1 = (controller: string) => {
    const line = lines.find((l) => l.split(':')[1]?.split(',').includes(controller));
    return line ? join('/sys/fs/cgroup', controller, line.split(':')[2]) : null;
  };
  const memory = v1('memory');
  const pids = v1('pids');
  if (memory && pids && existsSync(memory) && existsSync(pids)) return { version: 'v1', memory, pids };
  const unified = lines.find((l) => l.startsWith('0::'));
  if (unified && existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    const home = join('/sys/fs/cgroup', unified.slice(3));
    const available = readFileSync(join(home, 'cgroup.controllers'), 'utf8');
    if (!/\bmemory\b/.test(available) || !/\bpids\b/.test(available)) throw new Error(`cgroup v2: ${home} does not offer memory and pids`);
    return { version: 'v2', home };
  }
  throw new Error('no memory and pids cgroup hierarchy this process can use');
}

/** rmdir of a cgroup whose last process just exited can briefly fail with EBUSY. */
function rmdirRetry(dir: string): void {
  for (let i = 0; ; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || i >= 200) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}
