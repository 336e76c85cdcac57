// Example step with an extra file: revenue per region against the targets in a CSV the renderer
// hands over (`files`). The step sees that file read-only at the path it is given, its input
// table, and nothing else of the renderer's; it returns a table, which the renderer validates.
import { readFileSync } from 'node:fs';
import { tableFromArrays } from 'apache-arrow';

export default function targets(orders, { currency = 'EUR' } = {}, { files }) {
  // targets.csv: "region,target" then one line per region.
  const target = new Map(
    readFileSync(files['targets.csv'], 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(','))
      .map(([region, t]) => [region, Number(t)]),
  );
  const revenue = new Map([...target.keys()].map((r) => [r, 0]));
  for (const row of orders) revenue.set(row.region, (revenue.get(row.region) ?? 0) + row.units * row.price);
  const regions = [...revenue.keys()].sort();
  console.log(`targets: ${orders.numRows} orders over ${regions.length} regions, in ${currency}`);
  return tableFromArrays({
    region: regions,
    revenue: Float64Array.from(regions, (r) => Math.round(revenue.get(r) * 100) / 100),
    target: Float64Array.from(regions, (r) => target.get(r) ?? 0),
    met: regions.map((r) => revenue.get(r) >= (target.get(r) ?? 0)),
  });
}
