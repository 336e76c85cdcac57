// The step messages (protocol/step.thrift) as plain JS, both ways, validated.
//
// Encoding checks what the renderer (or the step runner) passes and throws a TypeError naming
// the bad value by its path ("params.a.b[3]"). Decoding trusts nothing: Thrift's generated
// read() accepts any bytes that parse (no required-field checks, unions with no or several
// members, unknown fields skipped), so every decoded message is checked here and a bad one is
// a ProtocolError('invalid') naming the field; the rest of the code only sees these types.
import { createRequire } from 'node:module';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type * as Gen from './gen/step_types.cjs';
import { InvalidOptionError, ProtocolError } from './errors.js';
import { readMessage } from './messages.js';

// Loaded with require, as protocol/control.ts does: the generated code is CommonJS.
const require = createRequire(import.meta.url);
const gen = require('./gen/step_types.cjs') as typeof Gen;
const { Int64 } = require('thrift') as { Int64: new (buf: Buffer) => Int64Like };
// The generator's classes are anonymous; named, they name themselves in readMessage's errors.
for (const [name, value] of Object.entries(gen)) {
  if (typeof value === 'function' && value.name === '') Object.defineProperty(value, 'name', { value: name });
}

/** node-int64, as Thrift's JS library reads an i64. */
interface Int64Like {
  buffer: Buffer;
  offset?: number;
}

/** The generated StepRequest class: the `Type` to give readMessage for a request. */
export const StepRequestMessage = gen.StepRequest;
export type StepRequestMessage = Gen.StepRequest;
/** The generated StepResult class: the `Type` to give readMessage for a result. */
export const StepResultMessage = gen.StepResult;
export type StepResultMessage = Gen.StepResult;

/**
 * A parameter value. Numbers: a safe integer travels as an i64 and any other finite number as
 * a double (so 1.0 arrives as 1, and -0 as 0); NaN and ±Infinity are refused (TypeError when
 * encoding, 'invalid' when decoding), as JSON would not carry them either. A bigint in the
 * i64 range travels as an i64 and arrives as a number if it is a safe integer, else as a
 * bigint. Strings must be well-formed UTF-16 (no lone surrogates, which UTF-8 cannot carry).
 * Object keys may not be "__proto__" or "hasOwnProperty" (Thrift's JS map code cannot carry
 * them). Lists and objects nest at most MAX_PARAM_DEPTH deep. undefined, null, functions,
 * symbols and objects that are not plain (Date, Map, class instances) are refused.
 */
export type ParamJs = string | number | bigint | boolean | ParamJs[] | { [key: string]: ParamJs };
/** A step's parameters: the plain object its default export gets as its second argument. */
export type StepParams = Record<string, ParamJs>;

/** Deepest nesting of lists and objects in params (`params.a = [[1], {}]` is 2 deep). */
export const MAX_PARAM_DEPTH = 32;
/** Largest StepRequest payload the step runner reads (tables travel as files, not here). */
export const MAX_STEP_REQUEST_BYTES = 1024 * 1024;
/** Largest StepResult payload the renderer should read: the largest valid one fits with room to spare. */
export const MAX_STEP_RESULT_BYTES = 256 * 1024;
/** Caps on a StepResult's strings and collections (UTF-8 bytes); past them it is 'invalid'. */
export const STEP_RESULT_LIMITS = Object.freeze({
  messageBytes: 64 * 1024,
  warnings: 100,
  warningBytes: 1024,
  summaryEntries: 100,
  summaryKeyBytes: 128,
  summaryValueBytes: 1024,
});
/** Longest path in a request (Linux's PATH_MAX), and most extra files. */
const MAX_PATH_BYTES = 4096;
const MAX_FILES = 1000;

/** What the renderer asks a step to do. */
export interface StepRequestInit {
  /** Absolute path of the step module inside the child. */
  module: string;
  params?: StepParams;
  /** Absolute path inside the child of the input table (an Arrow IPC file). */
  inputPath?: string;
  /** Absolute path inside the child where the step writes its output table. */
  outputPath: string;
  /** Extra files the step may read, relative to the input directory. */
  files?: string[];
}

/** A request as the step runner gets it: validated, with params and files always present. */
export interface DecodedStepRequest {
  module: string;
  params: StepParams;
  inputPath?: string;
  outputPath: string;
  files: string[];
}

/** A step's answer as the renderer gets it, validated. */
export type DecodedStepResult =
  | { ok: true; rows: number; columns: number; warnings: string[]; summary: Record<string, string> }
  | { ok: false; message: string };

