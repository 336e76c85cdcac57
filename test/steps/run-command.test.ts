// `zygote run`: one step on a CSV or Arrow file from the command line, and the CSV reader.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableFromIPC } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvToTable, parseCsv } from '../../dist/steps/csv.js';
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

  it('says which option is wrong', () => {
    const r = cli([GOOD, '--input', join(dir, 'in.csv'), '--param', 'novalue']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('expected k=v, got "novalue"');
  });
});

describe('the CSV reader', () => {
  it('parses quotes, embedded commas, quotes and newlines, and CRLF', () => {
    expect(parseCsv('a,b\r\n"x, y","say ""hi"""\r\n"multi\nline",2\n')).toEqual([
      ['a', 'b'],
      ['x, y', 'say "hi"'],
      ['multi\nline', '2'],
    ]);
  });

  it('infers a type per column; empty is null', () => {
    const t = csvToTable('i,f,b,s\n1,1.5,true,x\n,2,false,\n');
    expect(t.schema.fields.map((f) => String(f.type))).toEqual(['Int32', 'Float64', 'Bool', 'Utf8']);
    expect(t.getChild('i')!.get(1)).toBeNull();
    expect(t.getChild('s')!.get(1)).toBeNull();
  });

  it('names what is wrong: an unterminated quote, a short row, a duplicate column', () => {
    expect(() => csvToTable('a\n"open\n')).toThrow('the quoted field opened on line 2 never closes');
    expect(() => csvToTable('a,b\n1\n')).toThrow('row 2 has 1 fields; the header has 2');
    expect(() => csvToTable('a,a\n1,2\n')).toThrow('column "a" appears twice');
  });
});
