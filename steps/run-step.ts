// runStep(): the renderer's whole round trip for one untrusted step. Input table in, a
// validated output table or a typed error out, whatever the step does.
//
// Per step: the step at /step, read-only: a copy of the module file alone (step-copies.ts, made
// once per version of the file), or the module's directory when that is a package of its own
// (it holds a package.json). Its bare imports of preloaded packages resolve through the root's
// /node_modules to the zygote's own copies. What it writes goes to /output, an output filesystem
// of its own (spawn({ output }): a tmpfs of limits.outputBytes and outputFiles with no host
// path, whose files are the caller's whoever the caller is). An input table held in memory is
// written there too, as /output/input.arrow, once the child exists and before its request:
// memory to memory, no file on disk to write and remove. An input given as a file, and extra
// files, are bind-mounted read-only under /input (over placeholders in a private directory,
// the only case that makes one). It gets one StepRequest on stdin and answers one StepResult on
// stdout; the output file is then opened through the output's fd without following links,
// mapped and validated before it is accepted. The output's fd is closed and any directory
// removed (without recursion, never throwing) before runStep returns; the mapping outlives both.
import { accessSync, closeSync, constants, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Table } from 'apache-arrow';
import { checkArrowInput, readArrowOutput, writeArrowFd, DEFAULT_ARROW_CAPS, type ArrowCaps } from './arrow-file.js';
import type { ChildLimits, ExitStatus, ZygoteChild } from '../client/child.js';
import type { ChildOutput } from '../client/child-output.js';
import { InvalidOutputError, ProtocolError, SandboxError } from '../client/errors.js';
import type { Zygote } from '../client/zygote.js';
import { SPAWN_SANDBOX_KEYS, type SpawnSandboxOptions } from '../client/options.js';
import { DEFAULT_LIMITS, normalizeLimits, type Limits } from '../protocol/limits.js';
import { writeMessage } from '../protocol/messages.js';
import { describe, isOptionsObject, refuseUnknownKeys } from '../protocol/options.js';
import type { Mount } from '../protocol/spawn.js';
import { encodeStepRequest, MAX_STEP_RESULT_BYTES, readStepResult, type DecodedStepResult, type StepParams } from '../protocol/step.js';
import { InvalidOptionError } from '../protocol/errors.js';
import { removeTree } from './remove-tree.js';
import { holdStepCopy } from './step-copies.js';
import { StepClock, type StepTimings } from './step-timings.js';

/** The module to use as a zygote's `main` for runStep(): startZygote({ main: stepRunner }). */
export const stepRunner = new URL('./step-runner.js', import.meta.url);

/** Where the step is shown in the child (a mount point of every child's root). */
export const STEP_MOUNT = '/step';
/** Where the step writes: its output filesystem. */
const OUTPUT_MOUNT = '/output';

export interface RunStepOptions {
  /** Path of the step module (its directory is shown to the child, read-only). */
  module: string;
  /**
   * The input table: an apache-arrow Table (from the apache-arrow zygote uses), the bytes of an
   * Arrow IPC file (a table from any copy: tableToIPC(table, 'file')), or the path of an Arrow
   * IPC file.
   */
  input?: Table | Uint8Array | string | null;
  params?: StepParams;
  /**
   * Extra files the step may read, by name: the step gets `{ files: { name: '/input/name' } }`
   * as its third argument. Names are plain file names; each file is shown read-only.
   */
  files?: Record<string, string>;
  /**
   * The child's limits, over the handle's and the zygote's defaults (DEFAULT_LIMITS: wall time
   * 60 s, memory 1 GiB, pids 32, output 1 GiB and 4096 files...).
   */
  limits?: Limits;
  /** Per-step rlimits and /tmp; tests only: layers to skip. */
  sandbox?: SpawnSandboxOptions;
  /** Caps the output table must meet. */
  output?: Partial<ArrowCaps>;
  /** How much of the step's stderr to keep. Default 64 KiB. (limits.stderrBytes, default 16 MiB, is where it is killed.) */
  stderrBytes?: number;
  /** A label for logs and the child's process title. */
  name?: string;
  /** Record where the time goes: the outcome then carries `timings` (StepTimings). Default false. */
  timings?: boolean;
}

