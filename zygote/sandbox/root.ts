// The child's root: which host paths it sees (read-only, at the same place), decided once in
// the zygote from what it has loaded, plus each spawn's own mounts. native/sandbox/root.cc
// builds it in every child.
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import type { NativeRootBind } from '../../native/index.js';

/** What a step may always touch beside its binds: a Node child needs no other device. */
const DEVICES = ['/dev/null', '/dev/zero', '/dev/random', '/dev/urandom'];
/** Made by the root itself; nothing may be mounted over or into them. (Mounts may go under
 * /tmp, which is mounted first: a checkout may live there.) */
const RESERVED = ['/proc', '/dev'];
/** Empty directories the template root holds for the mounts spawns usually ask for. */
export const TEMPLATE_MOUNT_POINTS = ['/input', '/output'];

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

/**
 * The binds every child gets: the files the zygote has mapped (node and its shared
 * libraries, native addons), and for main, each preload and the zygote itself, the module's
 * own directory tree where it is loaded from: its package's package.json (module type), its
 * node_modules, and main's directory. Deliberately not the whole project directory around
 * main, which may hold the renderer's own configuration and secrets. Plus extra paths the
 * zygote was configured with.
 */
export function planRoot(opts: { mainUrl: string; preload: readonly string[]; readOnlyPaths: readonly string[] }): NativeRootBind[] {
  const paths = new Set<string>(mappedFiles());
  const mainPath = fileURLToPath(opts.mainUrl);
  paths.add(dirname(realpathSync(mainPath)));
  const require = createRequire(mainPath);
  const modules = [mainPath, fileURLToPath(import.meta.url)];
  for (const spec of opts.preload) {
    try {
      modules.push(require.resolve(spec));
    } catch {
      // ESM-only or URL: covered by main's node_modules.
    }
  }
  for (const m of modules) for (const p of packagePaths(m)) paths.add(p);
  const ownPackage = packageRoot(fileURLToPath(import.meta.url));
  if (ownPackage) paths.add(join(ownPackage, 'dist'));
  for (const p of opts.readOnlyPaths) paths.add(realpathSync(p));
  for (const p of paths) {
    // A module directly in / or /tmp would hand the child the whole of it.
    if (p === '/' || p === '/tmp') throw new Error(`the child's root would include all of ${p} (from main, a preload or sandbox.readOnlyPaths): put modules in a directory of their own`);
  }
  const binds: NativeRootBind[] = dedupe([...paths].filter((p) => existsSync(p)).map((p) => ({ source: p, target: p })));
  for (const d of DEVICES) binds.push({ source: d, target: d, device: true });
  return binds;
}

/** A spawn's mount as the zygote has it: the client's O_PATH fd of the source, and the path it named (for messages only). */
export interface FdMount {
  source: string;
  target: string;
  writable: boolean;
  fd: number;
}

/**
 * The base binds plus a spawn's mounts; throws a TypeError naming what is wrong with a mount.
 * A mount's source is the client's fd: nothing here looks at the client's path or files.
 */
export function withMounts(base: readonly NativeRootBind[], mounts: readonly FdMount[]): NativeRootBind[] {
  if (mounts.length > MAX_MOUNTS) throw new TypeError(`at most ${MAX_MOUNTS} mounts per spawn, got ${mounts.length}`);
  const out = [...base];
  for (const [i, m] of mounts.entries()) {
    const what = `mounts[${i}]`;
    if (typeof m?.source !== 'string' || !isAbsolute(m.source)) throw new TypeError(`${what}.source must be an absolute path, got ${JSON.stringify(m?.source)}`);
    if (typeof m.target !== 'string' || !isAbsolute(m.target) || m.target.includes('\0')) throw new TypeError(`${what}.target must be an absolute path, got ${JSON.stringify(m.target)}`);
    const target = normalize(m.target).replace(/\/+$/, '');
    if (target === '' || target !== m.target.replace(/\/+$/, '')) throw new TypeError(`${what}.target must be a normalized path other than /, got ${JSON.stringify(m.target)}`);
    if ([...RESERVED, '/tmp'].some((r) => within(r, target)) || RESERVED.some((r) => within(target, r))) {
      throw new TypeError(`${what}.target ${target} overlaps /proc, /dev or /tmp, which the sandbox makes itself`);
    }
    if (!Number.isInteger(m.fd) || m.fd < 3) throw new TypeError(`${what} has no source fd`);
    for (const b of out) {
      if (within(b.target, target)) throw new TypeError(`${what}.target ${target} overlaps ${b.target}, already in the child's root`);
      // Inside one of the zygote's own (read-only) binds only onto what is already there: the
      // bind cannot grow a mount point (e.g. the empty dist/step-mount the step runner uses).
      // Inside an earlier client mount the child checks, on the fd: its files are the client's.
      if (b.fd === undefined && within(target, b.target) && !existsSync(b.source + target.slice(b.target.length))) {
        throw new TypeError(`${what}.target ${target} lies inside ${b.target}, already in the child's root, where nothing of that name exists to mount onto`);
      }
    }
    out.push({ source: m.source, target, writable: m.writable === true, fd: m.fd, index: i });
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

/** The package.json and node_modules a module resolves its type and imports from. */
function packagePaths(modulePath: string): string[] {
  const real = realpathSync(modulePath);
  const nm = real.indexOf(`${sep}node_modules${sep}`);
  if (nm >= 0) {
    const project = real.slice(0, nm);
    return [join(project, 'node_modules'), join(project, 'package.json')];
  }
  const root = packageRoot(real);
  return root ? [join(root, 'package.json'), join(root, 'node_modules')] : [];
}

function packageRoot(file: string): string | null {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dir === dirname(dir)) return null;
  }
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
