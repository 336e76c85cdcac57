// Unit tests of the step messages (protocol/step.ts): parameters of every kind round-trip
// through the wire exactly (or as documented), bad values are refused by path, and every
// decoded request and result is validated, with a ProtocolError naming the field.
import thrift from 'thrift';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFrame } from '../../dist/protocol/framing.js';
import { decodeMessage, encodeMessage } from '../../dist/protocol/messages.js';
import {
  decodeStepRequest,
  decodeStepResult,
  encodeStepRequest,
  MAX_PARAM_DEPTH,
  MAX_STEP_RESULT_BYTES,
  STEP_RESULT_LIMITS,
  stepResultError,
  stepResultOk,
  StepRequestMessage,
  StepResultMessage,
  type ParamJs,
  type StepParams,
  type StepRequestInit,
} from '../../dist/protocol/step.js';
import type * as StepGen from '../../protocol/gen/step_types.cjs';
import { CT, compactString, expectProtocolError, field, frameOf } from './helpers.js';

const MAX = 1 << 20;
const BASE = { module: '/steps/step.mjs', outputPath: '/output/out.arrow' };

/** Through the wire and back: encode, frame, decode the frame, validate. */
function roundTrip(req: StepRequestInit) {
  return decodeStepRequest(decodeMessage(encodeMessage(encodeStepRequest(req), { maxBytes: MAX }), StepRequestMessage, { maxBytes: MAX, expectEnd: true }));
}
function resultRoundTrip(msg: InstanceType<typeof StepResultMessage>) {
  return decodeStepResult(decodeMessage(encodeMessage(msg, { maxBytes: MAX }), StepResultMessage, { maxBytes: MAX, expectEnd: true }));
}
const paramsRoundTrip = (params: StepParams) => roundTrip({ ...BASE, params }).params;

/** [[[...value]]] n lists deep. */
function nested(n: number, value: ParamJs = 1): ParamJs {
  let v = value;
  for (let i = 0; i < n; i++) v = [v];
  return v;
}

