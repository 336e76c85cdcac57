// `zygote run STEP.js --input FILE [--param k=v]... [--output FILE]`: runs one step the way a
// renderer would (an embedded zygote, the full sandbox, runStep), and prints a preview of the
// output table and the timings.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { tableToIPC, type Field, type Table } from 'apache-arrow';
import { Command, InvalidArgumentError } from 'commander';
import { startZygote } from '../client/index.js';
import type { StepParams } from '../protocol/step.js';
import { csvToTable } from './csv.js';
import { runStep, stepRunner } from './run-step.js';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('Run one step on a table in a sandboxed child of a fresh zygote, and preview its output.')
    .argument('<step>', 'the step module: its default export takes (table, params) and returns an apache-arrow Table')
    .requiredOption('--input <file>', 'the input table: an Arrow IPC file (.arrow) or CSV with a header row (.csv)')
    .option('--param <k=v>', 'a parameter (repeatable); v is parsed as JSON when it is JSON, else taken as text', collectParam, {})
    .option('--output <file>', 'write the output table here (Arrow IPC file)')
    .option('--rows <n>', 'rows to preview', parseCount, 10)
    .option('--timeout <ms>', 'wall-time limit of the step', parseCount, 60_000)
    .option('--memory <bytes>', 'memory limit of the step (a cgroup of its own)', parseCount)
    .option('--preload <module>', 'a package the step may import, loaded by the zygote (repeatable; apache-arrow always is)', (m: string, acc: string[]) => [...acc, m], [] as string[])
    .action(async (step: string, opts: RunOptions) => {
      process.exitCode = await run(resolve(step), opts);
    });
}

interface RunOptions {
  input: string;
  param: StepParams;
  output?: string;
  rows: number;
  timeout: number;
  memory?: number;
  preload: string[];
}

async function run(step: string, opts: RunOptions): Promise<number> {
  const input: Table | string = opts.input.endsWith('.csv') ? csvToTable(readFileSync(opts.input, 'utf8')) : resolve(opts.input);
  const t0 = performance.now();
  // A step sees only the modules its zygote loaded.
  const z = await startZygote({ main: stepRunner, preload: [...new Set(['apache-arrow', ...opts.preload])], env: { LC_ALL: 'C.UTF-8' } });
  const warm = performance.now() - t0;
  try {
    const t1 = performance.now();
    const out = await runStep(z, { module: step, input, params: opts.param, limits: { wallTimeMs: opts.timeout, ...(opts.memory ? { memoryBytes: opts.memory } : {}) } });
    const ms = performance.now() - t1;
    if (out.stderr.text) process.stderr.write(`--- step stderr${out.stderr.truncated ? ` (first ${out.stderr.text.length} of ${out.stderr.bytes} bytes)` : ''} ---\n${out.stderr.text}${out.stderr.text.endsWith('\n') ? '' : '\n'}---\n`);
    if (!out.ok) {
      console.error(`step failed (${out.error.kind}): ${out.error.message}`);
      console.error(`zygote warm in ${warm.toFixed(0)} ms; step ${ms.toFixed(1)} ms`);
      return 1;
    }
    console.log(`schema: ${out.table.schema.fields.map((f: Field) => `${f.name}: ${f.type}`).join(', ')}`);
    console.log(`${out.table.numRows} rows, ${out.table.numCols} columns; first ${Math.min(opts.rows, out.table.numRows)}:`);
    console.table(out.table.slice(0, opts.rows).toArray().map((r: { toJSON(): unknown }) => r.toJSON()));
    if (opts.output) writeFileSync(opts.output, tableToIPC(out.table, 'file'), { flag: 'wx', mode: 0o644 });
    console.log(`zygote warm in ${warm.toFixed(0)} ms; step ${ms.toFixed(1)} ms (request to validated output)`);
    out.release();
    return 0;
  } finally {
    await z.close();
  }
}

function collectParam(kv: string, acc: StepParams): StepParams {
  const at = kv.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`expected k=v, got ${JSON.stringify(kv)}`);
  const raw = kv.slice(at + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // Plain text.
  }
  return { ...acc, [kv.slice(0, at)]: value as StepParams[string] };
}

function parseCount(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(v)}`);
  return n;
}
