// removeTree (steps/remove-tree.ts), runStep's remover: no recursion, no symlink followed, no
// throw. Real trees in a scratch directory.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTree } from '../../dist/steps/remove-tree.js';

let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'zygote-remove-tree-'));
});
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('removeTree', () => {
  it('removes a tree of files, directories and links, and a directory of its own it may not write (0500)', () => {
    const root = mkdtempSync(join(scratch, 't-'));
    mkdirSync(join(root, 'a/b/c'), { recursive: true });
    writeFileSync(join(root, 'a/b/c/f'), 'x');
    writeFileSync(join(root, 'a/g'), 'y', { mode: 0o400 });
    mkdirSync(join(root, 'locked'));
    writeFileSync(join(root, 'locked/inner'), 'z');
    chmodSync(join(root, 'locked'), 0o500);
    symlinkSync('/nonexistent', join(root, 'dangling'));
    expect(removeTree(root)).toEqual([]);
    expect(existsSync(root)).toBe(false);
  });

  it('removes a symlink to a directory as a link: what it points at stays', () => {
    const root = mkdtempSync(join(scratch, 't-'));
    const victim = mkdtempSync(join(scratch, 'victim-'));
    writeFileSync(join(victim, 'keep'), 'mine');
    symlinkSync(victim, join(root, 'link'));
    expect(removeTree(root)).toEqual([]);
    expect(existsSync(root)).toBe(false);
    expect(readdirSync(victim)).toEqual(['keep']);
  });

  it('positive control: through the same link, a remover that followed it would reach and remove the victim', () => {
    const victim = mkdtempSync(join(scratch, 'victim-'));
    writeFileSync(join(victim, 'keep'), 'mine');
    const link = join(scratch, `link-${process.hrtime.bigint()}`);
    symlinkSync(victim, link);
    expect(readdirSync(link)).toEqual(['keep']);
    rmSync(join(link, 'keep'));
    expect(existsSync(join(victim, 'keep'))).toBe(false);
  });

  it('removes a tree 3,000 directories deep, past PATH_MAX, with no recursion', () => {
    const root = mkdtempSync(join(scratch, 'deep-'));
    const cwd = process.cwd();
    try {
      process.chdir(root);
      for (let i = 0; i < 3000; i++) {
        mkdirSync('dd');
        process.chdir('dd');
        if (i % 1000 === 0) writeFileSync('f', 'x');
      }
    } finally {
      process.chdir(cwd);
    }
    expect(removeTree(root)).toEqual([]);
    expect(existsSync(root)).toBe(false);
  });

  it('never throws: nothing there is no problem, and what it cannot remove is reported', () => {
    expect(removeTree(join(scratch, 'no-such-thing'))).toEqual([]);
    const problems = removeTree('/proc/self/status');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path: '/proc/self/status' });
    expect(['EACCES', 'EPERM']).toContain(problems[0].code);
  });
});
