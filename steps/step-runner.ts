// The step runner: the main of a zygote that runs user steps (exported as `stepRunner`). In
// each child, after every sandbox layer is in place, it reads one StepRequest from stdin, maps
// the input table, imports the user's module, calls its default export
// `(table, params, { files }) => Table | Promise<Table>`, writes the returned table as an Arrow IPC file at
// the output path, and writes one StepResult on stdout. stdout belongs to the protocol: the
// step's console.log and process.stdout go to stderr.
import { Console } from 'node:console';
import { closeSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Table, tableFromArrays, tableToIPC } from 'apache-arrow';
import { mapArrowFile, writeArrowFd, writeArrowFile } from './arrow-file.js';
import { native } from '../native/index.js';
import { pauseOptimizer, resumeOptimizer } from '../native/optimizer.js';
import { readToEndSync, writeAllSync } from './step-io.js';
import { decodeMessage, encodeMessage } from '../protocol/messages.js';
import { decodeStepRequest, encodeStepRequest, MAX_STEP_REQUEST_BYTES, StepRequestMessage, stepResultError, stepResultOk, type DecodedStepRequest } from '../protocol/step.js';
import type { ThriftStruct } from '../protocol/framing.js';
import { InvalidOptionError } from '../protocol/errors.js';

/** How long the renderer may take to send the request, and to read the result. */
const REQUEST_TIMEOUT_MS = 10_000;
const RESULT_TIMEOUT_MS = 10_000;

// Warm up in the zygote, before any fork: one whole step's path but the user's code, so every
// child runs code the zygote compiled, in the heap it shares, instead of compiling it again.
await warmUp();

export default async function stepRunner(): Promise<void> {
  // The runner's own work is one-shot: no optimizing compiles but for the step's code.
  pauseOptimizer();
  stepOutputToStderr();
  let request;
  try {
    request = readRequest(0);
  } catch (err) {
    writeResult(stepResultError(`the step runner got a bad request: ${(err as Error).message}`));
    process.exitCode = 2;
    return;
  }
  try {
    const input = request.inputPath ? mapArrowFile(request.inputPath).table : null;
    // Resolved while paused (the resolver is what the zygote left hot), evaluated with the
    // compiler on: a module's top level is the step's code too.
    const url = import.meta.resolve(pathToFileURL(request.module).href);
    resumeOptimizer();
    const mod = (await import(url)) as { default?: unknown };
    if (typeof mod.default !== 'function') throw new InvalidOptionError(`the step module ${request.module} must have a function as its default export, found ${typeof mod.default}`);
    // The extra files, by name, where the step can read them (beside its input, in /input).
    const files = Object.fromEntries(request.files.map((name) => [name, `/input/${name}`]));
    const output: unknown = await (mod.default as (t: Table | null, p: unknown, c: { files: Record<string, string> }) => unknown)(input, request.params, { files });
    pauseOptimizer();
    if (!(output instanceof Table)) throw new InvalidOptionError(`the step returned ${describe(output)}, not an apache-arrow Table (import it from 'apache-arrow')`);
    writeArrowFile(request.outputPath, output);
    writeResult(stepResultOk({ rows: output.numRows, columns: output.numCols }));
  } catch (err) {
    writeResult(stepResultError(err instanceof Error ? (err.stack ?? err.message) + hint(err) : `non-Error thrown: ${String(err)}`));
    process.exitCode = 1;
  }
}

/** The one request on fd (its stdin): read to its end, one frame and nothing after it. */
function readRequest(fd: number): DecodedStepRequest {
  const bytes = readToEndSync(fd, MAX_STEP_REQUEST_BYTES + 4, REQUEST_TIMEOUT_MS);
  return decodeStepRequest(decodeMessage(bytes, StepRequestMessage, { maxBytes: MAX_STEP_REQUEST_BYTES, typeName: 'StepRequest', expectEnd: true }));
}

/** The one result, on fd 1 (the protocol's: the step's own output goes to stderr). */
function writeResult(result: ThriftStruct): void {
  writeAllSync(1, encodeMessage(result), RESULT_TIMEOUT_MS);
}

