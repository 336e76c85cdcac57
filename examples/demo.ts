// The README's demo: a renderer runs an untrusted step on a table of sales, by zygote fork
// (sandboxed) and by cold `node` start, and times both; then a hostile step, to show what the
// renderer gets back when a step misbehaves.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeStepRequest, readArrowOutput, runStep, startZygote, stepRunner, talkToStep, writeArrowFile, type Table } from 'zygote';
import { COLD_MAIN, encodeColdJob } from 'zygote/cold';
import { salesTable } from './sales-data.js';

const STEP = fileURLToPath(new URL('../../examples/steps/sales-summary.mjs', import.meta.url));
const HOSTILE = fileURLToPath(new URL('../../examples/steps/hostile.mjs', import.meta.url));
const ROWS = 300_000;
const PARAMS = { minUnits: 5 };
const RUNS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The same step, protocol and validation, but in a fresh `node` with no sandbox: the baseline. */
async function runCold(input: Table): Promise<Table> {
  const dir = mkdtempSync(join(tmpdir(), 'zygote-demo-cold-'));
  try {
    mkdirSync(join(dir, 'out'));
    writeArrowFile(join(dir, 'input.arrow'), input);
    const cp = spawn(process.execPath, [COLD_MAIN, encodeColdJob({ main: stepRunner.href, preload: ['apache-arrow'], args: [] })], { env: { LC_ALL: 'C.UTF-8' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<{ code: number | null }>((resolve) => cp.once('close', (code) => resolve({ code })));
    const io = { stdin: cp.stdin!, stdout: cp.stdout!, stderr: cp.stderr!, exited, kill: () => void cp.kill('SIGKILL') };
    const request = encodeStepRequest({ module: STEP, params: PARAMS, inputPath: join(dir, 'input.arrow'), outputPath: join(dir, 'out', 'output.arrow') });
    const x = await talkToStep(io, request, { resultTimeoutMs: 60_000, stderrBytes: 64 * 1024 });
    if (!x.result?.ok || x.exit.code !== 0) throw new Error(`cold step failed: ${x.protocolError?.message ?? (x.result && !x.result.ok ? x.result.message : `exit ${x.exit.code}`)}\n${x.stderr.text}`);
    const out = readArrowOutput(join(dir, 'out'), 'output.arrow', { maxBytes: 1 << 30, maxColumns: 1000, maxRows: 10_000_000 });
    return out.table;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`zygote demo: examples/steps/sales-summary.mjs on ${ROWS.toLocaleString('en')} rows of sales, ${RUNS} runs each way\n`);
const input = salesTable(ROWS);

const t0 = performance.now();
const z = await startZygote({ main: stepRunner, preload: ['apache-arrow'], env: { LC_ALL: 'C.UTF-8' } });
console.log(`zygote warm in ${(performance.now() - t0).toFixed(0)} ms (pid ${z.pid}, preloaded apache-arrow)`);

const forkMs: number[] = [];
let forked: Table | undefined;
let stepLog = '';
for (let i = 0; i < RUNS; i++) {
  const t = performance.now();
  const out = await runStep(z, { module: STEP, input, params: PARAMS, limits: { wallTimeMs: 30_000 } });
  forkMs.push(performance.now() - t);
  if (!out.ok) throw new Error(`step failed (${out.error.kind}): ${out.error.message}\n${out.stderr.text}`);
  forked = out.table;
  stepLog = out.stderr.text.trim();
}

const coldMs: number[] = [];
let cold: Table | undefined;
for (let i = 0; i < RUNS; i++) {
  const t = performance.now();
  cold = await runCold(input);
  coldMs.push(performance.now() - t);
}
const rows = (t: Table) => JSON.stringify(t.toArray().map((r) => r.toJSON()));
if (rows(forked!) !== rows(cold!)) throw new Error('the zygote and the cold run disagree on the result');

console.log(`\nthe step said (on its stderr): ${stepLog}`);
console.log(`result: ${forked!.numRows} rows, columns ${forked!.schema.fields.map((f) => `${f.name}: ${f.type}`).join(', ')}`);
console.table(forked!.toArray().map((r) => r.toJSON()));
console.log(`\nrequest -> validated output table, median of ${RUNS} runs (input written, child run, output mapped and checked):`);
console.table({
  'zygote fork (sandboxed)': { 'median ms': +median(forkMs).toFixed(1), 'all runs ms': forkMs.map((m) => +m.toFixed(1)).join(' ') },
  'cold node start (no sandbox)': { 'median ms': +median(coldMs).toFixed(1), 'all runs ms': coldMs.map((m) => +m.toFixed(1)).join(' ') },
});
console.log(`cold / zygote: ${(median(coldMs) / median(forkMs)).toFixed(1)}x`);

console.log('\na hostile step: tries to read /etc/shadow, SSH keys, the init\'s environment and cloud credentials, then loops forever (wall-time limit 2 s):');
const t = performance.now();
const bad = await runStep(z, { module: HOSTILE, input, limits: { wallTimeMs: 2_000 } });
console.log(bad.stderr.text.trim().replace(/^/gm, '  step: '));
console.log(bad.ok ? '  outcome: ok (!)' : `  outcome: ${bad.error.kind}: ${bad.error.message} (after ${(performance.now() - t).toFixed(0)} ms)`);
await z.close();
if (bad.ok || bad.error.kind !== 'timeout') process.exitCode = 1;
