// `zygote run STEP.js --input FILE [--param k=v]... [--output FILE]`: runs one step the way a
// renderer would (an embedded zygote, the full sandbox, runStep), and prints a preview of the
// output table and the timings.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { tableToIPC, type Field, type Table } from 'apache-arrow';
import { Command, InvalidArgumentError } from 'commander';
import { startZygote } from '../client/index.js';
import { DEFAULT_LIMITS, parseLimitArg, type Limits } from '../protocol/limits.js';
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
    .option('--timeout <ms|none>', `wall-time limit of the step (default ${DEFAULT_LIMITS.wallTimeMs})`, limitArg(false, true))
    .option('--memory <bytes|none>', `memory limit of the step, in a cgroup of its own; a K, M or G suffix for KiB... (default ${DEFAULT_LIMITS.memoryBytes! / 2 ** 20}M)`, limitArg(true, true))
    .option('--pids <n|none>', `most threads and processes of the step (default ${DEFAULT_LIMITS.pids})`, limitArg(false, true))
    .option('--tmp-bytes <bytes>', `size of the step's /tmp (default ${DEFAULT_LIMITS.tmpBytes / 2 ** 20}M)`, limitArg(true, false))
    .option('--preload <module>', 'a package the step may import, loaded by the zygote (repeatable; apache-arrow always is)', (m: string, acc: string[]) => [...acc, m], [] as string[])
    .addHelpText('after', '\nLimits left out are the defaults every child gets (README, "Limits and defaults"); none lifts one.')
    .action(async (step: string, opts: RunOptions) => {
      process.exitCode = await run(resolve(step), opts);
    });
}

interface RunOptions {
  input: string;
  param: StepParams;
  output?: string;
  rows: number;
  /** Limits as given ('none': no limit; not null, which commander turns into ''); left out, the defaults. */
  timeout?: number | 'none';
  memory?: number | 'none';
  pids?: number | 'none';
  tmpBytes?: number;
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
    const orNull = (v: number | 'none') => (v === 'none' ? null : v);
    const limits: Limits = {
      ...(opts.timeout !== undefined && { wallTimeMs: orNull(opts.timeout) }),
      ...(opts.memory !== undefined && { memoryBytes: orNull(opts.memory) }),
      ...(opts.pids !== undefined && { pids: orNull(opts.pids) }),
      ...(opts.tmpBytes !== undefined && { tmpBytes: opts.tmpBytes }),
    };
    const out = await runStep(z, { module: step, input, params: opts.param, limits });
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

/** A commander parser for a limit: a count or a size (K, M, G, T suffixes), or "none" where allowed. */
function limitArg(bytes: boolean, allowNone: boolean): (v: string) => number | 'none' {
  return (v) => {
    try {
      return parseLimitArg(v, { bytes, allowNone }) ?? 'none';
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

function parseCount(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(v)}`);
  return n;
}