/**
 * The step runner's path once, in the zygote: a request encoded and decoded, a step module
 * imported, a table written as an Arrow file, mapped and validated, a result encoded. In a scratch directory removed after.
 */
async function warmUp(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'zygote-warm-'));
  try {
    // A step module imported as a child imports one: the ESM loader's resolve, load, compile and
    // evaluate paths run first in a child otherwise (milliseconds of compiling and faults).
    const step = join(dir, 'step.mjs');
    writeFileSync(step, 'export default function step(table) { return table; }\n');
    const mod = (await import(pathToFileURL(step).href)) as { default: (t: Table) => Table };
    const path = join(dir, 'input.arrow');
    const frame = encodeMessage(encodeStepRequest({ module: '/step/step.mjs', params: { label: 'warm', n: 1 }, inputPath: path, outputPath: join(dir, 'output.arrow'), files: [] }));
    const request = decodeStepRequest(decodeMessage(frame, StepRequestMessage, { maxBytes: MAX_STEP_REQUEST_BYTES, typeName: 'StepRequest', expectEnd: true }));
    writeArrowFile(request.inputPath!, tableFromArrays({ x: Float64Array.of(1, 2), label: ['a', 'b'] }));
    const mapped = mapArrowFile(request.inputPath!);
    const doubled = mod.default(tableFromArrays({ x: Float64Array.from(mapped.table.getChild('x')!.toArray(), (v) => Number(v) * 2) }));
    writeArrowFile(request.outputPath, doubled);
    encodeMessage(stepResultOk({ rows: doubled.numRows, columns: doubled.numCols }));
    mapped.unmap();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A child's path once more, in a learner pool child of the zygote (zygote/prefault.ts): the
 * pages it writes are the ones later pool children copy before their claim. No file of its own
 * exists there yet: the input is a sealed memfd mapped through /proc/self/fd, the step a data:
 * module, the output goes to its stdout (/dev/null before any claim).
 */
export async function rehearse(): Promise<void> {
  const frame = encodeMessage(encodeStepRequest({ module: '/step/step.mjs', params: { label: 'rehearsal', n: 1 }, inputPath: '/input/input.arrow', outputPath: '/output/output.arrow', files: [] }));
  decodeStepRequest(decodeMessage(frame, StepRequestMessage, { maxBytes: MAX_STEP_REQUEST_BYTES, typeName: 'StepRequest', expectEnd: true }));
  const fd = native.sealedDataFd(Buffer.from(tableToIPC(tableFromArrays({ x: Float64Array.of(1, 2, 3), label: ['a', 'b', 'c'] }), 'file')), false);
  const mapped = mapArrowFile(`/proc/self/fd/${fd}`);
  try {
    const step = 'data:text/javascript,export default (t) => t';
    const mod = (await import(step)) as { default: (t: Table) => Table };
    const output = mod.default(tableFromArrays({ x: Float64Array.from(mapped.table.getChild('x')!.toArray(), (v) => Number(v) * 2) }));
    writeArrowFd(1, output);
    encodeMessage(stepResultOk({ rows: output.numRows, columns: output.numCols }));
  } finally {
    mapped.unmap();
    closeSync(fd);
  }
}

/** What to do about a module the sandbox does not show: only what the zygote loaded is there. */
function hint(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return '';
  return '\n(a step sees only the modules its zygote loaded before forking: preload the package, e.g. startZygote({ preload: [...] }) or `zygote serve --preload`, or bundle the step into one file)';
}

/**
 * Points everything a step would print with (process.stdout, console) at stderr, made only
 * when the step first prints: fd 1 is the protocol's, written by writeResult alone.
 */
function stepOutputToStderr(): void {
  Object.defineProperty(process, 'stdout', { get: () => process.stderr, configurable: true, enumerable: true });
  let console: Console | undefined;
  Object.defineProperty(globalThis, 'console', {
    get: () => (console ??= new Console({ stdout: process.stderr, stderr: process.stderr })),
    set: (c: Console) => (console = c),
    configurable: true,
    enumerable: false,
  });
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'no constructor'})`;
  return `a ${typeof v}`;
}
