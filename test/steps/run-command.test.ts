// `zygote run`: one step on a CSV or Arrow file from the command line, and the CSV reader.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvFileToTable, csvToTable } from '../../dist/steps/csv.js';
import { CLI } from '../helpers/index.js';

const GOOD = fileURLToPath(new URL('../fixtures/steps/double.mjs', import.meta.url));
const HOSTILE = fileURLToPath(new URL('../fixtures/steps/hostile.mjs', import.meta.url));
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'zygote-run-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'run', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('zygote run', () => {
  it('runs a step on a CSV, previews the output and writes it with --output', async () => {
    const csv = join(dir, 'in.csv');
    writeFileSync(csv, 'x,name\n1,"a, with comma"\n2.5,b\n,c\n');
    const out = join(dir, 'out.arrow');
    const r = cli([GOOD, '--input', csv, '--param', 'label="from cli"', '--output', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/schema: x: Float64, label: (Utf8|Dictionary<Int32, Utf8>)/);
    expect(r.stdout).toMatch(/3 rows, 2 columns/);
    expect(r.stdout).toMatch(/zygote warm in \d+ ms; step [\d.]+ ms/);
    expect(r.stderr).toContain('double: 3 rows');
    const table = tableFromIPC(readFileSync(out));
    expect(Array.from(table.getChild('x')!.toArray())).toEqual([2, 5, 0]);
    expect(table.getChild('label')!.get(0)).toBe('from cli');
  });

  it('exits 1 with the error kind and message when the step fails', () => {
    const csv = join(dir, 'in2.csv');
    writeFileSync(csv, 'x\n1\n');
    // The hostile step imports 'zygote' itself: the zygote must load it for the step to see it.
    const r = cli([HOSTILE, '--input', csv, '--param', 'attack=throw', '--preload', 'zygote']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('step failed (error): RangeError: the step broke on purpose');
  });

  it("runs a step that balloons under the default memory limit: 'oom', the host unharmed", () => {
    const csv = join(dir, 'in3.csv');
    writeFileSync(csv, 'x\n1\n');
    const r = cli([HOSTILE, '--input', csv, '--param', 'attack=memory', '--preload', 'zygote']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('step failed (oom): the step ran out of memory');
  });

  it('takes --memory with a size suffix: the same balloon ends at 128M', () => {
    const csv = join(dir, 'in4.csv');
    writeFileSync(csv, 'x\n1\n');
    const r = cli([HOSTILE, '--input', csv, '--param', 'attack=memory', '--memory', '128M', '--pids', '16', '--timeout', 'none', '--preload', 'zygote']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/step failed \(oom\): the step ran out of memory \(its cgroup's limit\) and was killed; peak memory \d+ MiB/);
    const peak = Number(/peak memory (\d+) MiB/.exec(r.stderr)![1]);
    // The cgroup's own peak: it reached the limit, and can never pass it.
    expect(peak).toBeGreaterThanOrEqual(96);
    expect(peak).toBeLessThanOrEqual(128);
  });

  it('refuses a bad limit flag, naming what it expected', () => {
    const r = cli([GOOD, '--input', join(dir, 'in.csv'), '--pids', 'lots']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('expected a positive integer or "none", got "lots"');
    const t = cli([GOOD, '--input', join(dir, 'in.csv'), '--tmp-bytes', 'none']);
    expect(t.code).not.toBe(0);
    expect(t.stderr).toContain('expected a positive number of bytes (a K, M, G or T suffix for KiB, MiB...), got "none"');
  });

  it('refuses what it can check before anything runs, in one line with exit status 2 and no stack trace', () => {
    const csv = join(dir, 'ok.csv');
    writeFileSync(csv, 'x\n1\n');
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'x,y\n1\n');
    const notArrow = join(dir, 'not.arrow');
    writeFileSync(notArrow, 'not arrow');
    const taken = join(dir, 'taken.arrow');
    writeFileSync(taken, 'keep me');
    const cases: [string[], RegExp][] = [
      [[join(dir, 'missing.mjs'), '--input', csv], /^zygote run: the step \S+missing\.mjs cannot be read \(ENOENT\)$/],
      [[GOOD, '--input', join(dir, 'missing.csv')], /^zygote run: --input \S+missing\.csv cannot be read \(ENOENT\)$/],
      [[GOOD, '--input', bad], /^zygote run: --input \S+bad\.csv: CSV: row 2 has 1 fields; the header has 2$/],
      [[GOOD, '--input', notArrow], /^zygote run: --input \S+not\.arrow: Arrow file .* refused: /],
      [[GOOD, '--input', dir], /^zygote run: --input \S+ is not a regular file$/],
      [[GOOD, '--input', csv, '--output', taken], /^zygote run: --output \S+taken\.arrow exists \(--force overwrites it\)$/],
    ];
    for (const [args, message] of cases) {
      const r = cli(args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim()).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(readFileSync(taken, 'utf8')).toBe('keep me');
  });

  it('--force overwrites an existing --output', () => {
    const csv = join(dir, 'force.csv');
    writeFileSync(csv, 'x\n1\n2\n');
    const out = join(dir, 'forced.arrow');
    writeFileSync(out, 'old');
    const r = cli([GOOD, '--input', csv, '--output', out, '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(tableFromIPC(readFileSync(out)).numRows).toBe(2);
  });

  it('says which option is wrong', () => {
    const r = cli([GOOD, '--input', join(dir, 'in.csv'), '--param', 'novalue']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('expected k=v, got "novalue"');
  });
});

describe('the CSV reader (csv-parse, streamed)', () => {
  it('parses quotes, embedded commas, quotes and newlines, CRLF and a BOM', async () => {
    const t = await csvToTable('\ufeffa,b\r\n"x, y","say ""hi"""\r\n"multi\nline",2\n');
    expect(t.schema.fields.map((f) => f.name)).toEqual(['a', 'b']);
    expect(t.getChild('a')!.toArray()).toEqual(['x, y', 'multi\nline']);
    expect(t.getChild('b')!.get(0)).toBe('say "hi"');
  });

  it('infers a type per column; empty is null', async () => {
    const t = await csvToTable('i,f,b,s\n1,1.5,true,x\n,2,false,\n');
    expect(t.schema.fields.map((f) => String(f.type))).toEqual(['Int32', 'Float64', 'Bool', 'Utf8']);
    expect(t.getChild('i')!.get(1)).toBeNull();
    expect(t.getChild('s')!.get(1)).toBeNull();
  });

  it('reads a file as a stream', async () => {
    const path = join(dir, 'stream.csv');
    writeFileSync(path, 'n\n' + Array.from({ length: 50_000 }, (_, i) => i).join('\n') + '\n');
    const t = await csvFileToTable(path);
    expect(t.numRows).toBe(50_000);
    expect(t.getChild('n')!.get(49_999)).toBe(49_999);
  });

  it('names what is wrong: an unterminated quote, a short row, a duplicate column, no header', async () => {
    await expect(csvToTable('a\n"open\n')).rejects.toThrow('CSV: a quoted field never closes');
    await expect(csvToTable('a,b\n1,2\n1\n')).rejects.toThrow('CSV: row 3 has 1 fields; the header has 2');
    await expect(csvToTable('a,a\n1,2\n')).rejects.toThrow('column "a" appears twice');
    await expect(csvToTable('')).rejects.toThrow('CSV: no header row');
  });
});