/** Builds the wire StepRequest from plain values; throws TypeError naming the bad field or parameter. */
export function encodeStepRequest(req: StepRequestInit): StepRequestMessage {
  if (typeof req !== 'object' || req === null) throw new InvalidOptionError(`Expected the step request to be an object, got ${describe(req)}`);
  const bad = (field: string, what: string) => new InvalidOptionError(`Expected \`${field}\` to be ${what}`);
  const msg = new gen.StepRequest();
  msg.modulePath = absolutePath(req.module, 'module', bad);
  if (req.params !== undefined) {
    if (!isPlainObject(req.params)) throw bad('params', `a plain object, got ${describe(req.params)}`);
    msg.params = paramsToWire(req.params);
  }
  if (req.inputPath !== undefined) msg.inputPath = absolutePath(req.inputPath, 'inputPath', bad);
  msg.outputPath = absolutePath(req.outputPath, 'outputPath', bad);
  if (req.files !== undefined) msg.files = fileList(req.files, 'files', bad);
  return msg;
}

/** Validates a decoded StepRequest; throws ProtocolError('invalid') naming the field. */
export function decodeStepRequest(msg: StepRequestMessage): DecodedStepRequest {
  const bad = (field: string, what: string) => new ProtocolError('invalid', `StepRequest.${field} must be ${what}`);
  if (typeof msg !== 'object' || msg === null) throw new ProtocolError('invalid', `a StepRequest must be a struct, got ${describe(msg)}`);
  const out: DecodedStepRequest = {
    module: absolutePath(msg.modulePath, 'modulePath', bad),
    params: msg.params == null ? {} : paramsFromWire(msg.params),
    outputPath: absolutePath(msg.outputPath, 'outputPath', bad),
    files: msg.files == null ? [] : fileList(msg.files, 'files', bad),
  };
  if (msg.inputPath != null) out.inputPath = absolutePath(msg.inputPath, 'inputPath', bad);
  return out;
}

/** The result of a step that wrote its table; throws TypeError past STEP_RESULT_LIMITS. */
export function stepResultOk(r: { rows: number; columns: number; warnings?: string[]; summary?: Record<string, string> }): StepResultMessage {
  const bad = (field: string, what: string) => new InvalidOptionError(`Expected \`${field}\` to be ${what}`);
  const ok = new gen.StepOk();
  ok.rows = count(r.rows, 'rows', Number.MAX_SAFE_INTEGER, bad) as unknown as Gen.StepOk['rows'];
  ok.columns = count(r.columns, 'columns', 2 ** 31 - 1, bad);
  if (r.warnings !== undefined) ok.warnings = warnings(r.warnings, 'warnings', bad);
  if (r.summary !== undefined) ok.summary = summary(r.summary, 'summary', bad);
  return new gen.StepResult({ ok });
}

/**
 * The result of a step that failed. A message longer than STEP_RESULT_LIMITS.messageBytes is
 * cut (at a character boundary, saying how much was cut): this is the last thing a failing
 * step runner says, so it never throws for length.
 */
export function stepResultError(message: string): StepResultMessage {
  if (typeof message !== 'string') throw new InvalidOptionError(`Expected the error message to be a string, got ${describe(message)}`);
  return new gen.StepResult({ error: new gen.StepFailure({ message: truncateUtf8(message, STEP_RESULT_LIMITS.messageBytes) }) });
}

/** Validates a decoded StepResult; throws ProtocolError('invalid') naming the field. */
export function decodeStepResult(msg: StepResultMessage): DecodedStepResult {
  const invalid = (text: string) => new ProtocolError('invalid', text);
  if (typeof msg !== 'object' || msg === null) throw invalid(`a StepResult must be a struct, got ${describe(msg)}`);
  const set = (['ok', 'error'] as const).filter((k) => msg[k] != null);
  if (set.length !== 1) throw invalid(`StepResult must have exactly one of ok, error; found ${set.length === 0 ? 'none' : set.join(', ')}`);
  if (set[0] === 'error') {
    const message = msg.error!.message;
    if (typeof message !== 'string') throw invalid('StepFailure.message is required and must be a string');
    const bytes = Buffer.byteLength(message, 'utf8');
    if (bytes > STEP_RESULT_LIMITS.messageBytes) throw invalid(`StepFailure.message is ${bytes} bytes; at most ${STEP_RESULT_LIMITS.messageBytes} are allowed`);
    return { ok: false, message };
  }
  const ok = msg.ok!;
  const bad = (field: string, what: string) => invalid(`StepOk.${field} must be ${what}`);
  return {
    ok: true,
    rows: count(int64ToNumber(ok.rows), 'rows', Number.MAX_SAFE_INTEGER, bad),
    columns: count(ok.columns, 'columns', 2 ** 31 - 1, bad),
    warnings: ok.warnings == null ? [] : warnings(ok.warnings, 'warnings', bad),
    summary: ok.summary == null ? {} : summary(ok.summary, 'summary', bad),
  };
}

