// Example step: filter a table of sales, derive a column, aggregate by region.
// A step is a module whose default export takes an apache-arrow Table and the step's
// parameters and returns a Table (or a promise of one). It runs in a sandboxed child: it sees
// its input table (mapped, not copied), its own module's directory, and nothing else.
import { tableFromArrays } from 'apache-arrow';

export default function salesSummary(sales, { minUnits = 5 } = {}) {
  const region = sales.getChild('region');
  const units = sales.getChild('units').toArray();
  const price = sales.getChild('price').toArray();
  // Dictionary-encoded regions: aggregate on the dictionary indices, name them at the end.
  const keys = region.data.map((d) => d.values);
  const names = region.data[0].dictionary.toArray();
  const orders = new Int32Array(names.length);
  const unitSum = new Int32Array(names.length);
  const revenue = new Float64Array(names.length);
  let row = 0;
  for (const chunk of keys) {
    for (let i = 0; i < chunk.length; i++, row++) {
      if (units[row] < minUnits) continue;
      const k = chunk[i];
      orders[k] += 1;
      unitSum[k] += units[row];
      revenue[k] += units[row] * price[row]; // the derived column, summed
    }
  }
  console.log(`sales-summary: ${row} rows in, ${orders.reduce((a, b) => a + b, 0)} orders of ${minUnits}+ units`);
  return tableFromArrays({
    region: names,
    orders,
    units: unitSum,
    revenue: Float64Array.from(revenue, (r) => Math.round(r * 100) / 100),
  });
}
