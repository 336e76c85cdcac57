// The in-process reference: an isolated-vm isolate per step. A fresh isolate and context,
// apache-arrow's browser bundle run in it (compiled from V8's code cache), the input table's
// Arrow file bytes copied in, the identity step (Arrow decode, encode), the output bytes
// copied out and validated as the other peers' output files are. No OS sandbox: one V8 heap
// limit, in the renderer's own process. isolated-vm is not a dependency of the package (it
// is a native build of minutes); `npm run bench` installs it for the bench (bench/setup.ts).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableToIPC } from 'apache-arrow';
import { DEFAULT_ARROW_CAPS, validateArrowFile } from 'zygote';
import { fixturePath } from './lib/paths.js';
import type { Peer, RunningPeer, StepCase } from './run-step-peer.js';

/** The isolated-vm version the bench installs: the last that supports Node 20 (6.x needs Node 22). */
export const ISOLATED_VM_VERSION = '5.0.4';
/** isolated-vm's heap limit without a memory limit (it always has one; this is past any step here). */
const UNLIMITED_HEAP_MB = 4096;

// The slice of isolated-vm's API the bench uses (it may not be installed, so not its types).
interface Ivm {
  Isolate: new (o: { memoryLimit: number }) => Isolate;
  ExternalCopy: new (v: ArrayBuffer) => { copyInto(o: { release: boolean }): unknown };
}
interface Isolate {
  createContextSync(): Context;
  compileScriptSync(code: string, o: { cachedData?: unknown; produceCachedData?: boolean }): Script;
  getHeapStatisticsSync(): { total_heap_size: number; externally_allocated_size: number };
  dispose(): void;
}
interface Context {
  global: { getSync(name: string, o: { reference: true }): { applySync(self: undefined, args: unknown[], o: { result: { copy: true } }): unknown } };
}
interface Script {
  runSync(ctx: Context): unknown;
  cachedData?: unknown;
  cachedDataRejected?: boolean;
}

export function isolatePeer(): Peer {
  return {
    name: 'isolated-vm',
    description: `isolated-vm ${ISOLATED_VM_VERSION}: a fresh isolate per step in this process, apache-arrow's bundle run in it from V8's code cache, the input's bytes copied in and the output's out; no OS sandbox (memory limit: the isolate's heap limit; no pids limit)`,
    async start() {
      let ivm: Ivm;
      try {
        const name = 'isolated-vm'; // not a literal import: the bench builds without it
        ivm = ((await import(name)) as { default: Ivm }).default;
      } catch (err) {
        return { skipped: `isolated-vm is not installed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); \`npm run bench\` installs isolated-vm@${ISOLATED_VM_VERSION} first unless ZYGOTE_BENCH_NO_SETUP is set` };
      }
      const arrowDir = dirname(fileURLToPath(import.meta.resolve('apache-arrow')));
      const code = `${readFileSync(fixturePath('isolate-prelude.js'), 'utf8')}\n${readFileSync(join(arrowDir, 'Arrow.es2015.min.js'), 'utf8')}`;
      const first = new ivm.Isolate({ memoryLimit: 128 });
      const cachedData = first.compileScriptSync(code, { produceCachedData: true }).cachedData;
      first.dispose();
      return running(ivm, code, cachedData);
    },
  };
}

function faultsSince(r0: NodeJS.ResourceUsage): { minor: number; major: number } {
  const r = process.resourceUsage();
  return { minor: r.minorPageFault - r0.minorPageFault, major: r.majorPageFault - r0.majorPageFault };
}

function running(ivm: Ivm, code: string, cachedData: unknown): RunningPeer {
  /** One step in a fresh isolate; `atHold` sees its heap before it is disposed. */
  const once = (c: StepCase, atHold?: (heapBytes: number) => void) => {
    const r0 = process.resourceUsage();
    const t0 = performance.now();
    // What the others write to the input file.
    const input = tableToIPC(c.table, 'file');
    const isolate = new ivm.Isolate({ memoryLimit: c.limited ? 512 : UNLIMITED_HEAP_MB });
    try {
      const context = isolate.createContextSync();
      const t1 = performance.now();
      const script = isolate.compileScriptSync(code, { cachedData });
      if (script.cachedDataRejected) throw new Error('V8 rejected the code cache of the Arrow bundle');
      script.runSync(context);
      const t2 = performance.now();
      const bytes = input.buffer.slice(input.byteOffset, input.byteOffset + input.byteLength) as ArrayBuffer;
      const step = context.global.getSync('step', { reference: true });
      const out = step.applySync(undefined, [new ivm.ExternalCopy(bytes).copyInto({ release: true })], { result: { copy: true } }) as Uint8Array;
      const t3 = performance.now();
      if (atHold) {
        const h = isolate.getHeapStatisticsSync();
        atHold(h.total_heap_size + h.externally_allocated_size);
      }
      const rows = validateArrowFile(out, DEFAULT_ARROW_CAPS).numRows;
      if (rows !== c.table.numRows) throw new Error(`the identity step returned ${rows} rows, not ${c.table.numRows}`);
      isolate.dispose();
      const t4 = performance.now();
      return {
        ms: t4 - t0,
        // In-process: the page faults this process took during the step.
        faults: faultsSince(r0),
        parts: { isolateStartMs: t1 - t0, arrowLoadMs: t2 - t1, stepMs: t3 - t2, validateAndDisposeMs: t4 - t3 },
      };
    } catch (err) {
      isolate.dispose();
      throw err;
    }
  };
  return {
    residentPid: null,
    run: async (c) => once(c),
    hold: async (c, atHold) => {
      let value: ReturnType<typeof atHold> | undefined;
      once(c, (heapBytes) => (value = atHold({ pid: null, heapBytes })));
      return value!;
    },
    close: async () => undefined,
  };
}
