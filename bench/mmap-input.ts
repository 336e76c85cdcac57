// npm run bench:mmap: how fast a sandboxed step can start on a 1 GiB Arrow input. The step
// runner maps its input (no copy, page cache, not the child's anonymous memory); the
// alternative reads the file into the child's memory. Both measured inside the child, on the
// same file, under the same sandbox; the mapped run also under a 256 MiB memory limit.
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { makeVector, RecordBatch, RecordBatchFileWriter, Table } from 'apache-arrow';
import { runStep, startZygote, stepRunner } from 'zygote';
import { fixtureUrl } from './lib/paths.js';

const STEP = fileURLToPath(fixtureUrl('steps/first-row.mjs'));
/** File size: 1 GiB, or BENCH_MMAP_BYTES for a comparison. */
const GIB = Number(process.env.BENCH_MMAP_BYTES ?? 1024 ** 3);
/** Rows per record batch: 2 Mi (16 MiB of float64), or BENCH_MMAP_BATCH_ROWS. */
const BATCH_ROWS = Number(process.env.BENCH_MMAP_BATCH_ROWS ?? 1 << 21);
const RUNS = Number(process.env.BENCH_MMAP_RUNS ?? 5);

async function writeBigFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path, { mode: 0o644 });
  const writer = new RecordBatchFileWriter();
  writer.pipe(out);
  const batches = Math.ceil(bytes / (BATCH_ROWS * 8));
  for (let b = 0; b < batches; b++) {
    const x = new Float64Array(BATCH_ROWS);
    for (let i = 0; i < x.length; i++) x[i] = b * BATCH_ROWS + i;
    writer.write(new Table({ x: makeVector(x) }).batches[0] as RecordBatch);
    await new Promise((r) => setImmediate(r));
  }
  writer.finish();
  await once(out, 'close');
}

const dir = mkdtempSync('/var/tmp/zygote-bench-mmap-');
try {
  const path = join(dir, 'big.arrow');
  const t0 = performance.now();
  await writeBigFile(path, GIB);
  console.log(`wrote a 1 GiB Arrow file (${GIB / 8 / 2 ** 20} Mi float64 rows) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const z = await startZygote({ main: stepRunner, preload: ['apache-arrow'] });
  const run = async (how: 'map' | 'read', memoryBytes?: number) => {
    const out = await runStep(z, { module: STEP, input: path, params: { how, path: '/input/input.arrow' }, limits: { wallTimeMs: 120_000, ...(memoryBytes ? { memoryBytes } : {}) } });
    if (!out.ok) return { error: `${out.error.kind}: ${out.error.message.split('\n')[0]}` };
    out.release();
    return JSON.parse(out.stderr.text.trim().split('\n').pop()!) as { ms: number; anonMiB: number; rows: number };
  };
  const results: Record<string, unknown>[] = [];
  for (let i = 0; i < RUNS; i++) {
    results.push({ run: i + 1, ...(await run('map', 256 * 2 ** 20)), how: 'map, 256 MiB limit' });
    results.push({ run: i + 1, ...(await run('read')), how: 'read into memory' });
  }
  console.table(results);
  await z.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
