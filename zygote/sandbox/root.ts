// The child's root: which host paths it sees (read-only, at the same place), decided once in
// the zygote from what it has loaded, plus each spawn's own mounts. native/sandbox/root.cc
// builds it in every child.
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeRootBind } from '../../native/index.js';
import { packageJsonsOf, packageName } from './loaded-modules.js';

/** What a step may always touch beside its binds: a Node child needs no other device. */
const DEVICES = ['/dev/null', '/dev/zero', '/dev/random', '/dev/urandom'];
/** Made by the root itself; nothing may be mounted over or into them. (Mounts may go under
 * /tmp, which is mounted first: a checkout may live there.) */
const RESERVED = ['/proc', '/dev'];
/** Empty directories the template root holds for the mounts spawns usually ask for (runStep's). */
export const TEMPLATE_MOUNT_POINTS = ['/input', '/output', '/step'];

/**
 * Whether a child can take its root from the zygote's template: every mount of its own must go
 * onto a directory the template already has (a mount point made for it, or one inside an
 * earlier bind) or under /tmp (the child's own tmpfs, where it can make one). Otherwise it
 * builds the whole root itself.
 */
export function templateCovers(base: readonly NativeRootBind[], mounts: readonly NativeRootBind[]): boolean {
  return mounts.every((m, i) => {
    if (TEMPLATE_MOUNT_POINTS.includes(m.target)) return true;
    if (m.target !== '/tmp' && within(m.target, '/tmp')) return true;
    return [...base, ...mounts.slice(0, i)].some((b) => b.target !== m.target && within(m.target, b.target));
  });
}

/** At most this many mounts per spawn (the native side caps the whole root at 256). */
export const MAX_MOUNTS = 32;

/** What every child's root holds, decided once by the zygote. */
export interface RootPlan {
  /** Read-only binds: the files the zygote has mapped (node, its libraries, addons), readOnlyPaths, devices. */
  binds: NativeRootBind[];
  /** Module files the zygote loaded and the package.json files Node reads for them, copied in. */
  copies: string[];
  /** /node_modules/<name> -> each preloaded package, so a step anywhere imports the zygote's copy. */
  links: { path: string; target: string }[];
  /** What the copies take in the root's tmpfs, in whole pages. */
  copyBytes: number;
}

/**
 * Exactly what the zygote loaded, nothing around it: the files it has mapped (node and its
 * shared libraries, native addons), the module files it loaded (main, the preloads, what they
 * imported, the zygote's own) with the package.json files Node's resolver reads for them, and
 * the configured readOnlyPaths. Not main's directory, not whole node_modules trees: a renderer's
 * .env beside its step runner, or a package nobody imported, stays out of every child. Module
 * files are copied into the root, not bound: one mount each would cost every child's namespace.
 * A step that imports a module the zygote did not load finds it missing.
 */
export function planRoot(opts: { mainUrl: string; preload: readonly string[]; readOnlyPaths: readonly string[]; loaded: readonly string[] }): RootPlan {
  const mapped = new Set(mappedFiles());
  const mainPath = realpathSync(fileURLToPath(opts.mainUrl));
  const copies = [...new Set([...opts.loaded, mainPath, ...packageJsonsOf([...opts.loaded, mainPath])])].filter((f) => !mapped.has(f)).sort();
  const bindPaths = new Set<string>(mapped);
  for (const p of opts.readOnlyPaths) bindPaths.add(realpathSync(p));
  for (const p of [...bindPaths, ...copies]) {
    // Anything directly in / or /tmp would hand the child the whole of it.
    if (p === '/' || p === '/tmp') throw new Error(`the child's root would include all of ${p} (from sandbox.readOnlyPaths): give a directory of its own`);
  }
  const binds: NativeRootBind[] = dedupe([...bindPaths].filter((p) => existsSync(p)).map((p) => ({ source: p, target: p })));
  for (const d of DEVICES) binds.push({ source: d, target: d, device: true });
  const visible = copies.filter((f) => !binds.some((b) => within(f, b.target)));
  return { binds, copies: visible, links: preloadLinks(mainPath, opts.preload, visible), copyBytes: pagesOf(visible) };
}

/**
 * A symlink /node_modules/<name> to each preloaded package that main resolves (the nearest
 * node_modules above main holding its loaded files): a step mounted anywhere, /step included,
 * imports it by name and gets the very module the zygote loaded (Node resolves symlinks to the
 * real path, the key of its module cache).
 */
function preloadLinks(mainPath: string, preload: readonly string[], copies: readonly string[]): { path: string; target: string }[] {
  const have = new Set(copies);
  const links = new Map<string, string>();
  for (const spec of preload) {
    const name = packageName(spec);
    if (!name || links.has(name)) continue;
    for (let dir = dirname(mainPath); ; dir = dirname(dir)) {
      const root = join(dir, 'node_modules', name);
      if (have.has(join(root, 'package.json'))) {
        links.set(name, root);
        break;
      }
      // The package main belongs to, imported by its own name (a self-reference).
      if (have.has(join(dir, 'package.json')) && packageJsonName(join(dir, 'package.json')) === name) {
        links.set(name, dir);
        break;
      }
      if (dir === dirname(dir)) break;
    }
  }
  return [...links].map(([name, target]) => ({ path: `/node_modules/${name}`, target }));
}