describe('StepRequest round-trips', () => {
  it('carries module, params, inputPath, outputPath and files', () => {
    const req = { module: '/steps/a.mjs', params: { n: 1 }, inputPath: '/input/in.arrow', outputPath: '/output/out.arrow', files: ['extra.csv', 'sub/dir/f.json'] };
    expect(roundTrip(req)).toEqual(req);
  });

  it('fills absent params and files with {} and [], and leaves inputPath out', () => {
    const back = roundTrip(BASE);
    expect(back).toEqual({ ...BASE, params: {}, files: [] });
    expect('inputPath' in back).toBe(false);
  });

  it('parameters of every kind come back equal', () => {
    const params: StepParams = {
      text: 'hello',
      empty: '',
      int: 42,
      negative: -7,
      zero: 0,
      maxSafe: Number.MAX_SAFE_INTEGER,
      minSafe: Number.MIN_SAFE_INTEGER,
      fraction: 0.1,
      tiny: 5e-324,
      huge: 1.7976931348623157e308,
      unsafeInteger: 2 ** 60,
      yes: true,
      no: false,
      list: [1, 'two', 3.5, false, [], {}],
      map: { a: { b: { c: [1, { d: 'deep' }] } } },
      'key with spaces': 'ok',
      '': 'empty key',
    };
    expect(paramsRoundTrip(params)).toEqual(params);
  });

  it('unicode in keys and values, including astral characters and NUL, comes back exactly', () => {
    const params = { 'naïve': 'ü', '日本': '語', '\u{1f600}': '\u{1f4a9}\u{10ffff}', nul: 'a\0b', rtl: '\u202eabc' };
    expect(paramsRoundTrip(params)).toEqual(params);
  });

  it('a safe integer travels as an i64 and a fraction as a double, and 1.0 comes back as 1', () => {
    const msg = encodeStepRequest({ ...BASE, params: { i: 3, d: 3.5, one: 1.0 } });
    expect(msg.params!.i.integer).not.toBeNull();
    expect(msg.params!.d.number).toBe(3.5);
    expect(paramsRoundTrip({ one: 1.0 })).toEqual({ one: 1 });
  });

  it('doubles a few ulps above a power of two come back exactly (Thrift\'s own writeDouble gets some wrong)', () => {
    // Found by the fuzzer: 2^-1019 * (1 + 2^-51).
    const found = 1.780059086805762e-307;
    expect(paramsRoundTrip({ x: found })).toEqual({ x: found });
    const near: number[] = [];
    for (let k = -1021; k <= -29; k++) for (let j = 1; j < 8; j++) near.push(2 ** k * (1 + j * 2 ** -52));
    expect(paramsRoundTrip({ near })).toEqual({ near });
  });

  it("positive control: Thrift's JS compact writer itself miscodes that double (CompactWriter, protocol/compact-writer.ts, writes it exactly)", () => {
    const msg = encodeStepRequest({ ...BASE, params: { x: 1.780059086805762e-307 } });
    // Thrift's writer as it comes.
    let raw: Buffer | undefined;
    const transport = new thrift.TFramedTransport(undefined, (buf?: Buffer) => (raw = buf));
    const protocol = new thrift.TCompactProtocol(transport);
    msg.write(protocol);
    protocol.flush();
    const viaThrift = decodeStepRequest(decodeMessage(raw!, StepRequestMessage, { maxBytes: MAX }));
    expect(viaThrift.params.x).toBe(8.900295434028813e-308);
  });

  it('property: any finite double comes back exactly (fast-check, 2,000 cases)', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        expect(Object.is(paramsRoundTrip({ x }).x, Object.is(x, -0) ? 0 : x)).toBe(true);
      }),
      { numRuns: 2000, seed: 0xd0b1e },
    );
  });

  it('-0 comes back as 0 (documented: the sign of zero is not kept)', () => {
    expect(Object.is(paramsRoundTrip({ z: -0 }).z, 0)).toBe(true);
  });

  it('a bigint in the i64 range comes back as a number when safe, else as the same bigint', () => {
    expect(paramsRoundTrip({ small: 5n, max: 2n ** 63n - 1n, min: -(2n ** 63n), past: 2n ** 53n })).toEqual({ small: 5, max: 2n ** 63n - 1n, min: -(2n ** 63n), past: 2n ** 53n });
  });

  it(`lists and objects nest ${MAX_PARAM_DEPTH} deep`, () => {
    expect(paramsRoundTrip({ deep: nested(MAX_PARAM_DEPTH) })).toEqual({ deep: nested(MAX_PARAM_DEPTH) });
    let obj: ParamJs = 'leaf';
    for (let i = 0; i < MAX_PARAM_DEPTH; i++) obj = { k: obj };
    expect(paramsRoundTrip({ obj })).toEqual({ obj });
  });

  it('a 10,000-element list and a 1,000-key object round-trip', () => {
    const params = { list: Array.from({ length: 10_000 }, (_, i) => i), obj: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, `v${i}`])) };
    expect(paramsRoundTrip(params)).toEqual(params);
  });

  it('a key named like an Object.prototype member ("constructor", "toString") is an ordinary key', () => {
    const params = { constructor: 'c', toString: 1, valueOf: [true] } as unknown as StepParams;
    const back = paramsRoundTrip(params);
    expect(Object.keys(back)).toEqual(['constructor', 'toString', 'valueOf']);
    expect(back.constructor).toBe('c');
  });

  it('property: any StepParams of JSON-like values round-trips (fast-check, 500 cases)', () => {
    const key = fc.string({ maxLength: 8, unit: 'binary' }).filter((k) => k !== '__proto__' && k !== 'hasOwnProperty');
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', maxDepth: 6 },
        fc.string({ unit: 'binary' }),
        fc.integer(),
        fc.maxSafeInteger(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        fc.boolean(),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(key, tie('value'), { maxKeys: 4 }),
      ),
    }));
    /** What the wire gives back: -0 as 0, a safe bigint as a number. */
    const expected = (v: unknown): unknown => {
      if (Object.is(v, -0)) return 0;
      if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      if (Array.isArray(v)) return v.map(expected);
      if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expected(x)]));
      return v;
    };
    fc.assert(
      fc.property(fc.dictionary(key, value as fc.Arbitrary<ParamJs>, { maxKeys: 5 }), (params) => {
        expect(paramsRoundTrip(params)).toEqual(expected(params));
      }),
      { numRuns: 500, seed: 0x57e9 },
    );
  });
});

