// The README's demo: the same Arrow step run by zygote forks and by cold `node` starts, timed side by side.
import { spawn } from 'node:child_process';
import { startZygote } from '../client/index.js';
import { COLD_MAIN, encodeColdJob } from '../zygote/cold.js';

const STEP = new URL('../../examples/steps/sales-summary.mjs', import.meta.url);
const PRELOAD = ['apache-arrow'];
const ARGS = [200_000, 42];
const RUNS = 5;

/** Runs fn RUNS times; returns each run's output and wall time in ms. */
async function time(fn: () => Promise<string>): Promise<{ out: string; ms: number[] }> {
  const ms: number[] = [];
  let out = '';
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    out = await fn();
    ms.push(performance.now() - t0);
  }
  return { out, ms };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    stream.on('data', (d) => (out += d));
    stream.on('end', () => resolve(out));
    stream.on('error', reject);
  });
}

console.log(`zygote demo: ${STEP.pathname.split('/').pop()} on ${ARGS[0].toLocaleString('en')} rows of sales, ${RUNS} runs each\n`);

const t0 = performance.now();
const z = await startZygote({ main: STEP, preload: PRELOAD, env: { LC_ALL: 'C.UTF-8' } });
console.log(`zygote warm in ${(performance.now() - t0).toFixed(0)} ms (pid ${z.pid}, preloaded ${PRELOAD.join(', ')})`);

const forked = await time(async () => {
  const child = await z.spawn({ args: ARGS, name: 'sales-summary' });
  const [out, err, st] = await Promise.all([readAll(child.stdout), readAll(child.stderr), child.exited]);
  if (st.code !== 0) throw new Error(`step failed (${st.reason} ${st.code ?? st.signal}): ${err}`);
  return out;
});
await z.close();

const cold = await time(async () => {
  const child = spawn(process.execPath, [COLD_MAIN, encodeColdJob({ main: STEP.href, preload: PRELOAD, args: ARGS })], {
    env: { LC_ALL: 'C.UTF-8' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const [out, err, code] = await Promise.all([readAll(child.stdout!), readAll(child.stderr!), exit]);
  if (code !== 0) throw new Error(`cold step failed (${code}): ${err}`);
  return out;
});

if (forked.out !== cold.out) throw new Error('the zygote and the cold run disagree on the result');
const summary = JSON.parse(forked.out) as { rows: number; byRegion: { region: string; orders: number; units: number; revenue: number }[] };
console.log('\nresult (orders of 5+ units, by region):');
console.table(summary.byRegion);

const zm = median(forked.ms);
const cm = median(cold.ms);
console.log('\nrequest → step finished, median of %d runs:', RUNS);
console.table({
  'zygote fork': { 'median ms': +zm.toFixed(1), 'all runs ms': forked.ms.map((m) => +m.toFixed(1)).join(' ') },
  'cold node start': { 'median ms': +cm.toFixed(1), 'all runs ms': cold.ms.map((m) => +m.toFixed(1)).join(' ') },
});
console.log(`cold / zygote: ${(cm / zm).toFixed(1)}x`);
