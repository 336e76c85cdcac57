// npm run bench:run-step: runStep's round trip on a 10-row table (spawn, input file, step,
// result, output validated, cleanup), p50 over BENCH_RUN_STEP_RUNS runs (default 100) after a
// few warm-up runs. What runStep itself costs around the step, not the step's work.
import { fileURLToPath } from 'node:url';
import { tableFromArrays } from 'apache-arrow';
import { runStep, startZygote, stepRunner } from 'zygote';
import { fixtureUrl } from './lib/paths.js';
import { summarize } from './lib/stats.js';

const STEP = fileURLToPath(fixtureUrl('steps/double.mjs'));
const RUNS = Number(process.env.BENCH_RUN_STEP_RUNS ?? 100);
const WARMUP = 5;

const z = await startZygote({ main: stepRunner, preload: ['apache-arrow'] });
try {
  const input = tableFromArrays({ x: Float64Array.from({ length: 10 }, (_, i) => i) });
  const ms: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const t0 = performance.now();
    const out = await runStep(z, { module: STEP, input, params: { label: 'bench' } });
    const t = performance.now() - t0;
    if (!out.ok) throw new Error(`run ${i}: ${out.error.kind}: ${out.error.message}`);
    out.release();
    if (i >= WARMUP) ms.push(t);
  }
  const s = summarize(ms);
  console.log(JSON.stringify({ runs: s.n, p50: +s.p50.toFixed(2), p90: +s.p90.toFixed(2), min: +s.min.toFixed(2), mean: +s.mean.toFixed(2) }));
} finally {
  await z.close();
}
