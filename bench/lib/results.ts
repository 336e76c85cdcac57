// Writing a run's raw numbers to bench/results/<kind>-<ISO timestamp>.json (gitignored).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESULTS_DIR } from './paths.js';

/** Writes data as pretty JSON and returns the file's path. */
export function writeResults(kind: string, startedAt: Date, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  // ISO 8601 with ':' swapped for '-', so the name is valid on every file system.
  const path = join(RESULTS_DIR, `${kind}-${startedAt.toISOString().replaceAll(':', '-')}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}

/**
 * The end of a pass/fail run (stress, soak): its results written, a `summary: FILE` line, then
 * PASSED, or FAILED with each problem on stderr and exit code 1.
 */
export function reportVerdict(kind: string, startedAt: Date, report: { problems: string[] }): void {
  const file = writeResults(kind, startedAt, { kind, startedAt: startedAt.toISOString(), node: process.version, ...report });
  console.log(`\nsummary: ${file}`);
  if (report.problems.length > 0) {
    console.error(`\nFAILED:\n${report.problems.map((p) => `  - ${p}`).join('\n')}`);
    process.exitCode = 1;
  } else {
    console.log('\nPASSED');
  }
}

/** A progress line on stderr (`  PHASE: DONE/TOTAL (S s)`) each time a phase enters a new tenth. */
export function progressPrinter(): (phase: string, done: number, total: number) => void {
  const t0 = performance.now();
  let shown = '';
  return (phase, done, total) => {
    const tenth = Math.floor((done * 10) / total);
    if (`${phase} ${tenth}` === shown) return;
    shown = `${phase} ${tenth}`;
    process.stderr.write(`  ${phase}: ${done}/${total} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  };
}