export type StepErrorKind = 'error' | 'timeout' | 'oom' | 'output-limit' | 'protocol' | 'invalid-output' | 'sandbox' | 'shutdown';

/** What the step wrote on stderr, up to the cap. */
export interface CapturedText {
  text: string;
  /** More was written than kept. */
  truncated: boolean;
  /** Everything it wrote, kept or not. */
  bytes: number;
}

export interface StepSuccess {
  ok: true;
  /** The validated output; it views a read-only mapping of the file (no copy). */
  table: Table;
  result: { rows: number; columns: number; warnings: string[]; summary: Record<string, string> };
  stderr: CapturedText;
  exit: ExitStatus;
  /** Unmaps the table now rather than when it is garbage-collected; the table is then unusable. */
  release(): void;
  /** Only when the `timings` option was true. */
  timings?: StepTimings;
}

export interface StepFailure {
  ok: false;
  error: { kind: StepErrorKind; message: string; cause?: unknown };
  stderr: CapturedText;
  /** Null when no child ran (a sandbox step failed). */
  exit: ExitStatus | null;
  /** Only when the `timings` option was true. */
  timings?: StepTimings;
}

export type StepOutcome = StepSuccess | StepFailure;

/** A step's wall time unless someone says otherwise: the zygote's default (protocol/limits.ts). */
export const DEFAULT_STEP_WALL_TIME_MS = DEFAULT_LIMITS.wallTimeMs;
const DEFAULT_STDERR_BYTES = 64 * 1024;
/** Past this much stderr the step is killed ('output-limit'); only the first stderrBytes are kept. */
export const DEFAULT_STEP_STDERR_LIMIT = DEFAULT_LIMITS.stderrBytes;
/** How long to wait for the result of a step with no wall-time limit: the longest timer Node has (24.8 days). */
const NO_LIMIT_RESULT_TIMEOUT_MS = 2 ** 31 - 1;
const RUN_STEP_KEYS = ['module', 'input', 'params', 'files', 'limits', 'sandbox', 'output', 'stderrBytes', 'name', 'timings'] as const satisfies readonly (keyof RunStepOptions)[];
/** How long a step whose stdout ended may take to exit before it is killed. */
const EXIT_GRACE_MS = 2_000;
const OUTPUT_NAME = 'output.arrow';
const INPUT_NAME = 'input.arrow';