/**
 * Reads one StepResult from a step's stdout and validates it: at most maxBytes (default
 * MAX_STEP_RESULT_BYTES), within timeoutMs, collections refused past STEP_RESULT_LIMITS while
 * decoding, and nothing after it before the stream ends.
 */
export async function readStepResult(stream: Readable, opts: { timeoutMs: number; maxBytes?: number }): Promise<DecodedStepResult> {
  const maxItems = Math.max(STEP_RESULT_LIMITS.warnings, STEP_RESULT_LIMITS.summaryEntries);
  const msg = await readMessage(stream, StepResultMessage, { maxBytes: opts.maxBytes ?? MAX_STEP_RESULT_BYTES, timeoutMs: opts.timeoutMs, typeName: 'StepResult', expectEnd: true, maxItems });
  return decodeStepResult(msg);
}

/** Reads one StepRequest (the step runner's stdin) and validates it; the stream must end after it. */
export async function readStepRequest(stream: Readable, opts: { timeoutMs: number; maxBytes?: number }): Promise<DecodedStepRequest> {
  const msg = await readMessage(stream, StepRequestMessage, { maxBytes: opts.maxBytes ?? MAX_STEP_REQUEST_BYTES, timeoutMs: opts.timeoutMs, typeName: 'StepRequest', expectEnd: true });
  return decodeStepRequest(msg);
}

// ---- parameters -------------------------------------------------------------------------

type Complaint = (field: string, what: string) => Error;

/** JS params → the wire map. Recursion is bounded by MAX_PARAM_DEPTH (which also stops cycles). */
function paramsToWire(params: StepParams): Record<string, Gen.ParamValue> {
  const out: Record<string, Gen.ParamValue> = {};
  for (const key of Object.keys(params)) {
    checkKey(key, 'params', (f, w) => new InvalidOptionError(`Expected ${f} to be ${w}`));
    out[key] = toWire(params[key], pathKey('params', key), 0);
  }
  return out;
}

function toWire(v: unknown, path: string, depth: number): Gen.ParamValue {
  const bad = (what: string) => new InvalidOptionError(`Expected ${path} to be ${what}`);
  const p = new gen.ParamValue();
  switch (typeof v) {
    case 'string':
      if (LONE_SURROGATE.test(v)) throw bad('well-formed UTF-16, got a string with a lone surrogate (UTF-8 cannot carry it)');
      p.text = v;
      return p;
    case 'number':
      if (!Number.isFinite(v)) throw bad(`a finite number, got ${v}`);
      // -0 is a safe integer: it goes as the i64 0.
      if (Number.isSafeInteger(v)) p.integer = v as unknown as Gen.ParamValue['integer'];
      else p.number = v;
      return p;
    case 'bigint': {
      if (v < -(2n ** 63n) || v >= 2n ** 63n) throw bad(`within the i64 range, got the bigint ${v}`);
      const buf = Buffer.alloc(8);
      buf.writeBigInt64BE(v);
      p.integer = new Int64(buf) as unknown as Gen.ParamValue['integer'];
      return p;
    }
    case 'boolean':
      p.flag = v;
      return p;
    case 'object':
      if (v === null) break;
      if (depth >= MAX_PARAM_DEPTH) throw bad(`at most ${MAX_PARAM_DEPTH} lists or objects deep, but it nests deeper (or is circular)`);
      if (Array.isArray(v)) {
        const items: Gen.ParamValue[] = [];
        for (let i = 0; i < v.length; i++) items.push(toWire(v[i], `${path}[${i}]`, depth + 1));
        p.items = items;
        return p;
      }
      if (isPlainObject(v)) {
        const entries: Record<string, Gen.ParamValue> = {};
        for (const key of Object.keys(v)) {
          checkKey(key, path, (f, w) => new InvalidOptionError(`Expected ${f} to be ${w}`));
          entries[key] = toWire((v as Record<string, unknown>)[key], pathKey(path, key), depth + 1);
        }
        p.entries = entries;
        return p;
      }
      break;
  }
  throw bad(`a string, number, bigint, boolean, array or plain object, got ${describe(v)}`);
}