describe('encodeStepRequest refuses, with a TypeError naming the path', () => {
  const refuses = (params: unknown, message: string) => expect(() => encodeStepRequest({ ...BASE, params: params as StepParams })).toThrow(new TypeError(message));

  it('undefined, null, a function, a symbol', () => {
    refuses({ a: { b: [0, 1, 2, undefined] } }, 'Expected params.a.b[3] to be a string, number, bigint, boolean, array or plain object, got undefined');
    refuses({ a: null }, 'Expected params.a to be a string, number, bigint, boolean, array or plain object, got null');
    refuses({ f: () => 1 }, 'Expected params.f to be a string, number, bigint, boolean, array or plain object, got function');
    refuses({ s: Symbol('x') }, 'Expected params.s to be a string, number, bigint, boolean, array or plain object, got symbol');
  });

  it('a hole in a sparse array', () => {
    // eslint-disable-next-line no-sparse-arrays
    refuses({ list: [1, , 3] }, 'Expected params.list[1] to be a string, number, bigint, boolean, array or plain object, got undefined');
  });

  it('NaN and ±Infinity', () => {
    refuses({ x: NaN }, 'Expected params.x to be a finite number, got NaN');
    refuses({ x: [Infinity] }, 'Expected params.x[0] to be a finite number, got Infinity');
    refuses({ 'a b': { c: -Infinity } }, 'Expected params["a b"].c to be a finite number, got -Infinity');
  });

  it('a bigint outside the i64 range', () => {
    refuses({ big: 2n ** 63n }, 'Expected params.big to be within the i64 range, got the bigint 9223372036854775808');
    refuses({ big: -(2n ** 63n) - 1n }, 'Expected params.big to be within the i64 range, got the bigint -9223372036854775809');
  });

  it('objects that are not plain: a Date, a Map, a Buffer, a class instance', () => {
    refuses({ d: new Date(0) }, 'Expected params.d to be a string, number, bigint, boolean, array or plain object, got an object (Date)');
    refuses({ m: new Map() }, 'Expected params.m to be a string, number, bigint, boolean, array or plain object, got an object (Map)');
    refuses({ b: Buffer.from('x') }, 'Expected params.b to be a string, number, bigint, boolean, array or plain object, got an object (Buffer)');
    class Point {
      x = 1;
    }
    refuses({ p: new Point() }, 'Expected params.p to be a string, number, bigint, boolean, array or plain object, got an object (Point)');
  });

  it(`nesting deeper than ${MAX_PARAM_DEPTH}, and a circular structure`, () => {
    refuses({ deep: nested(MAX_PARAM_DEPTH + 1) }, `Expected params.deep${'[0]'.repeat(MAX_PARAM_DEPTH)} to be at most ${MAX_PARAM_DEPTH} lists or objects deep, but it nests deeper (or is circular)`);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => encodeStepRequest({ ...BASE, params: { loop } as unknown as StepParams })).toThrow(/^Expected params\.loop(\.self)+ to be at most 32 lists or objects deep, but it nests deeper \(or is circular\)$/);
  });

  it('a lone surrogate in a value or a key', () => {
    refuses({ s: 'a\ud800b' }, 'Expected params.s to be well-formed UTF-16, got a string with a lone surrogate (UTF-8 cannot carry it)');
    refuses({ ['\udc00']: 1 }, 'Expected params to be free of keys that are not well-formed UTF-16 (a key has a lone surrogate)');
  });

  it('the keys "__proto__" and "hasOwnProperty", which Thrift\'s JS map code cannot carry', () => {
    refuses(JSON.parse('{"__proto__": 1}'), 'Expected params to be free of the key "__proto__" (Thrift\'s JS map code cannot carry it)');
    refuses({ a: { hasOwnProperty: 1 } }, 'Expected params.a to be free of the key "hasOwnProperty" (Thrift\'s JS map code cannot carry it)');
  });

  it('params that are not a plain object', () => {
    expect(() => encodeStepRequest({ ...BASE, params: [1] as unknown as StepParams })).toThrow(new TypeError('Expected `params` to be a plain object, got an array'));
  });

  it('paths that are relative, not normalized, or hold NUL; file names that leave the input directory', () => {
    expect(() => encodeStepRequest({ ...BASE, module: 'steps/a.mjs' })).toThrow(new TypeError('Expected `module` to be an absolute path, got "steps/a.mjs"'));
    expect(() => encodeStepRequest({ ...BASE, outputPath: '/output/../etc/passwd' })).toThrow(new TypeError('Expected `outputPath` to be a normalized path (no ".", ".." or "//"), got "/output/../etc/passwd"'));
    expect(() => encodeStepRequest({ ...BASE, inputPath: '/input/a\0b' })).toThrow(new TypeError('Expected `inputPath` to be a path without NUL bytes'));
    expect(() => encodeStepRequest({ ...BASE, module: undefined as unknown as string })).toThrow(new TypeError('Expected `module` to be an absolute path, got undefined'));
    expect(() => encodeStepRequest({ ...BASE, module: `/${'a'.repeat(5000)}` })).toThrow(new TypeError('Expected `module` to be at most 4096 bytes long'));
    expect(() => encodeStepRequest({ ...BASE, files: ['../secret'] })).toThrow(new TypeError('Expected `files[0]` to be a normalized path relative to the input directory, inside it, got "../secret"'));
    expect(() => encodeStepRequest({ ...BASE, files: ['ok', '/etc/passwd'] })).toThrow(new TypeError('Expected `files[1]` to be a normalized path relative to the input directory, inside it, got "/etc/passwd"'));
    expect(() => encodeStepRequest({ ...BASE, files: ['a/./b'] })).toThrow(/files\[0\]/);
    expect(() => encodeStepRequest({ ...BASE, files: [''] })).toThrow(new TypeError('Expected `files[0]` to be a non-empty file name, got the string ""'));
  });
});

