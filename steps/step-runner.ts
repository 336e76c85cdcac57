// The step runner: the main of a zygote that runs user steps (exported as `stepRunner`). In
// each child, after every sandbox layer is in place, it reads one StepRequest from stdin, maps
// the input table, imports the user's module, calls its default export
// `(table, params, { files }) => Table | Promise<Table>`, writes the returned table as an Arrow IPC file at
// the output path, and writes one StepResult on stdout. stdout belongs to the protocol: the
// step's console.log and process.stdout go to stderr.
import { Console } from 'node:console';
import { pathToFileURL } from 'node:url';
import { Table, tableFromArrays, tableToIPC } from 'apache-arrow';
import { DEFAULT_ARROW_CAPS, mapArrowFile, validateArrowFile, writeArrowFile } from './arrow-file.js';
import { writeMessage } from '../protocol/messages.js';
import { readStepRequest, stepResultError, stepResultOk } from '../protocol/step.js';

// Warm up in the zygote, before any fork: run the Arrow decoder once on a tiny table so its
// code is compiled in the shared heap, not in every child (measured: a cold first decode in a
// child costs several ms more).
validateArrowFile(tableToIPC(tableFromArrays({ x: Float64Array.of(1) }), 'file'), DEFAULT_ARROW_CAPS);

/** How long the renderer may take to send the request. */
const REQUEST_TIMEOUT_MS = 10_000;

export default async function stepRunner(): Promise<void> {
  const protocol = takeStdout();
  let request;
  try {
    request = await readStepRequest(process.stdin, { timeoutMs: REQUEST_TIMEOUT_MS });
  } catch (err) {
    await writeMessage(protocol, stepResultError(`the step runner got a bad request: ${(err as Error).message}`));
    process.exitCode = 2;
    return;
  }
  try {
    const input = request.inputPath ? mapArrowFile(request.inputPath).table : null;
    const mod = (await import(pathToFileURL(request.module).href)) as { default?: unknown };
    if (typeof mod.default !== 'function') throw new TypeError(`the step module ${request.module} must have a function as its default export, found ${typeof mod.default}`);
    // The extra files, by name, where the step can read them (beside its input, in /input).
    const files = Object.fromEntries(request.files.map((name) => [name, `/input/${name}`]));
    const output: unknown = await (mod.default as (t: Table | null, p: unknown, c: { files: Record<string, string> }) => unknown)(input, request.params, { files });
    if (!(output instanceof Table)) throw new TypeError(`the step returned ${describe(output)}, not an apache-arrow Table (import it from 'apache-arrow')`);
    writeArrowFile(request.outputPath, output);
    await writeMessage(protocol, stepResultOk({ rows: output.numRows, columns: output.numCols }));
  } catch (err) {
    await writeMessage(protocol, stepResultError(err instanceof Error ? (err.stack ?? err.message) + hint(err) : `non-Error thrown: ${String(err)}`));
    process.exitCode = 1;
  }
}

/** What to do about a module the sandbox does not show: only what the zygote loaded is there. */
function hint(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return '';
  return '\n(a step sees only the modules its zygote loaded before forking: preload the package, e.g. startZygote({ preload: [...] }) or `zygote serve --preload`, or bundle the step into one file)';
}

/**
 * Keeps the real stdout for the protocol and points everything a step would print with
 * (process.stdout, console) at stderr.
 */
function takeStdout(): NodeJS.WriteStream {
  const protocol = process.stdout;
  Object.defineProperty(process, 'stdout', { value: process.stderr, configurable: true, enumerable: true });
  globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
  return protocol;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'no constructor'})`;
  return `a ${typeof v}`;
}
