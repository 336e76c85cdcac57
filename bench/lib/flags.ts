// Command-line flag parsing shared by the bench scripts.
import { InvalidArgumentError } from 'commander';

/** commander parser for flags that take a count of at least 1. */
export function positiveInt(value: string): number {
  return integerAtLeast(value, 1);
}

/** commander parser for counts where 0 skips the thing counted. */
export function nonNegativeInt(value: string): number {
  return integerAtLeast(value, 0);
}

function integerAtLeast(value: string, min: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < min) {
    throw new InvalidArgumentError(`expected ${min === 0 ? 'a non-negative' : 'a positive'} integer, got ${JSON.stringify(value)}`);
  }
  return n;
}
