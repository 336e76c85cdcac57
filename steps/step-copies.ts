// What runStep shows a child at /step for a step that is a single module file: a directory
// holding a read-only copy of that file alone (nothing beside it: other users' steps, a
// config). Made once per content of the file (its SHA-256: a step rewritten in place within
// one timestamp tick is still a new version) and kept while this process lives, so running the
// same step again costs a read and a hash, not a directory, a copy and a removal per run. Copies not in use by a running step are evicted
// past MAX_COPIES; all are removed when the process exits.
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readSync, writeFileSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { InvalidOptionError } from '../protocol/errors.js';
import { removeTree } from './remove-tree.js';

/** Distinct step versions kept at most (each a directory and a file). */
const MAX_COPIES = 256;
/** A step module larger than this is refused: a step is code, not data. */
const MAX_STEP_BYTES = 64 * 2 ** 20;

interface Copy {
  dir: string;
  /** runSteps using it now: never evicted while above 0. */
  users: number;
  lastUsed: number;
}

const copies = new Map<string, Copy>();
let root: string | null = null;
let made = 0;

/** A copy of module in a directory of its own, held until release() is called. */
export function holdStepCopy(module: string): { dir: string; release(): void } {
  const bytes = readModule(module);
  // The key is what the copy holds: the bytes read, and the name it is imported by.
  const key = `${createHash('sha256').update(bytes).digest('hex')}:${basename(module)}`;
  const copy = copies.get(key) ?? makeCopy(key, module, bytes);
  copy.users++;
  copy.lastUsed = performance.now();
  let released = false;
  return {
    dir: copy.dir,
    release() {
      if (released) return;
      released = true;
      copy.users--;
    },
  };
}

/** The module's bytes, from one open of it (never through a final symlink: runStep resolved it). */
function readModule(module: string): Buffer {
  const fd = openSync(module, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_STEP_BYTES) throw new InvalidOptionError(`Expected \`module\` to be a step module of at most ${MAX_STEP_BYTES} bytes, got ${module} of ${size} bytes`);
    const bytes = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, bytes, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return bytes.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

function makeCopy(key: string, module: string, bytes: Buffer): Copy {
  evict();
  root ??= makeRoot();
  const dir = join(root, String(made++));
  mkdirSync(dir, { mode: 0o755 });
  const file = join(dir, basename(module));
  writeFileSync(file, bytes, { flag: 'wx' });
  chmodSync(file, 0o444); // the child's uid reads it, whoever owns the original
  const copy: Copy = { dir, users: 0, lastUsed: 0 };
  copies.set(key, copy);
  return copy;
}

/** Removes the least recently used copies nobody runs until there is room for one more. */
function evict(): void {
  if (copies.size < MAX_COPIES) return;
  const idle = [...copies.entries()].filter(([, c]) => c.users === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
  for (const [key, c] of idle.slice(0, copies.size - MAX_COPIES + 1)) {
    copies.delete(key);
    removeTree(c.dir);
  }
}

function makeRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'zygote-steps-'));
  process.once('exit', () => removeTree(dir));
  return dir;
}
