// runStep with an extra file and an output table: the renderer hands an untrusted step a table
// of orders and a reference file (sales targets, CSV), and gets back a validated table of
// revenue against target, with what the step logged.
//   npm run build && node dist/examples/run-step-files.js
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableFromArrays } from 'apache-arrow';
import { runStep, startZygote, stepRunner } from 'zygote';

const STEP = fileURLToPath(new URL('../../examples/steps/targets.mjs', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'zygote-files-example-'));
const targetsCsv = join(dir, 'targets.csv');
writeFileSync(targetsCsv, 'region,target\neast,350\nnorth,250\nsouth,90\nwest,300\n');
const orders = tableFromArrays({
  region: ['north', 'east', 'north', 'south', 'east', 'west', 'north'],
  units: Int32Array.from([5, 2, 8, 1, 10, 3, 1]),
  price: Float64Array.from([19.5, 45, 12.25, 99, 30, 60, 7.5]),
});

// The step runner as main, apache-arrow preloaded: each step forks warm.
const z = await startZygote({ main: stepRunner, preload: ['apache-arrow'] });
try {
  const out = await runStep(z, {
    module: STEP,
    input: orders,
    params: { currency: 'EUR' },
    // The step gets { files: { 'targets.csv': '/input/targets.csv' } }, read-only.
    files: { 'targets.csv': targetsCsv },
    limits: { wallTimeMs: 30_000 },
  });
  if (!out.ok) throw new Error(`the step failed (${out.error.kind}): ${out.error.message}\n${out.stderr.text}`);
  console.log(`step log: ${out.stderr.text.trim()}`);
  console.log(`output: ${out.result.rows} rows, ${out.result.columns} columns (${out.table.schema.fields.map((f) => `${f.name}: ${f.type}`).join(', ')})`);
  for (const row of out.table) console.log(`  ${row.region.padEnd(6)} revenue ${row.revenue.toFixed(2).padStart(7)}  target ${String(row.target).padStart(4)}  ${row.met ? 'met' : 'missed'}`);
  // The table views a read-only mapping of the step's output file: unmap it when done.
  out.release();
} finally {
  await z.close();
  rmSync(dir, { recursive: true, force: true });
}