/** The step module's real path; a TypeError naming the path and why when it is not a readable file. */
function stepModule(path: string): string {
  let real: string;
  try {
    real = realpathSync(path);
    accessSync(real, constants.R_OK);
  } catch (err) {
    throw new InvalidOptionError(`Expected \`module\` to be the path of a readable step module, got ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (!statSync(real).isFile()) throw new InvalidOptionError(`Expected \`module\` to be the path of a step module file, got ${JSON.stringify(path)}, which is not a regular file`);
  return real;
}

/**
 * What the child sees at /step: the module's own directory when it is a package (it holds a
 * package.json, so the step may import its own files), else a directory holding a copy of the
 * module file alone, so nothing beside it (other users' steps, a config) is shown.
 */
function stepSource(module: string): { dir: string; isPackage: boolean; release(): void } {
  const dir = dirname(module);
  if (existsSync(join(dir, 'package.json'))) return { dir, isPackage: true, release: () => {} };
  return { ...holdStepCopy(module), isPackage: false };
}

/** Runs one step in a child of zygote (which must run `stepRunner` as its main). */
export async function runStep(zygote: Zygote, opts: RunStepOptions): Promise<StepOutcome> {
  const t0 = performance.now();
  checkRunStepOptions(opts);
  const clock = opts.timings === true ? new StepClock(t0) : null;
  const timed = (out: StepOutcome): StepOutcome => (clock ? clock.attach(out) : out);
  const limits: Limits = normalizeLimits(opts.limits, 'limits', 'runStep()');
  const module = stepModule(opts.module);
  const files = Object.entries(opts.files ?? {});
  for (const [name] of files) {
    if (!/^[\w][\w.-]*$/.test(name) || name === INPUT_NAME) throw new InvalidOptionError(`Expected \`files\` names to be plain file names other than ${INPUT_NAME}, got ${JSON.stringify(name)}`);
  }
  const step = stepSource(module);
  // A private directory only for what is bind-mounted under /input: a file input, extra files.
  let dir: string | null = null;
  try {
    const mounts: Mount[] = [{ source: step.dir, target: STEP_MOUNT }];
    let inDir = '';
    if (typeof opts.input === 'string' || files.length > 0) {
      dir = mkdtempSync(join(tmpdir(), 'zygote-step-'));
      inDir = join(dir, 'in');
      mkdirSync(inDir, { mode: 0o755 });
      // in/ is the child's /input; each file is mounted over a placeholder there.
      mounts.push({ source: inDir, target: '/input' });
    }
    const showFile = (name: string, path: string, what: string) => {
      if (!statSync(path).isFile()) throw new InvalidOptionError(`Expected ${what} to be a regular file, got ${path}`);
      writeFileSync(join(inDir, name), '', { flag: 'wx', mode: 0o444 });
      mounts.push({ source: path, target: `/input/${name}` });
    };
    let inputPath: string | undefined;
    // An in-memory input: checked now, written once the child's output filesystem exists.
    let inMemory: Table | Uint8Array | null = null;
    if (typeof opts.input === 'string') {
      showFile(INPUT_NAME, opts.input, '`input`');
      inputPath = `/input/${INPUT_NAME}`;
    } else if (opts.input) {
      checkArrowInput(opts.input, '`input`');
      inMemory = opts.input;
      inputPath = `${OUTPUT_MOUNT}/${INPUT_NAME}`;
    }
    for (const [name, path] of files) showFile(name, path, `\`files.${name}\``);
    clock?.mark('prepared');
    let child: ZygoteChild;
    try {
      // stdout carries one result: a step that floods it is cut off and killed at the cap.
      child = await zygote.spawn({ name: opts.name ?? basename(module), mounts, output: { target: OUTPUT_MOUNT }, limits: { ...limits, stdoutBytes: MAX_STEP_RESULT_BYTES + 8 }, sandbox: opts.sandbox });
    } catch (err) {
      if (err instanceof SandboxError) return timed({ ok: false, error: { kind: 'sandbox', message: err.message, cause: err }, stderr: { text: '', truncated: false, bytes: 0 }, exit: null });
      throw err;
    }
    clock?.mark('spawned');
    const output = child.output!;
    try {
      if (inMemory) {
        const full = writeInput(output, inMemory);
        if (full) {
          // Nothing of the step ran: the runner still waits for its request.
          child.kill();
          child.stdout.resume();
          child.stderr.resume();
          const exit = await child.exited;
          return timed({ ok: false, error: { kind: 'output-limit', message: `the input table (${full.bytes} bytes written when it failed) does not fit in the step's output filesystem, where it is written (limits.outputBytes ${child.limits.outputBytes} bytes): raise limits.outputBytes`, cause: full }, stderr: { text: '', truncated: false, bytes: 0 }, exit });
        }
      }
      const request = encodeStepRequest({ module: join(STEP_MOUNT, basename(module)), params: opts.params, inputPath, outputPath: `${OUTPUT_MOUNT}/${OUTPUT_NAME}`, files: files.map(([name]) => name) });
      const stdio = { stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exited: child.exited, kill: () => child.kill() };
      const io = await talkToStep(
        clock ? clock.watch(stdio) : stdio,
        request,
        // The zygote kills it at its deadline, which ends stdout; this only backs that up.
        { resultTimeoutMs: child.limits.wallTimeMs === null ? NO_LIMIT_RESULT_TIMEOUT_MS : child.limits.wallTimeMs + 5_000, stderrBytes: opts.stderrBytes ?? DEFAULT_STDERR_BYTES },
      );
      const out = outcome(io, () => readArrowOutput(output, OUTPUT_NAME, { ...DEFAULT_ARROW_CAPS, ...opts.output }));
      if (out.ok) keepOnly(output, OUTPUT_NAME);
      // Stack traces and messages name the step as the renderer knows it, not its mount point.
      return timed(userPaths(out.ok ? out : overOutputLimit(out, output, child.limits), step.isPackage ? step.dir : null, module));
    } finally {
      // Gone with the fd, or, for a returned table, once its mapping is released (keepOnly left
      // only its file).
      output.close();
    }
  } finally {
    step.release();
    if (dir !== null) cleanUp(dir);
    clock?.finish();
  }
}

/**
 * Writes the input into the child's output filesystem before its request goes: created
 * exclusively, never through a link, read-only to the step. Returns the error when it does not
 * fit (ENOSPC, EDQUOT), null once written; anything else throws.
 */
function writeInput(output: ChildOutput, input: Table | Uint8Array): (NodeJS.ErrnoException & { bytes: number }) | null {
  const fd = openSync(join(output.path, INPUT_NAME), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o444);
  try {
    writeArrowFd(fd, input);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') return Object.assign(err as NodeJS.ErrnoException, { bytes: fstatSync(fd).size });
    throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * A failure of a step whose output filesystem is full is told as that: its writes there failed
 * with ENOSPC, whatever the step made of it (an exception, a truncated file). A limit that ended
 * it (time, memory) still says more.
 */
function overOutputLimit(out: StepFailure, output: ChildOutput, limits: ChildLimits): StepFailure {
  if (!['error', 'protocol', 'invalid-output'].includes(out.error.kind)) return out;
  let full: boolean;
  try {
    full = output.usage().full;
  } catch {
    return out;
  }
  if (!full) return out;
  const message = `the step filled its output filesystem (limits.outputBytes ${limits.outputBytes} bytes, limits.outputFiles ${limits.outputFiles} files): writes to ${OUTPUT_MOUNT} failed with ENOSPC; ${out.error.message}`;
  return { ...out, error: { kind: 'output-limit', message, cause: out.error.cause } };
}

/**
 * Removes everything but the output file from the output filesystem. The table's mapping holds
 * the tmpfs (its mount) until it is released, and with it anything else the step left there.
 * Best effort: what cannot be removed (a tree deeper than a path can name) stays until then,
 * within the output's limits.
 */
function keepOnly(output: ChildOutput, name: string): void {
  let names: string[];
  try {
    names = readdirSync(output.path);
  } catch {
    return;
  }
  for (const other of names) if (other !== name) cleanUp(join(output.path, other));
}

/** Removes runStep's directory; what cannot be removed is a warning, never an error of the step's. */
function cleanUp(dir: string): void {
  const problems = removeTree(dir);
  if (problems.length > 0) {
    process.emitWarning(`runStep could not remove all of ${dir}: ${problems.map((p) => `${p.path} (${p.code})`).join(', ')}`, { code: 'ZYGOTE_STEP_CLEANUP' });
  }
}

/**
 * The outcome with the step's in-child paths (/step/NAME, file:///step/NAME) put back as the
 * renderer's own: the module's path, or for a step that is a package, its directory's paths.
 */
function userPaths(out: StepOutcome, packageDir: string | null, module: string): StepOutcome {
  const inChild = `${STEP_MOUNT}/`;
  const map = (text: string): string =>
    packageDir !== null
      ? text.replaceAll(`file://${inChild}`, `file://${packageDir}/`).replaceAll(inChild, `${packageDir}/`)
      : text.replaceAll(`file://${inChild}${basename(module)}`, `file://${module}`).replaceAll(`${inChild}${basename(module)}`, module);
  const stderr = { ...out.stderr, text: map(out.stderr.text) };
  return out.ok ? { ...out, stderr } : { ...out, stderr, error: { ...out.error, message: map(out.error.message) } };
}

/** Refuses unknown keys and values of the wrong type before anything is made; messages name the option. */
function checkRunStepOptions(opts: RunStepOptions): void {
  if (!isOptionsObject(opts)) throw new InvalidOptionError(`Expected runStep() options to be an object, got ${describe(opts)}`);
  refuseUnknownKeys(opts, RUN_STEP_KEYS, 'runStep()');
  if (typeof opts.module !== 'string' || opts.module === '') throw new InvalidOptionError(`Expected the \`module\` option of runStep() to be a path, got ${describe(opts.module)}`);
  if (opts.sandbox !== undefined) {
    if (!isOptionsObject(opts.sandbox)) throw new InvalidOptionError(`Expected the \`sandbox\` option of runStep() to be an object, got ${describe(opts.sandbox)}`);
    refuseUnknownKeys(opts.sandbox, SPAWN_SANDBOX_KEYS, 'runStep()', 'sandbox.');
  }
  if (opts.output !== undefined) {
    if (!isOptionsObject(opts.output)) throw new InvalidOptionError(`Expected the \`output\` option of runStep() to be an object of Arrow caps, got ${describe(opts.output)}`);
    refuseUnknownKeys(opts.output, Object.keys(DEFAULT_ARROW_CAPS), 'runStep()', 'output.');
  }
  if (opts.files !== undefined) {
    if (!isOptionsObject(opts.files)) throw new InvalidOptionError(`Expected the \`files\` option of runStep() to be an object of name: path, got ${describe(opts.files)}`);
    for (const [name, path] of Object.entries(opts.files)) {
      if (typeof path !== 'string') throw new InvalidOptionError(`Expected \`files.${name}\` of runStep() to be a path, got ${describe(path)}`);
    }
  }
  if (opts.stderrBytes !== undefined && (!Number.isSafeInteger(opts.stderrBytes) || opts.stderrBytes < 0)) {
    throw new InvalidOptionError(`Expected the \`stderrBytes\` option of runStep() to be a non-negative integer, got ${describe(opts.stderrBytes)}`);
  }
  if (opts.name !== undefined && typeof opts.name !== 'string') throw new InvalidOptionError(`Expected the \`name\` option of runStep() to be a string, got ${describe(opts.name)}`);
  if (opts.timings !== undefined && typeof opts.timings !== 'boolean') throw new InvalidOptionError(`Expected the \`timings\` option of runStep() to be a boolean, got ${describe(opts.timings)}`);
}

/** A running step, whoever started it (a zygote child, or a cold node for comparison). */
export interface StepIO<E> {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  exited: Promise<E>;
  kill(): void;
}

export interface StepExchange<E> {
  result: DecodedStepResult | null;
  /** Why no valid result was read. */
  protocolError: ProtocolError | null;
  stderr: CapturedText;
  exit: E;
}

/**
 * Sends the request, reads exactly one result (bounded in size and time, and nothing after
 * it), keeps stderr up to a cap, and waits for the exit. A step that broke the protocol is
 * killed, so the exit always comes.
 */
export async function talkToStep<E>(io: StepIO<E>, request: ReturnType<typeof encodeStepRequest>, opts: { resultTimeoutMs: number; stderrBytes: number }): Promise<StepExchange<E>> {
  const stderr = capture(io.stderr, opts.stderrBytes);
  io.stdin.on('error', () => {}); // a step that exits without reading its request: EPIPE
  let protocolError: ProtocolError | null = null;
  let result: StepExchange<E>['result'] = null;
  try {
    try {
      await writeMessage(io.stdin, request);
      io.stdin.end();
    } catch (err) {
      // It ended, or closed its stdin, before taking its request (killed by its memory limit as
      // it started, say): how it ended tells the rest.
      if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
      throw new ProtocolError('truncated', 'the step closed its stdin before it read its request', { cause: err });
    }
    // One result and nothing after it, within size, time, nesting and item bounds.
    result = await readStepResult(io.stdout, { timeoutMs: opts.resultTimeoutMs, maxBytes: MAX_STEP_RESULT_BYTES });
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    protocolError = err;
    // Its stdout ended: it is exiting by itself, so let it (killing it now would hide how it
    // ended). Anything else: it is still writing nonsense, so end it.
    if (err.reason !== 'truncated' || (await settlesWithin(io.exited, EXIT_GRACE_MS)) === false) io.kill();
  }
  io.stdout.resume(); // drain whatever else it writes until it is gone
  const exit = await io.exited;
  return { result, protocolError, stderr: await stderr, exit };
}

function outcome(io: StepExchange<ExitStatus>, readOutput: () => { table: Table; unmap(): void }): StepOutcome {
  const { exit, stderr } = io;
  const fail = (kind: StepErrorKind, message: string, cause?: unknown): StepFailure => ({ ok: false, error: { kind, message, cause }, stderr, exit });
  // A limit the step hit says most, whatever it managed to write before.
  if (exit.reason === 'timeout') return fail('timeout', `the step ran past its wall-time limit (${exit.wallMs.toFixed(0)} ms) and was killed`);
  if (exit.reason === 'cpu-limit') return fail('timeout', `the step used up its CPU-time limit (${exit.cpuMs.toFixed(0)} ms) and was killed`);
  if (exit.reason === 'oom') return fail('oom', `the step ran out of memory (its cgroup's limit) and was killed; peak memory ${((exit.memoryPeakBytes ?? exit.maxRssBytes) / 2 ** 20).toFixed(0)} MiB`);
  if (exit.reason === 'output-limit') return fail('output-limit', 'the step wrote more output than its limit (stdout: one result; stderr: limits.stderrBytes) and was killed');
  if (exit.reason === 'pids-limit') return fail('error', 'the step hit its pids limit (threads or processes)');
  if (exit.reason === 'shutdown') return fail('shutdown', `the zygote was stopped and its drain ended before the step did (killed after ${exit.wallMs.toFixed(0)} ms)`);
  if (io.protocolError) {
    // Died without a word: a crash or an exit of its own, with its stderr as the story.
    if (io.protocolError.reason === 'truncated' && (exit.code !== 0 || exit.signal !== null)) {
      return fail('error', `the step ended (${describeExit(exit)}) without a result${stderr.text ? `: ${lastLines(stderr.text)}` : ''}`);
    }
    return fail('protocol', `the step broke the result protocol: ${io.protocolError.message}`, io.protocolError);
  }
  const result = io.result!;
  if (!result.ok) return fail('error', result.message);
  if (exit.code !== 0) return fail('error', `the step reported success but then ended with ${describeExit(exit)}`);
  let out;
  try {
    out = readOutput();
  } catch (err) {
    if (err instanceof InvalidOutputError) return fail('invalid-output', err.message, err);
    throw err;
  }
  if (out.table.numRows !== result.rows || out.table.numCols !== result.columns) {
    out.unmap();
    return fail('invalid-output', `the step reported ${result.rows} rows and ${result.columns} columns but its output file has ${out.table.numRows} and ${out.table.numCols}`);
  }
  return { ok: true, table: out.table, result: { rows: result.rows, columns: result.columns, warnings: result.warnings, summary: result.summary }, stderr, exit, release: () => out.unmap() };
}

/** Whether promise settles within ms. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  return Promise.race([promise.then(() => true, () => true), timeout]).finally(() => clearTimeout(timer));
}

/** Reads a stream to its end, keeping at most cap bytes. */
function capture(stream: Readable, cap: number): Promise<CapturedText> {
  return new Promise((resolve) => {
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (keptBytes < cap) {
        const part = chunk.subarray(0, cap - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
    });
    const done = () => resolve({ text: Buffer.concat(kept).toString('utf8'), truncated: bytes > keptBytes, bytes });
    stream.once('end', done);
    stream.once('error', done);
    stream.once('close', done);
  });
}

function describeExit(exit: ExitStatus): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

function lastLines(text: string, n = 20): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}
