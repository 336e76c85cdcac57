// `zygote run STEP.js --input FILE [--param k=v]... [--output FILE]`: runs one step the way a
// renderer would (an embedded zygote, the full sandbox, runStep), and prints a preview of the
// output table and the timings.
import { accessSync, constants, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { tableToIPC, type Field, type Table } from 'apache-arrow';
import { Command, InvalidArgumentError } from 'commander';
import { startZygote, ZygoteStartError } from '../client/index.js';
import { DEFAULT_LIMITS, parseLimitArg, type Limits } from '../protocol/limits.js';
import type { StepParams } from '../protocol/step.js';
import { csvFileToTable } from './csv.js';
import { runStep, stepRunner } from './run-step.js';
import { DEFAULT_ARROW_CAPS, validateArrowFile } from './arrow-file.js';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('Run one step on a table in a sandboxed child of a fresh zygote, and preview its output.')
    .argument('<step>', 'the step module: its default export takes (table, params) and returns an apache-arrow Table')
    .requiredOption('--input <file>', 'the input table: an Arrow IPC file (.arrow) or CSV with a header row (.csv)')
    .option('--param <k=v>', 'a parameter (repeatable); v is parsed as JSON when it is JSON, else taken as text', collectParam, {})
    .option('--output <file>', 'write the output table here (Arrow IPC file); an existing file is refused before the step runs')
    .option('--force', 'overwrite --output if it exists')
    .option('--rows <n>', 'rows to preview', parseCount, 10)
    .option('--timeout <ms|none>', `wall-time limit of the step (default ${DEFAULT_LIMITS.wallTimeMs})`, limitArg(false, true))
    .option('--memory <bytes|none>', `memory limit of the step, in a cgroup of its own; a K, M or G suffix for KiB... (default ${DEFAULT_LIMITS.memoryBytes! / 2 ** 20}M)`, limitArg(true, true))
    .option('--pids <n|none>', `most threads and processes of the step (default ${DEFAULT_LIMITS.pids})`, limitArg(false, true))
    .option('--tmp-bytes <bytes>', `size of the step's /tmp (default ${DEFAULT_LIMITS.tmpBytes / 2 ** 20}M)`, limitArg(true, false))
    .option('--preload <module>', 'a package the step may import, loaded by the zygote (repeatable; apache-arrow always is)', (m: string, acc: string[]) => [...acc, m], [] as string[])
    .addHelpText('after', '\nLimits left out are the defaults every child gets (README, "Limits and defaults"); none lifts one.')
    .addHelpText('after', 'Exit status: 0 the step succeeded; 1 it failed (the kind and message are printed); 2 the command was wrong (a missing step, an unreadable or malformed input, an existing --output), found before anything runs.')
    .action(async (step: string, opts: RunOptions) => {
      let input: Table | string;
      try {
        input = await checkArguments(resolve(step), opts);
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        console.error(`zygote run: ${err.message}`);
        process.exitCode = 2;
        return;
      }
      try {
        process.exitCode = await run(resolve(step), input, opts);
      } catch (err) {
        // The zygote could not start (a host without the sandbox's privileges, an unsupported
        // Node.js): one line that says why, as for the command's own mistakes, not a stack trace.
        if (!(err instanceof ZygoteStartError)) throw err;
        console.error(`zygote run: ${err.message}`);
        process.exitCode = 1;
      }
    });
}

/** A mistake in the command line or its files, reported in one line with exit status 2. */
class UsageError extends Error {}

/**
 * Everything that can be checked before a zygote starts: the step is a readable file, the input
 * a readable .arrow (validated in full) or .csv (parsed), the output free unless --force.
 * Returns the input as runStep takes it.
 */
async function checkArguments(step: string, opts: RunOptions): Promise<Table | string> {
  const readable = (path: string, what: string) => {
    try {
      accessSync(path, constants.R_OK);
      if (!statSync(path).isFile()) throw new UsageError(`${what} ${path} is not a regular file`);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`${what} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  readable(step, 'the step');
  const input = resolve(opts.input);
  readable(input, '--input');
  let table: Table | string;
  if (input.endsWith('.csv')) {
    try {
      table = await csvFileToTable(input);
    } catch (err) {
      throw new UsageError(`--input ${input}: ${(err as Error).message}`);
    }
  } else if (input.endsWith('.arrow')) {
    try {
      validateArrowFile(readFileSync(input), DEFAULT_ARROW_CAPS, input);
    } catch (err) {
      throw new UsageError(`--input ${input}: ${(err as Error).message}`);
    }
    table = input;
  } else {
    throw new UsageError(`--input ${input}: expected an Arrow IPC file (.arrow) or a CSV file with a header row (.csv)`);
  }
  if (opts.output !== undefined && !opts.force && existsSync(opts.output)) throw new UsageError(`--output ${resolve(opts.output)} exists (--force overwrites it)`);
  return table;
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
  force?: boolean;
}

async function run(step: string, input: Table | string, opts: RunOptions): Promise<number> {
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
    if (opts.output) writeFileSync(opts.output, tableToIPC(out.table, 'file'), { flag: opts.force ? 'w' : 'wx', mode: 0o644 });
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
