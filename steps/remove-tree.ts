// Removing a directory tree without recursion: runStep's own temporary directory, whatever is in
// it. A recursive remover (fs.rmSync's) takes a JS stack frame per level, so a deep enough tree
// throws "Maximum call stack size exceeded" from the cleanup instead of removing anything. This
// one keeps its own stack of directories on the heap, never follows a symlink (each entry's type
// comes from readdir, falling back to lstat), and never throws: what it could not remove is
// returned for the caller to log.
import { chmodSync, lstatSync, readdirSync, rmdirSync, unlinkSync, type Dirent } from 'node:fs';
import { join } from 'node:path';

/** Something removeTree could not remove, and why (an errno code). */
export interface RemoveProblem {
  path: string;
  code: string;
}

/** Reported problems at most: a tree that cannot be removed says so without a list as large as itself. */
const MAX_PROBLEMS = 16;

/**
 * Removes path and everything beneath it, depth first, with an explicit stack: any depth and
 * any number of entries, bounded by memory for the names alone. A directory this process may not
 * read or write (one it owns, mode 0500) is given 0700 once and tried again. Never throws;
 * returns at most 16 problems (an empty list: all gone, or there was nothing).
 */
export function removeTree(path: string): RemoveProblem[] {
  const problems: RemoveProblem[] = [];
  const fail = (p: string, err: unknown) => {
    const code = (err as NodeJS.ErrnoException)?.code ?? String(err);
    if (code !== 'ENOENT' && problems.length < MAX_PROBLEMS) problems.push({ path: p, code });
  };
  try {
    if (!lstatSync(path).isDirectory()) {
      unlinkSync(path);
      return problems;
    }
  } catch (err) {
    fail(path, err);
    return problems;
  }
  // A directory is visited twice: first its files go and its subdirectories are stacked above
  // it, then, once they are gone, the directory itself.
  const stack: { path: string; emptied: boolean }[] = [{ path, emptied: false }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.emptied) {
      stack.pop();
      try {
        rmdirSync(top.path);
      } catch (err) {
        fail(top.path, err);
      }
      continue;
    }
    top.emptied = true;
    let entries: Dirent[];
    try {
      entries = withAccess(top.path, () => readdirSync(top.path, { withFileTypes: true }));
    } catch (err) {
      fail(top.path, err);
      continue;
    }
    for (const e of entries) {
      const child = join(top.path, e.name);
      if (e.isDirectory()) {
        stack.push({ path: child, emptied: false });
        continue;
      }
      try {
        withAccess(top.path, () => unlinkSync(child));
      } catch (err) {
        fail(child, err);
      }
    }
  }
  return problems;
}

/** Runs fn; on EACCES or EPERM gives dir (its own) 0700 and runs it once more. */
function withAccess<T>(dir: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
    chmodSync(dir, 0o700);
    return fn();
  }
}
