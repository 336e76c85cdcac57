#!/usr/bin/env node
// The long run of the Arrow output validator's fuzzer (steps/arrow-file.ts; `npm test` runs
// 1,000 cases of it in test/steps/arrow-file.test.ts): valid Arrow files of every supported type,
// mutated (bit flips, 32- and 64-bit writes at the footer, blocks, field nodes, buffer entries
// and the first bytes of buffers, truncations, splices, insertions, deletions). Each must be
// accepted with every cell readable, or refused with an InvalidOutputError, within --ms-limit.
// Prints the count of each outcome; exits 1 on a failure (with fast-check's shrunk counterexample
// and seed) or when a case hangs (no progress for 10 s).
//
//   npm run fuzz:arrow                          # 100,000 cases
//   npm run fuzz:arrow -- --runs 1000000 --seed 7
//   npm run fuzz:arrow -- --seconds 600         # as many cases as fit in 10 minutes
//
// Needs the build (`npm run build:ts`): it fuzzes dist/.
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

if (isMainThread) {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '100000' },
      seconds: { type: 'string' },
      seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
      'ms-limit': { type: 'string', default: '250' },
    },
  });
  const opts = {
    runs: values.seconds ? Number.MAX_SAFE_INTEGER : Number(values.runs),
    seconds: values.seconds === undefined ? undefined : Number(values.seconds),
    seed: Number(values.seed),
    msLimit: Number(values['ms-limit']),
  };
  for (const [name, v] of Object.entries(opts)) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) {
      console.error(`fuzz-arrow: --${name} must be a non-negative integer`);
      process.exit(2);
    }
  }
  console.log(`fuzzing the Arrow validator: ${values.seconds ? `${opts.seconds} s` : `${opts.runs} cases`}, seed ${opts.seed}, at most ${opts.msLimit} ms a case`);
  const progress = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(new URL(import.meta.url), { workerData: { ...opts, progress } });
  const t0 = performance.now();
  let last = -1;
  let stalledSince = performance.now();
  const watchdog = setInterval(() => {
    const now = Atomics.load(progress, 0);
    if (now !== last) {
      last = now;
      stalledSince = performance.now();
    } else if (performance.now() - stalledSince > 10_000) {
      console.error(`HANG: no case finished for 10 s after ${now} cases (seed ${opts.seed}); rerun with that seed to find it`);
      process.exit(1);
    }
  }, 1000);
  worker.on('message', (report) => {
    clearInterval(watchdog);
    const s = (performance.now() - t0) / 1000;
    console.log(`${report.cases} cases in ${s.toFixed(1)} s (${(report.cases / s).toFixed(0)}/s), slowest ${report.maxMs.toFixed(1)} ms (${report.slowest})`);
    for (const [outcome, n] of Object.entries(report.outcomes).sort((a, b) => b[1] - a[1])) {
      console.log(`  ${outcome.padEnd(18)} ${String(n).padStart(8)}${report.examples[outcome] ? `  e.g. ${report.examples[outcome].replace(/^Arrow file refused: /, '').slice(0, 110)}` : ''}`);
    }
    console.log(`of the accepted: apache-arrow's tableFromIPC throws on ${report.arrowThrows}, reads different values from ${report.arrowDisagrees}`);
    for (const e of report.arrowErrors) console.log(`  apache-arrow threw: ${e}`);
    for (const d of report.disagreements) console.log(`  disagreement: [corpus index, mutations] ${d}`);
    console.log('no case threw anything but an InvalidOutputError');
    process.exitCode = report.arrowDisagrees > 0 ? 1 : 0;
  });
  worker.on('error', (err) => {
    clearInterval(watchdog);
    console.error(`FAILED (seed ${opts.seed}):`, err);
    process.exit(1);
  });
} else {
  const fc = await import('fast-check');
  const { InvalidOutputError, validateArrowFile } = await import('../dist/index.js');
  const { fuzzArrowValidator } = await import('../dist/test/fixtures/arrow-files.js');
  const { runs, seconds, seed, msLimit, progress } = workerData;
  const report = fuzzArrowValidator({
    fc,
    validate: validateArrowFile,
    InvalidOutputError,
    runs,
    seed,
    timeLimitMs: seconds === undefined ? undefined : seconds * 1000,
    msLimit,
    onCase: () => Atomics.add(progress, 0, 1),
  });
  parentPort.postMessage(report);
}
