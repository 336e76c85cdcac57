// The limits an Arrow IPC file is validated against, and the refusal the validator throws inside
// (steps/arrow-file.ts turns it into an InvalidOutputError naming the file).
import { refuseUnknownKeys } from '../../protocol/options.js';

/** Caps on what an Arrow IPC file may hold; a file past one is refused with its own reason. */
export interface ArrowCaps {
  /** The largest file, in bytes ('too-large'). */
  maxBytes: number;
  /** The most top-level columns ('too-many-columns'). */
  maxColumns: number;
  /** The most rows, summed over all record batches ('too-many-rows'). */
  maxRows: number;
  /** The most record batches, and separately the most dictionary batches ('too-many-batches'). Default 10,000. */
  maxBatches?: number;
  /** The most fields in the schema, nested ones and dictionary values included ('too-many-columns'). Default 10,000. */
  maxFields?: number;
  /** The deepest nesting of types: a column is depth 1, its list's items depth 2 ('bad-schema'). Default 64, as Arrow C++. */
  maxDepth?: number;
  /**
   * The most values in all arrays together: every column, nested child and dictionary of every
   * batch ('too-many-values'). Default 2^32. Needed because a nested array of the Null type (or
   * a struct of them) may declare any length without a byte to back it, so the file size alone
   * does not bound how many values a reader can be made to walk.
   */
  maxValues?: number;
}

/** Caps with every field set. */
export type ResolvedArrowCaps = Required<ArrowCaps>;

/** Defaults: 1 GiB, 1,000 columns, 10 million rows, and the optional caps' defaults. */
export const DEFAULT_ARROW_CAPS: Readonly<ResolvedArrowCaps> = Object.freeze({
  maxBytes: 1 << 30,
  maxColumns: 1000,
  maxRows: 10_000_000,
  maxBatches: 10_000,
  maxFields: 10_000,
  maxDepth: 64,
  maxValues: 2 ** 32,
});

/** Fills in the optional caps; a cap that is not a non-negative integer is a TypeError naming it. */
export function resolveCaps(caps: ArrowCaps): ResolvedArrowCaps {
  if (caps === null || typeof caps !== 'object') throw new TypeError(`Expected the Arrow caps to be an object, got ${caps === null ? 'null' : typeof caps}`);
  refuseUnknownKeys(caps, Object.keys(DEFAULT_ARROW_CAPS), 'the Arrow caps');
  const out = { ...DEFAULT_ARROW_CAPS };
  for (const key of Object.keys(DEFAULT_ARROW_CAPS) as (keyof ResolvedArrowCaps)[]) {
    const v = caps[key];
    if (v === undefined && key !== 'maxBytes' && key !== 'maxColumns' && key !== 'maxRows') continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new TypeError(`Expected \`${key}\` to be a non-negative integer, got ${typeof v === 'number' ? `${v} (number)` : v === undefined ? 'undefined' : `a ${typeof v}`}`);
    }
    out[key] = v;
  }
  return out;
}

/** Why an Arrow file was refused (a subset of InvalidOutputReason). */
export type ArrowRefusalReason =
  | 'too-large'
  | 'not-arrow'
  | 'truncated'
  | 'bad-footer'
  | 'bad-schema'
  | 'too-many-columns'
  | 'too-many-rows'
  | 'too-many-batches'
  | 'too-many-values'
  | 'bad-batch'
  | 'bad-dictionary';

/** Thrown inside the validator; the message says what was wrong, without the file's name. */
export class ArrowRefusal extends Error {
  override name = 'ArrowRefusal';
  constructor(
    readonly reason: ArrowRefusalReason,
    message: string,
  ) {
    super(message);
  }
}

export function refuse(reason: ArrowRefusalReason, message: string): never {
  throw new ArrowRefusal(reason, message);
}
