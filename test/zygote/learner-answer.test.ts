// zygote/prefault.ts: a prefault learner's answer on its claim socket, its word and the pages
// it read (native/pretouch.cc), as the zygote reads it: ranges are whole pages, in order, apart,
// below 2^47; anything else is dropped and the word kept.
import { describe, expect, it } from 'vitest';
import { decodeLearnerAnswer, encodeLearnerAnswer, MAX_LEARNER_ANSWER_BYTES } from '../../dist/zygote/prefault.js';

const PAGE = 4096;

describe("a learner's answer", () => {
  it('round-trips its word and its ranges', () => {
    const ranges = [0x7f00_0000_0000, 3 * PAGE, 0x7f00_0001_0000, PAGE];
    expect(decodeLearnerAnswer(encodeLearnerAnswer('rehearsed', ranges))).toEqual({ said: 'rehearsed', accessed: ranges });
    expect(decodeLearnerAnswer(encodeLearnerAnswer('failed', []))).toEqual({ said: 'failed', accessed: [] });
    // The plain word, as a learner of an older build said it.
    expect(decodeLearnerAnswer(Buffer.from('rehearsed'))).toEqual({ said: 'rehearsed', accessed: [] });
  });

  it('fits its packet at the most a learner sends: 8,192 ranges', () => {
    const ranges = Array.from({ length: 8192 }, (_, i) => [(i * 2 + 1) * PAGE, PAGE]).flat();
    expect(encodeLearnerAnswer('rehearsed', ranges).length).toBeLessThanOrEqual(MAX_LEARNER_ANSWER_BYTES);
  });

  it.each([
    ['a length not a multiple of 16 bytes', Buffer.concat([Buffer.from('rehearsed\n'), Buffer.alloc(12)])],
    ['a start not on a page', encodeLearnerAnswer('rehearsed', [PAGE + 8, PAGE])],
    ['an empty range', encodeLearnerAnswer('rehearsed', [PAGE, 0])],
    ['a length not whole pages', encodeLearnerAnswer('rehearsed', [PAGE, 100])],
    ['ranges out of order', encodeLearnerAnswer('rehearsed', [4 * PAGE, PAGE, PAGE, PAGE])],
    ['overlapping ranges', encodeLearnerAnswer('rehearsed', [PAGE, 2 * PAGE, 2 * PAGE, PAGE])],
    ['a range past 2^47', encodeLearnerAnswer('rehearsed', [2 ** 47 - PAGE, 2 * PAGE])],
    ['a NaN', encodeLearnerAnswer('rehearsed', [Number.NaN, PAGE])],
    ['a negative start', encodeLearnerAnswer('rehearsed', [-PAGE, PAGE])],
  ])('drops its ranges, keeping its word, on %s', (_, data) => {
    expect(decodeLearnerAnswer(data)).toEqual({ said: 'rehearsed', accessed: [] });
  });
});
