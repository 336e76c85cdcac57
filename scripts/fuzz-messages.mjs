#!/usr/bin/env node
// The long run of the step message fuzzer (test/fixtures/fuzz-messages-worker.mjs; `npm test`
// runs 2,000 cases of it): random, mutated and valid frames through decodeMessage and the step
// validators, and some through readMessage over a stream. Prints the count of each outcome and
// exits 1 on any failure or on a case that hangs (the worker stops making progress for 10 s).
//
//   npm run fuzz:messages                         # 1,000,000 cases and 20,000 stream reads
//   npm run fuzz:messages -- --runs 100000 --stream-runs 0 --seed 7
//   npm run fuzz:messages -- --seconds 600        # as many cases as fit in 10 minutes
//
// Needs the build (`npm run build:ts`): it fuzzes dist/.
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000000' },
    'stream-runs': { type: 'string', default: '20000' },
    seconds: { type: 'string' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
  },
});
const runs = values.seconds ? Number.MAX_SAFE_INTEGER : Number(values.runs);
const streamRuns = Number(values['stream-runs']);
const seconds = values.seconds ? Number(values.seconds) : undefined;
const seed = Number(values.seed);
for (const [name, v] of [['runs', runs], ['stream-runs', streamRuns], ['seed', seed], ['seconds', seconds ?? 1]]) {
  if (!Number.isInteger(v) || v < 0) {
    console.error(`fuzz-messages: --${name} must be a non-negative integer`);
    process.exit(2);
  }
}

const progress = new SharedArrayBuffer(8 + 65536);
const counter = new Int32Array(progress, 0, 1);
console.log(`fuzz-messages: seed ${seed}, ${seconds ? `${seconds} s` : `${runs} cases`}, then ${streamRuns} stream reads`);
const worker = new Worker(new URL('../test/fixtures/fuzz-messages-worker.mjs', import.meta.url), { workerData: { runs, seconds, seed, streamRuns, progress } });

let last = -1;
let stuckSince = Date.now();
const started = Date.now();
const watchdog = setInterval(() => {
  const now = Atomics.load(counter, 0);
  if (now !== last) {
    if (Math.floor(now / 100_000) !== Math.floor(last / 100_000)) console.log(`  ${now} cases, ${((Date.now() - started) / 1000).toFixed(0)} s`);
    last = now;
    stuckSince = Date.now();
  } else if (Date.now() - stuckSince > 10_000 && now < runs) {
    const len = new Int32Array(progress, 4, 1)[0];
    const bytes = Buffer.from(new Uint8Array(progress, 8, Math.min(len, 65536)));
    console.error(`fuzz-messages: no progress for 10 s on case ${now} (a hang?): ${bytes.toString('hex')}`);
    process.exit(1);
  }
}, 250);

worker.once('error', (err) => {
  console.error('fuzz-messages: the worker failed:', err);
  process.exit(1);
});
worker.once('message', (r) => {
  clearInterval(watchdog);
  console.log(`fuzz-messages: ${r.cases} frames (each decoded as a StepResult and a StepRequest) and ${r.streamCases} stream reads in ${(r.ms / 1000).toFixed(1)} s`);
  console.log(`  slowest decode ${r.slowestMs.toFixed(2)} ms; largest Buffer allocated ${r.largestAlloc} bytes (maxBytes 4096)`);
  for (const [k, n] of Object.entries(r.tally).sort()) console.log(`  ${k.padEnd(28)} ${n}`);
  if (r.failures.length) {
    console.error(`fuzz-messages: ${r.failures.length} failures (first 20):`);
    for (const f of r.failures) console.error(`  ${f.what}\n    ${f.hex}`);
    process.exit(1);
  }
  console.log('fuzz-messages: no failures');
  process.exit(0);
});
