// Example step: build a deterministic table of sales, filter it, derive a column, and
// aggregate by region with apache-arrow. Prints the summary as JSON on stdout.
import { tableFromArrays } from 'apache-arrow';

const REGIONS = ['north', 'south', 'east', 'west'];

/** A small deterministic PRNG (mulberry32), so every run crunches the same table. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export default function salesSummary(rows = 200_000, seed = 42) {
  const rand = prng(seed);
  const region = new Int32Array(rows);
  const units = new Int32Array(rows);
  const price = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    region[i] = Math.floor(rand() * REGIONS.length);
    units[i] = 1 + Math.floor(rand() * 20);
    price[i] = Math.round(rand() * 10_000) / 100;
  }
  const sales = tableFromArrays({ region, units, price });

  // Filter: orders of at least 5 units. Derive: revenue = units * price. Aggregate by region.
  const totals = REGIONS.map((name) => ({ region: name, orders: 0, units: 0, revenue: 0 }));
  const r = sales.getChild('region').toArray();
  const u = sales.getChild('units').toArray();
  const p = sales.getChild('price').toArray();
  for (let i = 0; i < sales.numRows; i++) {
    if (u[i] < 5) continue;
    const t = totals[r[i]];
    t.orders += 1;
    t.units += u[i];
    t.revenue += u[i] * p[i];
  }
  for (const t of totals) t.revenue = Math.round(t.revenue * 100) / 100;
  process.stdout.write(`${JSON.stringify({ rows: sales.numRows, byRegion: totals })}\n`);
}
