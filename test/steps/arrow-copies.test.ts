// Tables from another copy of apache-arrow (a second install: linked packages, monorepos). Such a
// Table passes `instanceof` but this package's writer turns it into a corrupt file, which the
// child would then refuse as a malformed *output*: it is refused up front with what to do, and
// its Arrow IPC bytes, made by its own copy, are accepted as input instead.
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as arrow from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStep, startZygote, stepRunner, writeArrowFile, type Zygote } from '../../dist/index.js';
import { ROOT } from '../helpers/index.js';

const DOUBLE = new URL('../fixtures/steps/double.mjs', import.meta.url).pathname;

let dir: string;
let other: typeof arrow;
let z: Zygote;

beforeAll(async () => {
  // A second, separate install of the same apache-arrow: its own files, so its own classes.
  dir = mkdtempSync(join(tmpdir(), 'zygote-arrow-copy-'));
  const nm = join(dir, 'node_modules');
  mkdirSync(nm);
  cpSync(join(ROOT, 'node_modules', 'apache-arrow'), join(nm, 'apache-arrow'), { recursive: true });
  for (const dep of ['flatbuffers', 'tslib', 'json-with-bigint']) symlinkSync(join(ROOT, 'node_modules', dep), join(nm, dep));
  other = (await import(pathToFileURL(join(nm, 'apache-arrow', 'Arrow.node.mjs')).href)) as typeof arrow;
  z = await startZygote({ main: stepRunner, preload: ['apache-arrow'] });
});
afterAll(async () => {
  await z?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const columns = () => ({ x: Int32Array.from([1, 2, 3]), name: ['a', 'b', 'c'] });

describe('a Table from another copy of apache-arrow', () => {
  it('is a different copy (positive control: it passes instanceof, and this copy writes it as a corrupt file)', () => {
    const foreign = other.tableFromArrays(columns());
    expect(other.Table).not.toBe(arrow.Table);
    expect(foreign instanceof arrow.Table).toBe(true);
    const bytes = arrow.tableToIPC(foreign, 'file');
    expect(() => arrow.tableFromIPC(bytes).toArray()).toThrow();
  });

  it('is refused by runStep up front with a TypeError that says what to do', async () => {
    const err = await runStep(z, { module: DOUBLE, input: other.tableFromArrays(columns()) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/another apache-arrow install[\s\S]*tableToIPC\(table, 'file'\)/);
  });

  it('is refused by writeArrowFile the same way, and nothing is written', () => {
    const path = join(dir, 'refused.arrow');
    expect(() => writeArrowFile(path, other.tableFromArrays(columns()))).toThrow(TypeError);
    expect(existsSync(path)).toBe(false);
  });

  it("its IPC bytes, made by its own copy, are accepted as runStep's input", async () => {
    const bytes = other.tableToIPC(other.tableFromArrays(columns()), 'file');
    const out = await runStep(z, { module: DOUBLE, input: bytes });
    expect(out.ok, out.ok ? '' : out.error.message).toBe(true);
    if (!out.ok) return;
    expect(out.table.numRows).toBe(3);
    out.release();
  });

  it('bytes that are not an Arrow IPC file are refused before anything runs', async () => {
    const err = await runStep(z, { module: DOUBLE, input: new TextEncoder().encode('not arrow at all') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/^Expected `input` to be the bytes of an Arrow IPC file: /);
    expect(((err as Error).cause as { reason: string }).reason).toBe('not-arrow');
  });
});