function packageJsonName(path: string): string | null {
  try {
    const name = (JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown }).name;
    return typeof name === 'string' ? name : null;
  } catch {
    return null;
  }
}

/** Bytes of whole pages the files take in a tmpfs. */
function pagesOf(files: readonly string[]): number {
  let bytes = 0;
  for (const f of files) bytes += Math.ceil(statSync(f).size / 4096) * 4096;
  return bytes;
}

/** The top directories under /tmp that hold any of these paths (a checkout in /tmp). */
export function tmpDirsOf(paths: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    const m = /^\/tmp\/[^/]+/.exec(p);
    if (m) out.add(m[0]);
  }
  return [...out].sort();
}

/** A spawn's mount as the zygote has it: the client's O_PATH fd of the source, and the path it named (for messages only). */
export interface FdMount {
  source: string;
  target: string;
  writable: boolean;
  fd: number;
  /** The output filesystem made the child's own (zygote/sandbox/output.ts): no idmap. */
  noIdmap?: boolean;
}

/**
 * The base binds plus a spawn's mounts and then its output filesystem (zygote/sandbox/output.ts);
 * throws a TypeError naming what is wrong with a mount. A mount's source is the client's fd:
 * nothing here looks at the client's path or files. A mount may not cover any of the module
 * files copied into the root (copies).
 */
export function withMounts(base: readonly NativeRootBind[], mounts: readonly FdMount[], copies: readonly string[] = [], output: FdMount | null = null): NativeRootBind[] {
  if (mounts.length > MAX_MOUNTS) throw new TypeError(`at most ${MAX_MOUNTS} mounts per spawn, got ${mounts.length}`);
  const out = [...base];
  const all = output ? [...mounts, output] : mounts;
  for (const [i, m] of all.entries()) {
    const isOutput = m === output;
    const what = isOutput ? 'output' : `mounts[${i}]`;
    if (typeof m?.source !== 'string' || !isAbsolute(m.source)) throw new TypeError(`${what}.source must be an absolute path, got ${JSON.stringify(m?.source)}`);
    if (typeof m.target !== 'string' || !isAbsolute(m.target) || m.target.includes('\0')) throw new TypeError(`${what}.target must be an absolute path, got ${JSON.stringify(m.target)}`);
    const target = normalize(m.target).replace(/\/+$/, '');
    if (target === '' || target !== m.target.replace(/\/+$/, '')) throw new TypeError(`${what}.target must be a normalized path other than /, got ${JSON.stringify(m.target)}`);
    if ([...RESERVED, '/tmp'].some((r) => within(r, target)) || RESERVED.some((r) => within(target, r))) {
      throw new TypeError(`${what}.target ${target} overlaps /proc, /dev or /tmp, which the sandbox makes itself`);
    }
    if (!Number.isInteger(m.fd) || m.fd < 3) throw new TypeError(`${what} has no source fd`);
    const hidden = copies.find((c) => within(c, target));
    if (hidden) throw new TypeError(`${what}.target ${target} would hide ${hidden}, a module the zygote loaded`);
    for (const b of out) {
      if (within(b.target, target)) throw new TypeError(`${what}.target ${target} overlaps ${b.target}, already in the child's root`);
      // Inside one of the zygote's own (read-only) binds only onto what is already there: the
      // bind cannot grow a mount point.
      // Inside an earlier client mount the child checks, on the fd: its files are the client's.
      if (b.fd === undefined && within(target, b.target) && !existsSync(b.source + target.slice(b.target.length))) {
        throw new TypeError(`${what}.target ${target} lies inside ${b.target}, already in the child's root, where nothing of that name exists to mount onto`);
      }
    }
    out.push(isOutput ? { source: m.source, target, writable: true, fd: m.fd, index: i, output: true, ...(m.noIdmap ? { noIdmap: true } : {}) } : { source: m.source, target, writable: m.writable === true, fd: m.fd, index: i });
  }
  return out;
}

/** Files mapped into this process: the node binary, its libraries, loaded addons. */
function mappedFiles(): string[] {
  const out = new Set<string>();
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const at = line.indexOf(' /');
    if (at < 0 || line.endsWith(' (deleted)')) continue;
    const path = line.slice(at + 1).trim();
    if (path.startsWith('/dev/') || path.startsWith('/proc/') || path.startsWith('/memfd:')) continue;
    try {
      if (statSync(path).isFile()) out.add(realpathSync(path));
    } catch {
      // Gone since it was mapped.
    }
  }
  return [...out];
}

/** Sorted, without paths inside another (already visible) or reserved ones. */
function dedupe(binds: NativeRootBind[]): NativeRootBind[] {
  const sorted = binds.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  const out: NativeRootBind[] = [];
  for (const b of sorted) {
    if (RESERVED.some((r) => within(b.target, r))) continue;
    if (out.some((o) => within(b.target, o.target))) continue;
    out.push(b);
  }
  return out;
}

/** path is dir or lies under it. */
function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}
