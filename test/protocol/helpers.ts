// Shared by the protocol unit tests: the generated Thrift classes, frames built by hand,
// and a small seeded PRNG for the property tests (no new dependencies).
import { createRequire } from 'node:module';
import { expect } from 'vitest';
import type * as Gen from '../../protocol/gen/zygote_types.cjs';
import { ProtocolError, type ProtocolErrorReason } from '../../dist/protocol/errors.js';

/** The Thrift generator's classes, loaded the way protocol/control.ts loads them. */
export const gen = createRequire(import.meta.url)('../../dist/protocol/gen/zygote_types.cjs') as typeof Gen;

/** A frame around payload, with a length prefix that tells the truth unless `declared` says otherwise. */
export function frameOf(payload: ArrayLike<number> | Buffer, declared?: number): Buffer {
  const body = Buffer.from(payload as ArrayLike<number>);
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(declared ?? body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Runs fn and returns the ProtocolError it throws, failing the test if it throws anything else or nothing. */
export function protocolErrorOf(fn: () => unknown): ProtocolError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a ProtocolError to be thrown').toBeInstanceOf(ProtocolError);
  return thrown as ProtocolError;
}

/** Asserts fn throws a ProtocolError with this reason and a message matching every pattern. */
export function expectProtocolError(fn: () => unknown, reason: ProtocolErrorReason, ...patterns: (RegExp | string)[]): ProtocolError {
  const err = protocolErrorOf(fn);
  expect(err.name).toBe('ProtocolError');
  expect(err.reason, `reason of "${err.message}"`).toBe(reason);
  for (const p of patterns) {
    if (typeof p === 'string') expect(err.message).toContain(p);
    else expect(err.message).toMatch(p);
  }
  return err;
}

/** mulberry32: a tiny deterministic PRNG, so a failing case can be replayed from its seed. */
export function prng(seed: number): { next(): number; int(n: number): number; byte(): number } {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), byte: () => Math.floor(next() * 256) };
}

/** Compact-protocol field header with a delta: (delta << 4) | type. */
export const CT = { STOP: 0x00, I32: 0x05, DOUBLE: 0x07, BINARY: 0x08, LIST: 0x09, STRUCT: 0x0c } as const;
export const field = (delta: number, type: number): number => (delta << 4) | type;

/** Compact-protocol zigzag varint of a small i32. */
export function zigzagVarint(n: number): number[] {
  let v = ((n << 1) ^ (n >> 31)) >>> 0;
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** Compact-protocol string: varint length then UTF-8 bytes. */
export function compactString(s: string): number[] {
  const bytes = [...Buffer.from(s, 'utf8')];
  let n = bytes.length;
  const len: number[] = [];
  while (n >= 0x80) {
    len.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  len.push(n);
  return [...len, ...bytes];
}
