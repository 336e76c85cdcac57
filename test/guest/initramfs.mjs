// The guest's kernel and initramfs: Debian's stock kernel (linux-image-amd64) as installed on
// this host, and an initramfs of busybox, init.sh and the modules that reach the host's root
// (virtio-pci, 9p, overlay), and ext4 on a loop device for /tmp. The initramfs is built once per kernel and content into a cache
// outside the repository; a key over everything packed makes a cached file safe to reuse.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const INIT = new URL('./init.sh', import.meta.url);
const BUSYBOX = '/bin/busybox';
/** What the guest loads, dependencies resolved from modules.dep (builtins are skipped). */
// ext4 and loop: the guest's /tmp is an ext4 file system, as on a stock Debian host (and tmpfs
// takes idmapped mounts only from 6.3, which runStep's writable output needs).
const WANTED_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay', 'loop', 'ext4'];

/**
 * The newest installed kernel that has its modules, or why there is none.
 * @returns {{ ok: true, version: string, vmlinuz: string, modules: string } | { ok: false, reason: string }}
 */
export function findKernel() {
  const boot = existsSync('/boot') ? readdirSync('/boot') : [];
  const versions = boot
    .filter((n) => n.startsWith('vmlinuz-'))
    .map((n) => n.slice('vmlinuz-'.length))
    .filter((v) => existsSync(`/lib/modules/${v}/modules.dep`))
    .sort(compareVersions);
  if (versions.length === 0) return { ok: false, reason: 'no kernel image with modules in /boot (.ci/run installs linux-image-amd64)' };
  const version = versions[versions.length - 1];
  return { ok: true, version, vmlinuz: `/boot/vmlinuz-${version}`, modules: `/lib/modules/${version}` };
}

/** busybox as a static binary: the initramfs has no libc. */
export function findBusybox() {
  if (!existsSync(BUSYBOX)) return { ok: false, reason: `no ${BUSYBOX} (.ci/run installs busybox-static)` };
  if (hasInterpreter(readFileSync(BUSYBOX))) return { ok: false, reason: `${BUSYBOX} is dynamically linked (.ci/run installs busybox-static)` };
  return { ok: true, path: BUSYBOX };
}

/** Whether a 64-bit ELF has a PT_INTERP program header, i.e. needs a dynamic loader. */
function hasInterpreter(elf) {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) throw new Error(`${BUSYBOX} is not a 64-bit ELF file`);
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (elf.readUInt32LE(phoff + i * phentsize) === 3) return true;
  return false;
}

/**
 * The initramfs for kernel, from the cache or built now. Throws naming what is missing.
 * @param {{ version: string, modules: string }} kernel
 * @returns {string} its path
 */
export function initramfsFor(kernel) {
  const modules = resolveModules(kernel.modules, WANTED_MODULES);
  const init = readFileSync(INIT);
  const busybox = readFileSync(BUSYBOX);
  const moduleFiles = modules.map((m) => ({ name: m.name, data: readFileSync(join(kernel.modules, m.path)) }));
  const hash = createHash('sha256');
  for (const part of [init, busybox, ...moduleFiles.flatMap((m) => [m.name, m.data])]) hash.update(part).update('\0');
  const dir = join(tmpdir(), 'zygote-guest-cache', `${kernel.version}-${hash.digest('hex').slice(0, 16)}`);
  const file = join(dir, 'initramfs.cpio');
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const cpio = new CpioWriter();
  for (const d of ['bin', 'dev', 'proc', 'sys', 'modules']) cpio.dir(d);
  // The kernel opens /dev/console for init before devtmpfs is mounted.
  cpio.charDevice('dev/console', 5, 1);
  cpio.file('init', init, 0o755);
  cpio.file('bin/busybox', busybox, 0o755);
  for (const m of moduleFiles) cpio.file(`modules/${m.name}`, m.data, 0o644);
  cpio.file('modules.order', Buffer.from(moduleFiles.map((m) => m.name).join('\n') + '\n'), 0o644);
  // Written aside and renamed: a concurrent or interrupted build never leaves a partial file.
  const partial = `${file}.${process.pid}.partial`;
  writeFileSync(partial, cpio.finish());
  renameSync(partial, file);
  return file;
}

