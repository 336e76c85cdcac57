// native/pretouch.cc: accessedPages, which a prefault learner uses to say which of its pages
// it read (timing one read of each: in a fresh fork, an entry not yet accessed traps on these
// VMs), and pretouchRanges, which a pool child uses to read them ahead of its claim.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type Zygote } from '../../dist/index.js';
import { native } from '../../dist/native/index.js';
import { collect, ROOT } from '../helpers/index.js';

const PAGE = 4096;
const ACCESSED_MAIN = new URL('../fixtures/accessed-main.mjs', import.meta.url);

/** This process's readable private mappings of memory and regular files, as [start, end) pairs. */
function readableMappings(): [number, number][] {
  const out: [number, number][] = [];
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) r..p \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const memory = m[3] === '0' && ['', '[heap]', '[stack]'].includes(m[4]);
    const file = m[3] !== '0' && m[4].startsWith('/') && !m[4].startsWith('/dev/');
    if (memory || file) out.push([parseInt(m[1], 16), parseInt(m[2], 16)]);
  }
  return out;
}

describe('accessedPages', () => {
  it('names whole mapped pages of readable private memory and files, merged, in order, at most maxPages', () => {
    const ranges = native.accessedPages(64);
    expect(ranges.length % 2).toBe(0);
    let pages = 0;
    let end = 0;
    const maps = readableMappings();
    for (let i = 0; i < ranges.length; i += 2) {
      const [start, length] = [ranges[i], ranges[i + 1]];
      expect(start % PAGE).toBe(0);
      expect(length % PAGE).toBe(0);
      expect(start).toBeGreaterThan(end); // merged: no two ranges touch
      expect(maps.some(([from, to]) => start >= from && start + length <= to)).toBe(true);
      end = start + length;
      pages += length / PAGE;
    }
    // This process was not forked from a warm heap: its pages are all accessed already.
    expect(pages).toBe(64);
    expect(native.accessedPages(0)).toEqual([]);
    expect(() => native.accessedPages('64' as unknown as number)).toThrow(TypeError);
  });

  describe('in a fresh fork', () => {
    let zygote: Zygote;
    beforeAll(async () => {
      zygote = await startZygote({ main: ACCESSED_MAIN, dangerouslyAllowUnsandboxed: true });
    });
    afterAll(async () => {
      await zygote?.close();
    });

    async function run(action: 'read' | 'skip'): Promise<{ firstReadNs: number; pages: number; bufferPages: number }> {
      // accessedPages reads /proc/self/pagemap, which is root's alone in a process that is not
      // dumpable (a learner runs as root in its namespaces, before any claim).
      const child = await zygote.spawn({ args: [action], sandbox: { dangerouslySkip: ['not-dumpable'] } });
      const [out, , exit] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
      expect(exit).toMatchObject({ code: 0 });
      return JSON.parse(out);
    }

    it('counts the pages the child read since its fork, and not those it left alone', async () => {
      const [read, skip] = [await run('read'), await run('skip')];
      // A child that read an 8 MiB buffer is said to have accessed about its 2,048 pages more (the rest of a child varies by a few hundred).
      // Where a first access costs nothing (bare metal) every resident page reads fast in both,
      // and the counts say nothing: this host's cost decides (6 us measured on these VMs).
      if (Math.min(read.firstReadNs, skip.firstReadNs) < 1000) return;
      expect(read.pages - skip.pages).toBeGreaterThanOrEqual(read.bufferPages * 0.75);
      expect(read.pages - skip.pages).toBeLessThan(read.bufferPages * 1.35);
    });
  });
});

describe('pretouchRanges', () => {
  it('reads only what is safe to read: the whole address space, PROT_NONE reservations and files included, costs no fault', () => {
    // V8 reserves PROT_NONE ranges and Node maps files: the span covers both (the control).
    const maps = readFileSync('/proc/self/maps', 'utf8');
    expect(maps).toMatch(/ ---p /);
    expect(maps).toMatch(/ r--p [0-9a-f]+ \S+ [1-9]\d* +\//);
    const script = `import { native } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist/native/index.js')).href)}; native.pretouchRanges([0, 2 ** 47]); native.pretouchRanges([4096, 4096, 1, 1]); process.stdout.write('read');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('read');
    expect(() => native.pretouchRanges([0, '1'] as unknown as number[])).toThrow(TypeError);
  });
});