describe('decodeStepRequest refuses, with ProtocolError invalid naming the field', () => {
  /** A wire StepRequest built field by field, bypassing encodeStepRequest's checks. */
  function raw(fields: Partial<Record<'modulePath' | 'outputPath' | 'inputPath', unknown>> & { params?: unknown; files?: unknown }) {
    const m = new StepRequestMessage();
    Object.assign(m, { modulePath: '/m.mjs', outputPath: '/o.arrow', ...fields });
    return decodeMessage(encodeFrame(m, MAX), StepRequestMessage, { maxBytes: MAX }) as StepGen.StepRequest;
  }

  it('a request missing its required modulePath or outputPath', () => {
    expectProtocolError(() => decodeStepRequest(raw({ modulePath: null })), 'invalid', 'StepRequest.modulePath must be an absolute path, got null');
    expectProtocolError(() => decodeStepRequest(raw({ outputPath: null })), 'invalid', 'StepRequest.outputPath must be an absolute path, got null');
  });

  it('a relative or unnormalized path, and a file name outside the input directory', () => {
    expectProtocolError(() => decodeStepRequest(raw({ modulePath: 'rel.mjs' })), 'invalid', 'StepRequest.modulePath must be an absolute path, got "rel.mjs"');
    expectProtocolError(() => decodeStepRequest(raw({ inputPath: '/a/../b' })), 'invalid', 'StepRequest.inputPath must be a normalized path');
    expectProtocolError(() => decodeStepRequest(raw({ files: ['..'] })), 'invalid', 'StepRequest.files[0] must be a normalized path relative to the input directory, inside it, got ".."');
  });

  it('a ParamValue with no member, or with two', () => {
    const none = new (encodeStepRequest({ ...BASE, params: { a: 1 } }).params!.a.constructor as new () => object)();
    expectProtocolError(() => decodeStepRequest(raw({ params: { a: none } })), 'invalid', 'StepRequest.params.a must have exactly one of text, integer, number, flag, items, entries; found none');
    const two = encodeStepRequest({ ...BASE, params: { a: 'x' } }).params!.a;
    two.flag = true;
    expectProtocolError(() => decodeStepRequest(raw({ params: { a: two } })), 'invalid', 'StepRequest.params.a must have exactly one of text, integer, number, flag, items, entries; found text, flag');
  });

  it('a NaN or infinite double', () => {
    const p = encodeStepRequest({ ...BASE, params: { a: [0.5] } }).params!;
    p.a.items![0].number = NaN;
    expectProtocolError(() => decodeStepRequest(raw({ params: p })), 'invalid', 'StepRequest.params.a[0] number must be finite, got NaN');
    p.a.items![0].number = -Infinity;
    expectProtocolError(() => decodeStepRequest(raw({ params: p })), 'invalid', 'got -Infinity');
  });

  it(`parameters nested deeper than ${MAX_PARAM_DEPTH} (but within the decoder's 64 structs)`, () => {
    // Built on the wire by hand: encodeStepRequest would refuse it.
    const levels = MAX_PARAM_DEPTH + 1;
    const payload = [field(1, CT.BINARY), ...compactString('/m'), 0x1b, 1, 0x8c, ...compactString('a'), ...Array(levels).fill([0x59, 0x1c]).flat(), 0x15, 0x02, CT.STOP, ...Array(levels).fill(CT.STOP), field(2, CT.BINARY), ...compactString('/o'), CT.STOP];
    const msg = decodeMessage(frameOf(payload), StepRequestMessage, { maxBytes: MAX, expectEnd: true });
    expectProtocolError(() => decodeStepRequest(msg), 'invalid', `StepRequest.params.a${'[0]'.repeat(MAX_PARAM_DEPTH)} nests deeper than ${MAX_PARAM_DEPTH} lists or objects`);
  });

  it('a "__proto__" key on the wire, which the generated reader turns into a prototype', () => {
    // params = { "__proto__": { integer: 1 } }, written by hand.
    const payload = [field(1, CT.BINARY), ...compactString('/m'), 0x1b, 1, 0x8c, ...compactString('__proto__'), 0x16, 0x02, CT.STOP, field(2, CT.BINARY), ...compactString('/o'), CT.STOP];
    const msg = decodeMessage(frameOf(payload), StepRequestMessage, { maxBytes: MAX, expectEnd: true }) as StepGen.StepRequest;
    expect(Object.keys(msg.params!)).toEqual([]);
    expectProtocolError(() => decodeStepRequest(msg), 'invalid', 'StepRequest.params has a "__proto__" key, which is not allowed');
    expect(({} as Record<string, unknown>).integer, 'Object.prototype is untouched').toBeUndefined();
  });

  it('a StepResult read as a StepRequest', () => {
    const msg = decodeMessage(encodeFrame(stepResultOk({ rows: 1, columns: 1 }), MAX), StepRequestMessage, { maxBytes: MAX });
    expectProtocolError(() => decodeStepRequest(msg), 'invalid', 'StepRequest.modulePath must be an absolute path, got null');
  });
});

