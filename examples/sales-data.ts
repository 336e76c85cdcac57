// The demo's input: a deterministic table of sales (region, units, price), as a renderer
// would have loaded from its database.
import { makeVector, vectorFromArray, Dictionary, Table, Utf8, Int32 } from 'apache-arrow';

export const REGIONS = ['north', 'south', 'east', 'west', 'central'];

/** A small deterministic PRNG (mulberry32), so every run crunches the same table. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function salesTable(rows: number, seed = 42): Table {
  const rand = prng(seed);
  const region: string[] = new Array(rows);
  const units = new Int32Array(rows);
  const price = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    region[i] = REGIONS[Math.floor(rand() * REGIONS.length)]!;
    units[i] = 1 + Math.floor(rand() * 20);
    price[i] = Math.round(rand() * 10_000) / 100;
  }
  return new Table({
    region: vectorFromArray(region, new Dictionary(new Utf8(), new Int32())),
    units: makeVector(units),
    price: makeVector(price),
  });
}