/** The wire map → JS params; ProtocolError('invalid') naming the path of anything malformed. */
function paramsFromWire(map: unknown): StepParams {
  return entriesFromWire(map, 'StepRequest.params', 0);
}

function entriesFromWire(map: unknown, path: string, depth: number): Record<string, ParamJs> {
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new ProtocolError('invalid', `${path} must be a map`);
  // The generated reader stores entries with `map[key] = value`: a "__proto__" key replaced
  // the map's prototype instead of adding an entry, and is only visible that way.
  if (Object.getPrototypeOf(map) !== Object.prototype) throw new ProtocolError('invalid', `${path} has a "__proto__" key, which is not allowed`);
  const out: Record<string, ParamJs> = {};
  for (const key of Object.keys(map)) {
    checkKey(key, path, (f, w) => new ProtocolError('invalid', `${f} must be ${w}`));
    out[key] = fromWire((map as Record<string, unknown>)[key], pathKey(path, key), depth);
  }
  return out;
}

function fromWire(v: unknown, path: string, depth: number): ParamJs {
  const invalid = (what: string) => new ProtocolError('invalid', `${path} ${what}`);
  if (!(v instanceof gen.ParamValue)) throw invalid('must be a ParamValue');
  const set = PARAM_MEMBERS.filter((k) => v[k] != null);
  if (set.length !== 1) throw invalid(`must have exactly one of ${PARAM_MEMBERS.join(', ')}; found ${set.length === 0 ? 'none' : set.join(', ')}`);
  switch (set[0]) {
    case 'text':
      if (typeof v.text !== 'string') throw invalid('text must be a string');
      return v.text;
    case 'integer': {
      const i = v.integer as unknown as Int64Like;
      if (!(i?.buffer instanceof Buffer)) throw invalid('integer must be an i64');
      const big = i.buffer.readBigInt64BE(i.offset ?? 0);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    case 'number':
      if (typeof v.number !== 'number' || !Number.isFinite(v.number)) throw invalid(`number must be finite, got ${String(v.number)}`);
      return v.number;
    case 'flag':
      if (typeof v.flag !== 'boolean') throw invalid('flag must be a boolean');
      return v.flag;
    case 'items': {
      if (depth >= MAX_PARAM_DEPTH) throw invalid(`nests deeper than ${MAX_PARAM_DEPTH} lists or objects`);
      if (!Array.isArray(v.items)) throw invalid('items must be a list');
      return v.items.map((item, i) => fromWire(item, `${path}[${i}]`, depth + 1));
    }
    case 'entries':
      if (depth >= MAX_PARAM_DEPTH) throw invalid(`nests deeper than ${MAX_PARAM_DEPTH} lists or objects`);
      return entriesFromWire(v.entries, path, depth + 1);
  }
}

const PARAM_MEMBERS = ['text', 'integer', 'number', 'flag', 'items', 'entries'] as const;
/** In a `u` regexp a surrogate pair is one code point, so \p{Cs} matches only lone halves. */
const LONE_SURROGATE = /\p{Cs}/u;
/** Keys Thrift's generated JS cannot carry: reading sets the prototype; writing calls map.hasOwnProperty(). */
const RESERVED_KEYS = new Set(['__proto__', 'hasOwnProperty']);

function checkKey(key: string, path: string, bad: Complaint): void {
  if (RESERVED_KEYS.has(key)) throw bad(path, `free of the key "${key}" (Thrift's JS map code cannot carry it)`);
  if (LONE_SURROGATE.test(key)) throw bad(path, 'free of keys that are not well-formed UTF-16 (a key has a lone surrogate)');
}

/** params.a, params["a b"], params.a[3]. */
function pathKey(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

// ---- fields -----------------------------------------------------------------------------

/** An absolute, normalized path without NUL, at most PATH_MAX bytes. */
function absolutePath(v: unknown, field: string, bad: Complaint): string {
  if (typeof v !== 'string') throw bad(field, `an absolute path, got ${describe(v)}`);
  if (v.includes('\0')) throw bad(field, 'a path without NUL bytes');
  if (!posix.isAbsolute(v)) throw bad(field, `an absolute path, got ${JSON.stringify(v)}`);
  if (posix.normalize(v) !== v) throw bad(field, `a normalized path (no ".", ".." or "//"), got ${JSON.stringify(v)}`);
  if (Buffer.byteLength(v) > MAX_PATH_BYTES) throw bad(field, `at most ${MAX_PATH_BYTES} bytes long`);
  return v;
}

/** Relative, normalized names that stay inside their directory. */
function fileList(v: unknown, field: string, bad: Complaint): string[] {
  if (!Array.isArray(v)) throw bad(field, `a list of file names, got ${describe(v)}`);
  if (v.length > MAX_FILES) throw bad(field, `at most ${MAX_FILES} names, got ${v.length}`);
  return v.map((name: unknown, i) => {
    const f = `${field}[${i}]`;
    if (typeof name !== 'string' || name === '') throw bad(f, `a non-empty file name, got ${describe(name)}`);
    if (name.includes('\0')) throw bad(f, 'a name without NUL bytes');
    if (posix.isAbsolute(name) || posix.normalize(name) !== name || name === '..' || name.startsWith('../')) {
      throw bad(f, `a normalized path relative to the input directory, inside it, got ${JSON.stringify(name)}`);
    }
    if (Buffer.byteLength(name) > MAX_PATH_BYTES) throw bad(f, `at most ${MAX_PATH_BYTES} bytes long`);
    return name;
  });
}

function count(v: unknown, field: string, max: number, bad: Complaint): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw bad(field, `an integer from 0 to ${max}, got ${describe(v)}`);
  }
  return v;
}

