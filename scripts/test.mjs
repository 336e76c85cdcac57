#!/usr/bin/env node
// The README's test command: build, type-check the tests, run vitest, list every skipped test with
// its reason, and end with the plain summary line "N passed, N failed, N skipped" that CI reads.
// Exits with vitest's status (1 also for a skip that gives no reason).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

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
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests;
  // A file that fails outside any test (an import error, a failing hook) counts once.
  const brokenFiles = (r.testResults ?? []).filter((t) => t.status === 'failed' && !t.assertionResults?.some((a) => a.status === 'failed')).length;
  failed = r.numFailedTests + brokenFiles;
  skipped = skippedTests(r);
} catch {
  failed = Math.max(1, failed);
}
rmSync(dir, { recursive: true, force: true });

// A test is skipped only where a host probe said its facility is absent, and says why in its
// title (test/helpers/host.ts). A skip without a reason (a stray it.skip) fails the run.
const unexplained = skipped.filter((t) => t.reason === null);
if (skipped.length > 0) {
  console.log(`\nSkipped on this host (${skipped.length}):`);
  for (const t of skipped) console.log(`  ${t.file} > ${t.name}\n      ${t.reason ?? 'NO REASON GIVEN: a skip must name the missing facility (test/helpers/host.ts)'}`);
}
failed += unexplained.length;
if (run.status !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed, ${skipped.length} skipped`);
process.exit(unexplained.length > 0 ? 1 : (run.status ?? 1));

/** Every skipped test in vitest's JSON report, with the reason its title carries, or null. */
function skippedTests(r) {
  const out = [];
  for (const file of r.testResults ?? []) {
    for (const a of file.assertionResults ?? []) {
      if (a.status === 'passed' || a.status === 'failed') continue;
      const titles = [...(a.ancestorTitles ?? []), a.title];
      const m = /\[skipped: (.*?)\]/.exec(titles.join(' '));
      const name = titles.map((t) => t.replace(/\s*\[skipped: .*?\]/g, '')).join(' > ');
      out.push({ file: relative(process.cwd(), file.name), name, reason: m ? m[1] : null });
    }
  }
  return out;
}