/**
 * The modules to load, each after its dependencies, from modules.dep; builtins are left out.
 * @returns {{ name: string, path: string }[]}
 */
export function resolveModules(modulesDir, wanted) {
  const deps = new Map();
  for (const line of readFileSync(join(modulesDir, 'modules.dep'), 'utf8').split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line);
    if (m) deps.set(moduleName(m[1]), { path: m[1], deps: m[2].split(/\s+/).filter(Boolean).map(moduleName) });
  }
  const builtin = new Set(
    existsSync(join(modulesDir, 'modules.builtin'))
      ? readFileSync(join(modulesDir, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map(moduleName)
      : [],
  );
  const order = [];
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    seen.add(name);
    if (builtin.has(name)) return;
    const entry = deps.get(name);
    if (!entry) throw new Error(`the kernel in ${modulesDir} has no module ${name} (neither built in nor in modules.dep)`);
    if (!entry.path.endsWith('.ko')) throw new Error(`module ${name} is compressed (${entry.path}): busybox insmod needs plain .ko files`);
    for (const d of entry.deps) visit(d);
    order.push({ name: `${name}.ko`, path: entry.path });
  };
  for (const name of wanted) visit(name);
  return order;
}

/** "kernel/fs/9p/9p.ko" -> "9p"; dashes and underscores are the same to the kernel. */
function moduleName(path) {
  return path.split('/').pop().replace(/\.ko(\.\w+)?$/, '').replaceAll('-', '_');
}

function compareVersions(a, b) {
  const pa = a.split(/[.-]/).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  const pb = b.split(/[.-]/).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    if (pa[i] === pb[i]) continue;
    if (pa[i] === undefined) return -1;
    if (pb[i] === undefined) return 1;
    return typeof pa[i] === 'number' && typeof pb[i] === 'number' ? pa[i] - pb[i] : String(pa[i]).localeCompare(String(pb[i]));
  }
  return 0;
}

/**
 * An archive in the kernel's initramfs format ("newc" cpio, see the kernel's
 * Documentation/driver-api/early-userspace/buffer-format.rst). Written here rather than by
 * cpio(1) so that /dev/console needs no mknod and no staging directory.
 */
class CpioWriter {
  #parts = [];
  #ino = 1;

  dir(name) {
    this.#entry(name, 0o040755, Buffer.alloc(0));
  }

  file(name, data, perm) {
    this.#entry(name, 0o100000 | perm, data);
  }

  charDevice(name, major, minor) {
    this.#entry(name, 0o020600, Buffer.alloc(0), major, minor);
  }

  finish() {
    this.#entry('TRAILER!!!', 0, Buffer.alloc(0));
    return Buffer.concat(this.#parts);
  }

  #entry(name, mode, data, rdevMajor = 0, rdevMinor = 0) {
    const nameBytes = Buffer.from(`${name}\0`);
    const isTrailer = name === 'TRAILER!!!';
    // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
    const fields = [isTrailer ? 0 : this.#ino++, mode, 0, 0, mode & 0o040000 ? 2 : 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, nameBytes.length, 0];
    const header = Buffer.from('070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join(''), 'ascii');
    this.#parts.push(header, nameBytes, pad(header.length + nameBytes.length), data, pad(data.length));
  }
}

/** Zero bytes up to the next multiple of 4 (newc aligns names and data to 4 bytes). */
function pad(length) {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

/** For the runner's messages: the size of a file in MiB. */
export function mib(path) {
  return (statSync(path).size / 2 ** 20).toFixed(1);
}
