#!/usr/bin/env node
// The cgroup v2 guest suite: vitest, with vitest.guest.config.ts, inside a QEMU guest that boots
// Debian's stock kernel with cgroup v2 alone (test/guest/init.sh). `npm test` runs it after the
// host suite (scripts/test.mjs); `npm run test:guest [files...]` runs it by hand, with the
// guest's console on the terminal. The guest writes vitest's JSON report into a host temp
// directory shared with it; the console is kept in a file and its tail shown on failure.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBusybox, findKernel, initramfsFor } from './initramfs.mjs';
import { bootGuest, findQemu } from './qemu.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where the guest sees the results share (init.sh). */
const GUEST_RESULTS = '/.zygote-guest/results';
/**
 * Boot, vitest's start-up in the guest and the suite. TCG is slow, and slower on a shared
 * host: 140-170 s here when the machine was quiet, 414 s under a load of 7 from other work.
 */
export const DEFAULT_TIMEOUT_MS = 600_000;
/** How the guest's tests are named in npm test's output. */
export const GUEST_PREFIX = '[cgroup v2 guest]';

/**
 * Whether this host can run the guest: QEMU, a kernel with modules, a static busybox.
 * @returns {{ ok: true, qemu: string, kernel: { version: string, vmlinuz: string, modules: string } } | { ok: false, reason: string }}
 */
export function guestReadiness() {
  const qemu = findQemu();
  if (!qemu.ok) return qemu;
  const kernel = findKernel();
  if (!kernel.ok) return kernel;
  const busybox = findBusybox();
  if (!busybox.ok) return busybox;
  return { ok: true, qemu: qemu.version, kernel };
}

/**
 * Runs a shell script as root in the guest (cwd: the checkout) and returns how it went.
 * The results directory is the caller's to remove (keep it to look at the console).
 * @param {{ script: string, timeoutMs?: number, echo?: boolean }} o
 */
export async function runInGuest(o) {
  const ready = guestReadiness();
  if (!ready.ok) throw new Error(`cannot run the guest: ${ready.reason}`);
  const initramfs = initramfsFor(ready.kernel);
  const resultsDir = mkdtempSync(join(tmpdir(), 'zygote-guest-'));
  const consoleFile = join(resultsDir, 'console.log');
  const env = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: '/root',
    NO_COLOR: '1',
    ...(process.env.CI ? { CI: process.env.CI } : {}),
  };
  const exports = Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  writeFileSync(join(resultsDir, 'run.sh'), ['set -e', ...exports, `cd ${shellQuote(ROOT)}`, o.script, ''].join('\n'));
  const boot = await bootGuest({ vmlinuz: ready.kernel.vmlinuz, initramfs, resultsDir, consoleFile, timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS, echo: o.echo });
  let status = null;
  try {
    status = Number(readFileSync(join(resultsDir, 'status'), 'utf8').trim());
  } catch {
    // No status: the guest did not get to the end of the command (init.sh failed, a panic, the timeout).
  }
  return { ...boot, status, resultsDir, consoleFile, kernel: ready.kernel.version };
}

/**
 * vitest with the guest config in the guest. `report` is vitest's JSON report, or null with
 * `failure` saying why there is none (not booted, timed out, crashed).
 * @param {{ files?: string[], timeoutMs?: number, echo?: boolean }} o
 */
export async function runGuestSuite(o = {}) {
  const report = `${GUEST_RESULTS}/report.json`;
  const files = (o.files ?? []).map(shellQuote).join(' ');
  // vitest's verdict is in the report: the script goes on to write its status whatever it is.
  // Piped, so that vitest does not take the serial console for a terminal and redraw it.
  const script = `node node_modules/vitest/vitest.mjs run --config vitest.guest.config.ts --reporter=default --reporter=json --outputFile.json=${report} ${files} 2>&1 | cat || true`;
  const run = await runInGuest({ script, timeoutMs: o.timeoutMs, echo: o.echo });
  let parsed = null;
  let failure = null;
  try {
    parsed = JSON.parse(readFileSync(join(run.resultsDir, 'report.json'), 'utf8'));
  } catch (err) {
    failure =
      run.outcome === 'timeout'
        ? `the guest did not finish within ${Math.round((o.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000)} s (QEMU killed)`
        : run.status === null
          ? `the guest stopped before its command finished (QEMU exit ${run.code ?? run.signal})`
          : `vitest in the guest wrote no report (${err.code ?? err.message})`;
  }
  const consoleText = readConsole(run.consoleFile);
  const panic = panicIn(consoleText);
  if (!parsed && panic) failure = `the guest's kernel panicked: ${panic}`;
  return { ...run, report: parsed, failure, panic, lockup: panic !== null && LOCKUP.test(panic), consoleTail: lastLines(consoleText, 60) };
}

/**
 * The panics that the guest's command line turns a kernel lockup into (qemu.mjs): softlockup_panic
 * and hung_task_panic. Under TCG they are not necessarily ours to fix, and say nothing of the suite.
 */
const LOCKUP = /^(softlockup: hung tasks|hung_task: blocked tasks)/;

/** The reason of the first kernel panic on the console ("softlockup: hung tasks"), or null. */
export function panicIn(consoleText) {
  const m = /Kernel panic - not syncing: ([^\n]*)/.exec(consoleText);
  return m ? m[1].trim() : null;
}

function readConsole(file) {
  try {
    return readFileSync(file, 'utf8').replace(/\r/g, '');
  } catch {
    return '';
  }
}

/** The last n lines of text. */
function lastLines(text, n) {
  return text.split('\n').slice(-n).join('\n');
}

function shellQuote(s) {
  return `'${String(s).replaceAll("'", `'\\''`)}'`;
}

// By hand: npm run test:guest [files...] (builds first).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ready = guestReadiness();
  if (!ready.ok) {
    console.log(`skipped: ${ready.reason}`);
    process.exit(0);
  }
  console.log(`guest: ${ready.qemu}, kernel ${ready.kernel.version} (TCG; booting takes a while)`);
  const r = await runGuestSuite({ files: process.argv.slice(2), echo: true });
  console.log(`\nguest: ${r.outcome} after ${(r.ms / 1000).toFixed(0)} s; console kept in ${r.consoleFile}`);
  if (!r.report) {
    console.log(`guest suite failed: ${r.failure}`);
    process.exit(1);
  }
  const { numPassedTests: p, numFailedTests: f, numPendingTests: s } = r.report;
  console.log(`${p} passed, ${f} failed, ${s} skipped`);
  rmSync(join(r.resultsDir, 'report.json'), { force: true });
  process.exit(r.report.success ? 0 : 1);
}