/** Thrift reads an i64 as a node-int64; a number is also accepted (a message built in-process). */
function int64ToNumber(v: unknown): unknown {
  if (typeof v === 'number') return v;
  const i = v as Int64Like | null | undefined;
  if (!(i?.buffer instanceof Buffer)) return v;
  const big = i.buffer.readBigInt64BE(i.offset ?? 0);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function warnings(v: unknown, field: string, bad: Complaint): string[] {
  const { warnings: max, warningBytes } = STEP_RESULT_LIMITS;
  if (!Array.isArray(v)) throw bad(field, `a list of strings, got ${describe(v)}`);
  if (v.length > max) throw bad(field, `at most ${max} strings, got ${v.length}`);
  return v.map((w: unknown, i) => boundedString(w, `${field}[${i}]`, warningBytes, bad));
}

function summary(v: unknown, field: string, bad: Complaint): Record<string, string> {
  const { summaryEntries, summaryKeyBytes, summaryValueBytes } = STEP_RESULT_LIMITS;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(field, `a map of strings, got ${describe(v)}`);
  const keys = Object.keys(v);
  if (keys.length > summaryEntries) throw bad(field, `at most ${summaryEntries} entries, got ${keys.length}`);
  const out: Record<string, string> = {};
  for (const key of keys) {
    checkKey(key, field, bad);
    const keyBytes = Buffer.byteLength(key, 'utf8');
    if (keyBytes > summaryKeyBytes) throw bad(field, `keyed by strings of at most ${summaryKeyBytes} bytes of UTF-8, got a key of ${keyBytes}`);
    out[key] = boundedString((v as Record<string, unknown>)[key], pathKey(field, key), summaryValueBytes, bad);
  }
  return out;
}

function boundedString(v: unknown, field: string, maxBytes: number, bad: Complaint): string {
  if (typeof v !== 'string') throw bad(field, `a string, got ${describe(v)}`);
  const bytes = Buffer.byteLength(v, 'utf8');
  if (bytes > maxBytes) throw bad(field, `at most ${maxBytes} bytes of UTF-8, got ${bytes}`);
  if (LONE_SURROGATE.test(v)) throw bad(field, 'well-formed UTF-16 (it has a lone surrogate)');
  return v;
}

/** s cut to at most maxBytes of UTF-8 (never inside a character), saying how much was cut. */
function truncateUtf8(s: string, maxBytes: number): string {
  const total = Buffer.byteLength(s, 'utf8');
  if (total <= maxBytes) return s;
  const note = (cut: number) => `\n… (${cut} more bytes cut)`;
  const budget = maxBytes - Buffer.byteLength(note(total));
  let end = 0;
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > budget) break;
    bytes += n;
    end += ch.length;
  }
  return s.slice(0, end) + note(total - bytes);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'null prototype'})`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'bigint') return `the bigint ${v}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${v}`;
  return String(v === undefined ? 'undefined' : typeof v);
}
