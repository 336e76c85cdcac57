// Time to the first row of a 1 GiB Arrow IPC file, each in a fresh node: mapArrowFile (a trusted
// input: mmap, metadata checks only), fs.readFileSync + tableFromIPC (a copy into memory), and
// readArrowOutput (an untrusted output: mmap and the full validation of every value).
//   node dist/bench/arrow-file.js [--bytes N] [--runs 5] [--cold]
// --cold drops the file's pages from the page cache before each run (dd iflag=nocache). Each
// child also opens the file a second time, with its code warm: the figure a zygote that ran
// the same path once before forking would give its children.
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RecordBatch, RecordBatchFileWriter, Table, Utf8, makeData, makeVector, type Data } from 'apache-arrow';

const { values } = parseArgs({ options: { bytes: { type: 'string', default: String(1024 ** 3) }, runs: { type: 'string', default: '5' }, cold: { type: 'boolean', default: false } } });
const TARGET = Number(values.bytes);
const RUNS = Number(values.runs);
const BATCH_ROWS = 1 << 20;
const NAME = 12; // "row-00000000"
const ROW_BYTES = 8 + 8 + 4 + NAME + 4;

/** One batch: id int64, value float64, code int32, name utf8 of 12 bytes. */
function batch(first: number, rows: number): RecordBatch {
  const id = new BigInt64Array(rows);
  const value = new Float64Array(rows);
  const code = new Int32Array(rows);
  const offsets = new Int32Array(rows + 1);
  const text = new Uint8Array(rows * NAME);
  for (let i = 0; i < rows; i++) {
    const n = first + i;
    id[i] = BigInt(n);
    value[i] = n / 7;
    code[i] = n % 1000;
    offsets[i + 1] = (i + 1) * NAME;
    text.set([0x72, 0x6f, 0x77, 0x2d], i * NAME); // "row-"
    for (let d = 0, x = n; d < 8; d++, x = Math.floor(x / 10)) text[i * NAME + 11 - d] = 0x30 + (x % 10);
  }
  const name = makeData({ type: new Utf8(), length: rows, nullCount: 0, valueOffsets: offsets, data: text }) as Data<Utf8>;
  return new Table({ id: makeVector(id) as never, value: makeVector(value) as never, code: makeVector(code) as never, name: makeVector(name) as never }).batches[0] as RecordBatch;
}

async function writeFile(path: string, bytes: number): Promise<number> {
  const out = createWriteStream(path, { mode: 0o644 });
  const writer = new RecordBatchFileWriter();
  writer.pipe(out);
  let rows = 0;
  while (rows * ROW_BYTES < bytes) {
    const n = Math.min(BATCH_ROWS, Math.ceil((bytes - rows * ROW_BYTES) / ROW_BYTES));
    writer.write(batch(rows, n));
    rows += n;
    await new Promise((r) => setImmediate(r));
  }
  writer.finish();
  await once(out, 'close');
  return rows;
}

const CLIENT = JSON.stringify(import.meta.resolve('zygote'));

/** The child: open the file the given way, read the first row, report time and memory. */
function childScript(how: string, dir: string, name: string): string {
  const path = JSON.stringify(join(dir, name));
  const open = {
    map: `mapArrowFile(${path}).table`,
    read: `tableFromIPC(readFileSync(${path}))`,
    validate: `readArrowOutput(${JSON.stringify(dir)}, ${JSON.stringify(name)}, { maxBytes: 2 ** 32, maxColumns: 10, maxRows: 2 ** 31 }).table`,
  }[how];
  return `import { readFileSync } from 'node:fs';
    import { tableFromIPC } from 'apache-arrow';
    import { mapArrowFile, readArrowOutput } from ${CLIENT};
    const kb = (k) => Number(new RegExp(k + ':\\\\s+(\\\\d+)').exec(readFileSync('/proc/self/status', 'utf8'))[1]);
    const anon0 = kb('RssAnon');
    const t0 = performance.now();
    const table = ${open};
    const row = table.get(0).toJSON();
    const ms = performance.now() - t0;
    const anonMiB = (kb('RssAnon') - anon0) / 1024;
    const fileMiB = kb('RssFile') / 1024;
    // Again in the same process: the code is compiled and warm, as in a zygote that warmed it.
    const t1 = performance.now();
    ${open}.get(0).toJSON();
    const warmMs = performance.now() - t1;
    console.log(JSON.stringify({ ms, warmMs, rows: table.numRows, first: String(row.name), anonMiB, fileMiB }));`;
}

function dropCache(path: string): void {
  const r = spawnSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
  if (r.status !== 0) throw new Error(`dd iflag=nocache failed: ${r.stderr}`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync('/var/tmp/zygote-bench-arrow-');
try {
  const name = 'big.arrow';
  const path = join(dir, name);
  const t0 = performance.now();
  const rows = await writeFile(path, TARGET);
  const size = statSync(path).size;
  console.log(`wrote ${(size / 2 ** 30).toFixed(2)} GiB, ${rows} rows (int64, float64, int32, utf8) in ${((performance.now() - t0) / 1000).toFixed(1)} s; page cache ${values.cold ? 'dropped before each run' : 'warm'}`);
  const samples: Record<string, { ms: number[]; warmMs: number[]; anonMiB: number[]; fileMiB: number[] }> = {};
  for (let run = 0; run < RUNS; run++) {
    for (const how of ['map', 'read', 'validate']) {
      if (values.cold) dropCache(path);
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', childScript(how, dir, name)], { encoding: 'utf8', maxBuffer: 1 << 20 });
      if (r.status !== 0) throw new Error(`${how} failed: ${r.stderr}`);
      const out = JSON.parse(r.stdout);
      if (out.first !== 'row-00000000' || out.rows !== rows) throw new Error(`${how} read ${JSON.stringify(out)}`);
      const s = (samples[how] ??= { ms: [], warmMs: [], anonMiB: [], fileMiB: [] });
      s.ms.push(out.ms);
      s.warmMs.push(out.warmMs);
      s.anonMiB.push(out.anonMiB);
      s.fileMiB.push(out.fileMiB);
    }
  }
  console.table(
    Object.entries(samples).map(([how, s]) => ({
      how: { map: 'mapArrowFile (trusted)', read: 'readFileSync + tableFromIPC', validate: 'readArrowOutput (full validation)' }[how],
      'first row, median ms': Number(median(s.ms).toFixed(1)),
      'min ms': Number(Math.min(...s.ms).toFixed(1)),
      'max ms': Number(Math.max(...s.ms).toFixed(1)),
      'second call, median ms': Number(median(s.warmMs).toFixed(1)),
      'anon MiB': Number(median(s.anonMiB).toFixed(0)),
      'file-backed MiB': Number(median(s.fileMiB).toFixed(0)),
    })),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
