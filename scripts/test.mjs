#!/usr/bin/env node
// The README's test command: build, type-check the tests, run vitest, then the cgroup v2 guest
// suite where this host can boot it (test/guest/run.mjs), list every skipped test with its
// reason, and end with the plain summary line "N passed, N failed, N skipped" that CI reads,
// counting both. Exits with vitest's status, or 1 for a guest that failed, did not boot or timed
// out, or a skip that gives no reason.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { GUEST_PREFIX, guestReadiness, runGuestSuite } from '../test/guest/run.mjs';

const build = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
if (build.status !== 0) {
  console.log('0 passed, 1 failed');
  process.exit(build.status ?? 1);
}
// vitest strips types without checking them: check the tests against the built API first.
const typecheck = spawnSync('npx', ['tsc', '-p', 'tsconfig.test.json'], { stdio: 'inherit' });
if (typecheck.status !== 0) {
  console.log('0 passed, 1 failed');
  process.exit(typecheck.status ?? 1);
}
const dir = mkdtempSync(join(tmpdir(), 'zygote-test-'));
const report = join(dir, 'report.json');
const run = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
});
let passed = 0;
let failed = 0;
let skipped = [];
try {
  ({ passed, failed, skipped } = counts(JSON.parse(readFileSync(report, 'utf8')), ''));
} catch {
  failed = Math.max(1, failed);
}
rmSync(dir, { recursive: true, force: true });
if (run.status !== 0 && failed === 0) failed = 1;

const guest = await guestSuite(process.argv.slice(2));
passed += guest.passed;
failed += guest.failed;
skipped.push(...guest.skipped);

// A test is skipped only where a host probe said its facility is absent, and says why in its
// title (test/helpers/host.ts). A skip without a reason (a stray it.skip) fails the run.
const unexplained = skipped.filter((t) => t.reason === null);
if (skipped.length > 0) {
  console.log(`\nSkipped on this host (${skipped.length}):`);
  for (const t of skipped) console.log(`  ${t.file} > ${t.name}\n      ${t.reason ?? 'NO REASON GIVEN: a skip must name the missing facility (test/helpers/host.ts)'}`);
}
failed += unexplained.length;
console.log(`${passed} passed, ${failed} failed, ${skipped.length} skipped`);
process.exit(unexplained.length > 0 || guest.failed > 0 ? 1 : (run.status ?? 1));

/** Passed, failed (a file that fails outside any test counts once) and skipped in a vitest JSON report. */
function counts(r, prefix) {
  const brokenFiles = (r.testResults ?? []).filter((t) => t.status === 'failed' && !t.assertionResults?.some((a) => a.status === 'failed')).length;
  let failed = r.numFailedTests + brokenFiles;
  // An error outside every test and file (an unhandled rejection) fails the run too.
  if (r.success === false && failed === 0) failed = 1;
  return { passed: r.numPassedTests, failed, skipped: skippedTests(r, prefix) };
}

/**
 * The cgroup v2 guest's suite, counted like the host's: its tests' names carry GUEST_PREFIX.
 * Skipped, with the reason, where QEMU or the kernel is not installed or only some host files
 * were asked for; a guest that does not boot, crashes or times out is one failure, shown with
 * the tail of its console. A probe that cannot tell is a failure too, never a skip.
 */
async function guestSuite(args) {
  const skip = (reason) => ({ passed: 0, failed: 0, skipped: [{ file: 'test/guest', name: `${GUEST_PREFIX} the guest suite`, reason }] });
  if (args.length > 0) return skip('only the named test files were run (npm run test:guest runs the guest suite)');
  let ready;
  try {
    ready = guestReadiness();
  } catch (err) {
    console.log(`\ncgroup v2 guest: probing failed: ${err.message}`);
    return { passed: 0, failed: 1, skipped: [] };
  }
  if (!ready.ok) return skip(ready.reason);
  console.log(`\n== cgroup v2 guest: ${ready.qemu}, Debian kernel ${ready.kernel.version}, TCG ==`);
  let g;
  // A kernel lockup in the emulated guest (its backtraces are on the console above) boots the
  // guest once more; a second lockup, or any other failure, fails the run.
  for (let attempt = 1; ; attempt++) {
    try {
      g = await runGuestSuite({ echo: true });
    } catch (err) {
      console.log(`cgroup v2 guest: could not run: ${err.message}`);
      return { passed: 0, failed: 1, skipped: [] };
    }
    console.log(`== cgroup v2 guest: ${g.outcome} after ${(g.ms / 1000).toFixed(0)} s ==`);
    if (g.report || !g.lockup || attempt === 2) break;
    console.log(`== cgroup v2 guest: its kernel locked up (${g.panic}; console kept in ${g.consoleFile}): booting it once more ==`);
  }
  if (!g.report) {
    const tail = g.consoleTail.trim() || '(empty: the guest printed nothing; with loglevel=5 the kernel is quiet until a warning)';
    console.log(`cgroup v2 guest FAILED: ${g.failure}. The console's last lines (all of it in ${g.consoleFile}):\n${tail}`);
    return { passed: 0, failed: 1, skipped: [] };
  }
  rmSync(g.resultsDir, { recursive: true, force: true });
  const c = counts(g.report, `${GUEST_PREFIX} `);
  for (const file of g.report.testResults ?? []) {
    for (const a of file.assertionResults ?? []) {
      if (a.status === 'failed') console.log(`FAILED ${GUEST_PREFIX} ${relative(process.cwd(), file.name)} > ${[...(a.ancestorTitles ?? []), a.title].join(' > ')}`);
    }
    if (file.status === 'failed' && !file.assertionResults?.some((a) => a.status === 'failed')) console.log(`FAILED ${GUEST_PREFIX} ${relative(process.cwd(), file.name)}: ${file.message}`);
  }
  return c;
}

/** Every skipped test in vitest's JSON report, with the reason its title carries, or null. */
function skippedTests(r, prefix) {
  const out = [];
  for (const file of r.testResults ?? []) {
    for (const a of file.assertionResults ?? []) {
      if (a.status === 'passed' || a.status === 'failed') continue;
      const titles = [...(a.ancestorTitles ?? []), a.title];
      const m = /\[skipped: (.*?)\]/.exec(titles.join(' '));
      const name = titles.map((t) => t.replace(/\s*\[skipped: .*?\]/g, '')).join(' > ');
      out.push({ file: relative(process.cwd(), file.name), name: `${prefix}${name}`, reason: m ? m[1] : null });
    }
  }
  return out;
}
