// The varint reads that replace thrift's in decoding (protocol/compact-varint.ts) read what
// thrift's TCompactProtocol reads from any bytes: the same numbers, the same Int64s, the same
// errors, on random byte strings and on every varint length and edge.
import fc from 'fast-check';
import thrift from 'thrift';
import { describe, expect, it } from 'vitest';
import { withCompactVarintReads } from '../../dist/protocol/compact-varint.js';

type Reader = thrift.TCompactProtocol & { readVarint32(): number };
const READS = ['readI16', 'readI32', 'readI64', 'readVarint32'] as const;

/** What a sequence of reads gives: each value (an Int64 as its hex), or the error that ended it. */
function readAll(bytes: Buffer, order: number[], ours: boolean): string[] {
  const transport = new thrift.TFramedTransport(Buffer.from(bytes));
  let p = new thrift.TCompactProtocol(transport) as Reader;
  if (ours) p = withCompactVarintReads(p, transport) as Reader;
  const out: string[] = [];
  for (const k of order) {
    try {
      const v = (p[READS[k % READS.length]] as () => unknown).call(p);
      out.push(typeof v === 'number' ? `n:${Object.is(v, -0) ? '-0' : String(v)}` : `i64:${(v as { buffer: Buffer }).buffer.toString('hex')}`);
    } catch (err) {
      out.push(`err:${(err as Error).constructor.name}:${(err as Error).message}`);
      break;
    }
  }
  return out;
}

/** A varint of n bytes: every byte but the last with its continuation bit. */
const varintOf = (n: number, fill: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i < n - 1 ? 0x80 : 0) | ((fill + i * 37) & 0x7f)));

describe('compact varint reads match thrift TCompactProtocol', () => {
  it('every length from 1 to 11 bytes, every kind of read, low and high bits set', () => {
    for (let n = 1; n <= 11; n++) {
      for (const fill of [0, 1, 0x7f, 0x55]) {
        for (let k = 0; k < READS.length; k++) {
          const bytes = varintOf(n, fill);
          expect(readAll(bytes, [k], true), `${READS[k]} of ${bytes.toString('hex')}`).toEqual(readAll(bytes, [k], false));
        }
      }
    }
  });

  it('the edges: 2^53 and beyond as infinite varint32s, i64 extremes, a truncated varint', () => {
    const edges = ['80808080808080100', 'ffffffffffffffff7f', 'feffffffffffffffff01', 'ffffffffffffffffff01', '8080', 'ff'];
    for (const hex of edges) {
      for (let k = 0; k < READS.length; k++) {
        const bytes = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
        expect(readAll(bytes, [k, k], true), `${READS[k]} of ${hex}`).toEqual(readAll(bytes, [k, k], false));
      }
    }
  });

  it('property: random bytes read in a random order (fast-check, 3,000 cases)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.array(fc.nat(), { minLength: 1, maxLength: 12 }), (bytes, order) => {
        expect(readAll(Buffer.from(bytes), order, true)).toEqual(readAll(Buffer.from(bytes), order, false));
      }),
      { numRuns: 3000, seed: 0x7a71 },
    );
  });
});
