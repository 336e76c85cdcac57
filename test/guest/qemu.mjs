// Boots the test guest under QEMU and waits, bounded, for it to power off. TCG, not KVM: these
// machines have no /dev/kvm. The host's root is shared read-only (9p tag "hostroot"), a host
// directory writable (tag "results"); the guest's serial console goes to a file.
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';

export const QEMU = 'qemu-system-x86_64';

/** The QEMU binary, or why there is none. A probe that cannot tell throws. */
export function findQemu() {
  const r = spawnSync(QEMU, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error && r.error.code === 'ENOENT') return { ok: false, reason: 'qemu not installed (.ci/run installs it)' };
  if (r.error) throw new Error(`probing ${QEMU} failed: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${QEMU} --version exited ${r.status}: ${r.stderr.trim()}`);
  return { ok: true, version: r.stdout.split('\n')[0].trim() };
}

/**
 * Boots vmlinuz with initramfs and waits for QEMU to exit (the guest powered off, or panicked:
 * panic=-1 with -no-reboot) or for timeoutMs, when QEMU is killed.
 * @param {{ vmlinuz: string, initramfs: string, resultsDir: string, consoleFile: string,
 *   timeoutMs: number, cpus?: number, memoryMiB?: number, echo?: boolean }} o
 * @returns {Promise<{ outcome: 'exited' | 'timeout', code: number | null, signal: string | null, ms: number }>}
 */
export function bootGuest(o) {
  if (!Number.isInteger(o.timeoutMs) || o.timeoutMs <= 0) throw new TypeError(`Expected timeoutMs to be a positive integer, got ${o.timeoutMs}`);
  // -virtfs takes comma-separated options: a comma in a path would need escaping.
  if (o.resultsDir.includes(',')) throw new TypeError(`the results directory may not contain a comma: ${o.resultsDir}`);
  const append = [
    'console=ttyS0',
    'panic=-1',
    // cgroup v2 alone, with every controller free for it, as on a systemd or Kubernetes host.
    'cgroup_no_v1=all',
    // A kernel lockup panics (panic=-1 powers off) with every CPU's backtrace on the console,
    // rather than spinning until the host's timeout with nothing to read (a CI run saw both
    // vCPUs stuck for 500 s, unexplained). loglevel 5 lets the backtraces, printed at the
    // default level 4, through. watchdog_thresh 30: a CPU counts as locked up after 60 s, not
    // 20, since under TCG the host may stall a vCPU for seconds.
    'softlockup_panic=1',
    'softlockup_all_cpu_backtrace=1',
    'watchdog_thresh=30',
    'hung_task_panic=1',
    'loglevel=5',
  ].join(' ');
  const args = [
    ...['-accel', 'tcg,thread=multi', '-M', 'q35', '-cpu', 'max', '-smp', String(o.cpus ?? 2), '-m', String(o.memoryMiB ?? 2048)],
    ...['-display', 'none', '-vga', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot', '-net', 'none'],
    ...['-kernel', o.vmlinuz, '-initrd', o.initramfs, '-append', append],
    ...['-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap'],
    ...['-virtfs', `local,path=${o.resultsDir},mount_tag=results,security_model=none,multidevs=remap`],
  ];
  const started = performance.now();
  const console = createWriteStream(o.consoleFile);
  const qemu = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [qemu.stdout, qemu.stderr]) {
    stream.on('data', (d) => {
      console.write(d);
      if (o.echo) process.stdout.write(d);
    });
  }
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      qemu.kill('SIGKILL');
    }, o.timeoutMs);
    qemu.once('error', (err) => {
      clearTimeout(timer);
      console.end();
      reject(new Error(`cannot start ${QEMU}: ${err.message}`));
    });
    // 'close': the process is reaped and its pipes are drained, so the console file is whole.
    qemu.once('close', (code, signal) => {
      clearTimeout(timer);
      console.end(() => resolve({ outcome: timedOut ? 'timeout' : 'exited', code, signal, ms: performance.now() - started }));
    });
  });
}