describe('StepResult', () => {
  it('an ok result round-trips with its warnings and summary', () => {
    const r = { rows: 200_000, columns: 4, warnings: ['dropped 3 rows', 'ü'], summary: { region: 'north', '日本': '語' } };
    expect(resultRoundTrip(stepResultOk(r))).toEqual({ ok: true, ...r });
  });

  it('an ok result without warnings or summary gets [] and {}', () => {
    expect(resultRoundTrip(stepResultOk({ rows: 0, columns: 0 }))).toEqual({ ok: true, rows: 0, columns: 0, warnings: [], summary: {} });
  });

  it('rows up to Number.MAX_SAFE_INTEGER', () => {
    expect(resultRoundTrip(stepResultOk({ rows: Number.MAX_SAFE_INTEGER, columns: 2 ** 31 - 1 }))).toMatchObject({ rows: Number.MAX_SAFE_INTEGER, columns: 2 ** 31 - 1 });
  });

  it('an error result round-trips its message', () => {
    expect(resultRoundTrip(stepResultError('TypeError: x is not a function\n    at step (/steps/a.mjs:3:9)'))).toEqual({ ok: false, message: 'TypeError: x is not a function\n    at step (/steps/a.mjs:3:9)' });
  });

  it('stepResultError cuts a message past 64 KiB at a character boundary, saying how much it cut', () => {
    const long = '€'.repeat(30_000); // 90,000 bytes
    const back = resultRoundTrip(stepResultError(long));
    expect(back.ok).toBe(false);
    const message = (back as { message: string }).message;
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(STEP_RESULT_LIMITS.messageBytes);
    expect(message).toMatch(/^€+\n… \(\d+ more bytes cut\)$/);
    const kept = Buffer.byteLength(message.slice(0, message.indexOf('\n')));
    expect(Number(/\((\d+) more/.exec(message)![1])).toBe(90_000 - kept);
  });

  it('the largest valid ok result fits in MAX_STEP_RESULT_BYTES', () => {
    const L = STEP_RESULT_LIMITS;
    const big = stepResultOk({
      rows: Number.MAX_SAFE_INTEGER,
      columns: 2 ** 31 - 1,
      warnings: Array.from({ length: L.warnings }, (_, i) => `${i}`.padEnd(L.warningBytes, 'w')),
      summary: Object.fromEntries(Array.from({ length: L.summaryEntries }, (_, i) => [`${i}`.padEnd(L.summaryKeyBytes, 'k'), 'v'.repeat(L.summaryValueBytes)])),
    });
    expect(encodeFrame(big, MAX).length - 4).toBeLessThanOrEqual(MAX_STEP_RESULT_BYTES);
    expect(resultRoundTrip(big)).toMatchObject({ ok: true });
  });

  it('stepResultOk refuses values past the limits with a TypeError naming the field', () => {
    expect(() => stepResultOk({ rows: -1, columns: 1 })).toThrow(new TypeError('Expected `rows` to be an integer from 0 to 9007199254740991, got number -1'));
    expect(() => stepResultOk({ rows: 1.5, columns: 1 })).toThrow(/`rows`/);
    expect(() => stepResultOk({ rows: 1, columns: 2 ** 31 })).toThrow(new TypeError('Expected `columns` to be an integer from 0 to 2147483647, got number 2147483648'));
    expect(() => stepResultOk({ rows: 1, columns: 1, warnings: Array(101).fill('w') })).toThrow(new TypeError('Expected `warnings` to be at most 100 strings, got 101'));
    expect(() => stepResultOk({ rows: 1, columns: 1, warnings: ['x'.repeat(1025)] })).toThrow(new TypeError('Expected `warnings[0]` to be at most 1024 bytes of UTF-8, got 1025'));
    expect(() => stepResultOk({ rows: 1, columns: 1, summary: { ['k'.repeat(129)]: 'v' } })).toThrow(new TypeError('Expected `summary` to be keyed by strings of at most 128 bytes of UTF-8, got a key of 129'));
    expect(() => stepResultOk({ rows: 1, columns: 1, summary: { hasOwnProperty: 'v' } })).toThrow(new TypeError('Expected `summary` to be free of the key "hasOwnProperty" (Thrift\'s JS map code cannot carry it)'));
  });
});

describe('decodeStepResult refuses, with ProtocolError invalid naming the field', () => {
  /** A wire StepResult with these members, bypassing the builders' checks. */
  function raw(members: { ok?: Record<string, unknown>; error?: Record<string, unknown> }) {
    const m = new StepResultMessage();
    const okTemplate = stepResultOk({ rows: 1, columns: 1 }).ok!;
    const errTemplate = stepResultError('e').error!;
    if (members.ok) m.ok = Object.assign(Object.create(Object.getPrototypeOf(okTemplate)), okTemplate, members.ok);
    if (members.error) m.error = Object.assign(Object.create(Object.getPrototypeOf(errTemplate)), errTemplate, members.error);
    return decodeMessage(encodeFrame(m, 16 * MAX), StepResultMessage, { maxBytes: 16 * MAX });
  }

  it('no member (an empty struct), and both members', () => {
    expectProtocolError(() => decodeStepResult(decodeMessage(frameOf([CT.STOP]), StepResultMessage, { maxBytes: MAX })), 'invalid', 'StepResult must have exactly one of ok, error; found none');
    expectProtocolError(() => decodeStepResult(raw({ ok: {}, error: {} })), 'invalid', 'StepResult must have exactly one of ok, error; found ok, error');
  });

  it('only an unknown member: skipped by the decoder, so none', () => {
    expectProtocolError(() => decodeStepResult(decodeMessage(frameOf([field(9, CT.I32), 2, CT.STOP]), StepResultMessage, { maxBytes: MAX })), 'invalid', 'found none');
  });

  it('a StepRequest read as a StepResult: its fields are skipped, so no member', () => {
    const msg = decodeMessage(encodeFrame(encodeStepRequest({ ...BASE, params: { a: [1, { b: 'c' }] }, files: ['f'] }), MAX), StepResultMessage, { maxBytes: MAX, expectEnd: true });
    expectProtocolError(() => decodeStepResult(msg), 'invalid', 'StepResult must have exactly one of ok, error; found none');
  });

  it('missing rows or columns, negative or unsafe rows', () => {
    expectProtocolError(() => decodeStepResult(raw({ ok: { rows: null } })), 'invalid', 'StepOk.rows must be an integer from 0 to 9007199254740991, got null');
    expectProtocolError(() => decodeStepResult(raw({ ok: { columns: null } })), 'invalid', 'StepOk.columns must be an integer from 0 to 2147483647, got null');
    expectProtocolError(() => decodeStepResult(raw({ ok: { rows: -5 } })), 'invalid', 'StepOk.rows must be an integer from 0 to 9007199254740991, got number -5');
    expectProtocolError(() => decodeStepResult(raw({ ok: { columns: -1 } })), 'invalid', 'StepOk.columns must be an integer from 0 to 2147483647, got number -1');
    // 2^60 rows, written as an i64 by hand: field 1, zigzag varint of 2^60.
    const zigzag = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20];
    const payload = [field(1, CT.STRUCT), field(1, 0x06), ...zigzag, field(1, CT.I32), 0x02, CT.STOP, CT.STOP];
    expectProtocolError(() => decodeStepResult(decodeMessage(frameOf(payload), StepResultMessage, { maxBytes: MAX })), 'invalid', 'StepOk.rows must be an integer from 0 to 9007199254740991, got the bigint 1152921504606846976');
  });

  it('too many warnings or summary entries, or strings too long', () => {
    expectProtocolError(() => decodeStepResult(raw({ ok: { warnings: Array(101).fill('w') } })), 'invalid', 'StepOk.warnings must be at most 100 strings, got 101');
    expectProtocolError(() => decodeStepResult(raw({ ok: { warnings: ['ok', 'x'.repeat(5000)] } })), 'invalid', 'StepOk.warnings[1] must be at most 1024 bytes of UTF-8, got 5000');
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, 'v']));
    expectProtocolError(() => decodeStepResult(raw({ ok: { summary: many } })), 'invalid', 'StepOk.summary must be at most 100 entries, got 101');
    expectProtocolError(() => decodeStepResult(raw({ ok: { summary: { k: 'v'.repeat(2000) } } })), 'invalid', 'StepOk.summary.k must be at most 1024 bytes of UTF-8, got 2000');
  });

  it('an error message past 64 KiB, or missing', () => {
    expectProtocolError(() => decodeStepResult(raw({ error: { message: 'm'.repeat(64 * 1024 + 1) } })), 'invalid', `StepFailure.message is ${64 * 1024 + 1} bytes; at most 65536 are allowed`);
    expectProtocolError(() => decodeStepResult(raw({ error: { message: null } })), 'invalid', 'StepFailure.message is required and must be a string');
  });

  it('a summary key "hasOwnProperty" from a hostile step, which could not be re-encoded', () => {
    // map<string,string> { "hasOwnProperty": "x" }, written by hand (the builder refuses it).
    const payload = [field(1, CT.STRUCT), field(1, 0x06), 0x02, field(1, CT.I32), 0x02, field(2, 0x0b), 1, 0x88, ...compactString('hasOwnProperty'), ...compactString('x'), CT.STOP, CT.STOP];
    expectProtocolError(() => decodeStepResult(decodeMessage(frameOf(payload), StepResultMessage, { maxBytes: MAX })), 'invalid', 'StepOk.summary must be free of the key "hasOwnProperty"');
  });

  it('a summary key "__proto__" from a hostile step is dropped by the generated reader, and the prototype is untouched', () => {
    const payload = [field(1, CT.STRUCT), field(1, 0x06), 0x02, field(1, CT.I32), 0x02, field(2, 0x0b), 1, 0x88, ...compactString('__proto__'), ...compactString('x'), CT.STOP, CT.STOP];
    const back = decodeStepResult(decodeMessage(frameOf(payload), StepResultMessage, { maxBytes: MAX }));
    expect(back).toEqual({ ok: true, rows: 1, columns: 1, warnings: [], summary: {} });
    expect(Object.getPrototypeOf((back as { summary: object }).summary)).toBe(Object.prototype);
  });
});
