// Removing a directory tree without recursion: runStep's own temporary directory, and what a
// step left in its output filesystem beside its output file. A recursive remover (fs.rmSync's)
// takes a JS stack frame per level, so a deep enough tree (3,000 nested directories) throws
// "Maximum call stack size exceeded" from the cleanup instead of removing anything. This one
// keeps its own stack of directories on the heap, never follows a symlink (each entry's type
// comes from readdir, or lstat where the filesystem does not say), reaches directories deeper
// than a path can name through an fd of an ancestor (/proc/self/fd/N/...), and never throws:
// what it could not remove is returned for the caller to log.
import { chmodSync, closeSync, constants, lstatSync, openSync, readdirSync, rmdirSync, unlinkSync, type Dirent } from 'node:fs';
import { join } from 'node:path';

/** Something removeTree could not remove, and why (an errno code). */
export interface RemoveProblem {
  path: string;
  code: string;
}

/** Reported problems at most: a tree that cannot be removed says so without a list as large as itself. */
const MAX_PROBLEMS = 16;
/** Past this many bytes a path is cut short by an fd of the directory (PATH_MAX is 4096). */
const MAX_PATH_BYTES = 1024;

/** A directory on the stack: the path to reach what is in it, and how to remove it. */
interface Dir {
  /** Its path, or /proc/self/fd/N of an fd of it once its path grew long. */
  path: string;
  /** Its parent's path (as above) and its name there, to rmdir it by. */
  parent: string;
  name: string;
  /** The fd its path goes through, closed when it is done; -1: none. */
  fd: number;
  /** Its entries were removed or stacked: next time, it goes itself. */
  emptied: boolean;
}

/**
 * Removes path and everything beneath it, depth first, with an explicit stack: any depth (an fd
 * per ~1 KiB of path beyond the first), any number of entries. A directory of this process's
 * that it may not read or write (mode 0500) is given 0700 once and tried again. Never throws;
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
  const stack: Dir[] = [{ path, parent: '', name: '', fd: -1, emptied: false }];
  try {
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.emptied) {
        stack.pop();
        if (top.fd >= 0) closeSync(top.fd);
        try {
          if (top.parent === '') rmdirSync(path);
          else withAccess(top.parent, () => rmdirSync(join(top.parent, top.name)));
        } catch (err) {
          fail(top.parent === '' ? path : join(top.parent, top.name), err);
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
          stack.push(deeper(top.path, e.name, fail));
          continue;
        }
        try {
          withAccess(top.path, () => unlinkSync(child));
        } catch (err) {
          fail(child, err);
        }
      }
    }
  } finally {
    for (const d of stack) if (d.fd >= 0) closeSync(d.fd);
  }
  return problems;
}

/** The stack entry of parent/name; past MAX_PATH_BYTES, reached through an fd of it. */
function deeper(parent: string, name: string, fail: (p: string, err: unknown) => void): Dir {
  const path = join(parent, name);
  if (Buffer.byteLength(path) <= MAX_PATH_BYTES) return { path, parent, name, fd: -1, emptied: false };
  try {
    // O_NOFOLLOW: it was a directory when listed; if it is a symlink by now, it is not entered.
    const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    return { path: `/proc/self/fd/${fd}`, parent, name, fd, emptied: false };
  } catch (err) {
    fail(path, err);
    // Not entered: its rmdir fails (ENOTEMPTY) and is reported with it.
    return { path, parent, name, fd: -1, emptied: true };
  }
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
