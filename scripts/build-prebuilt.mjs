#!/usr/bin/env node
// `npm run build:prebuilt`: the prebuilt addon the package ships, so that installing it needs no
// compiler (README, Install). prebuildify compiles binding.gyp with node-gyp for N-API (one
// binary for every Node 20.x), strips it and tags it glibc, in a staging copy of binding.gyp and
// the native sources: the checkout's own build/ is left alone, and so are tests loading it
// meanwhile. Writes prebuilds/linux-x64/zygote.glibc.node, and beside it a hash of what it was
// made from.
//   node scripts/build-prebuilt.mjs [--if-changed]
// --if-changed (npm pack runs it, scripts/prepack.mjs): do nothing if that hash still matches.
// Progress goes to stderr: `npm pack --json` answers on stdout.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
/** A full compile takes about 30 s on two cores here. */
const BUILD_TIMEOUT_MS = 10 * 60_000;

/** Where the binary for this platform goes (node-gyp-build looks there). */
export const PREBUILD_DIR = join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
const STAMP = join(ROOT, 'prebuilds', '.sources-sha256');

/** The files the addon is compiled from, relative to the root: binding.gyp and native/**.{cc,h}. */
export function nativeSources() {
  const native = readdirSync(join(ROOT, 'native'), { recursive: true })
    .map(String)
    .filter((f) => /\.(cc|h)$/.test(f))
    .map((f) => `native/${f}`);
  return ['binding.gyp', ...native.sort()];
}

/** A hash of everything that decides the binary: sources, this script, Node's and node-addon-api's versions. */
function sourcesHash() {
  const h = createHash('sha256');
  for (const f of [...nativeSources(), 'scripts/build-prebuilt.mjs']) h.update(f).update('\0').update(readFileSync(join(ROOT, f))).update('\0');
  h.update(process.versions.node).update('\0').update(JSON.parse(readFileSync(require.resolve('node-addon-api/package.json'), 'utf8')).version);
  return h.digest('hex');
}

/** Makes the prebuilt binary unless ifChanged and it was made from these sources; returns its path. */
export function prebuild({ ifChanged = false } = {}) {
  const hash = sourcesHash();
  const current = builtBinary();
  if (ifChanged && current && existsSync(STAMP) && readFileSync(STAMP, 'utf8').trim() === hash) {
    console.error(`prebuild: ${relative(current)} is up to date`);
    return current;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`prebuild: the package ships linux-x64 binaries; this is ${process.platform}-${process.arch}`);
  const staging = mkdtempSync(join(tmpdir(), 'zygote-prebuild-'));
  try {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    // prebuildify names the binary after the package.
    writeFileSync(join(staging, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version }));
    for (const f of nativeSources()) {
      mkdirSync(dirname(join(staging, f)), { recursive: true });
      copyFileSync(join(ROOT, f), join(staging, f));
    }
    // binding.gyp asks node-addon-api for its headers from the build's directory.
    symlinkSync(join(ROOT, 'node_modules'), join(staging, 'node_modules'));
    console.error(`prebuild: compiling the addon for N-API on Node ${process.versions.node} in ${staging}`);
    const r = spawnSync(process.execPath, [require.resolve('prebuildify/bin.js'), '--napi', '--strip', '--tag-libc', '--target', `node@${process.versions.node}`], {
      cwd: staging,
      env: { ...process.env, JOBS: 'max', ...nodeHeaders() },
      stdio: ['ignore', 2, 2],
      timeout: BUILD_TIMEOUT_MS,
    });
    if (r.status !== 0) throw new Error(`prebuild: prebuildify failed (${r.error?.message ?? (r.signal ? `killed by ${r.signal}` : `exit ${r.status}`)}); its output is above`);
    const out = join(staging, 'prebuilds', `${process.platform}-${process.arch}`);
    const made = readdirSync(out).filter((f) => f.endsWith('.node'));
    if (made.length !== 1) throw new Error(`prebuild: expected one binary in ${out}, found ${made.length ? made.join(', ') : 'none'}`);
    const loads = spawnSync(process.execPath, ['-e', 'process.dlopen({ exports: {} }, process.argv[1])', join(out, made[0])], { encoding: 'utf8', timeout: 30_000 });
    if (loads.status !== 0) throw new Error(`prebuild: the new binary does not load: ${loads.stderr.trim() || loads.error?.message}`);
    // Exactly one binary in the package: any other (an old name) goes; the new one lands whole.
    mkdirSync(PREBUILD_DIR, { recursive: true });
    for (const f of readdirSync(PREBUILD_DIR)) if (f !== made[0]) rmSync(join(PREBUILD_DIR, f), { force: true });
    const dest = join(PREBUILD_DIR, made[0]);
    copyFileSync(join(out, made[0]), `${dest}.partial`);
    renameSync(`${dest}.partial`, dest);
    writeFileSync(STAMP, `${hash}\n`);
    console.error(`prebuild: wrote ${relative(dest)}`);
    return dest;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** The binary in prebuilds/ for this platform, or null. */
function builtBinary() {
  if (!existsSync(PREBUILD_DIR)) return null;
  const f = readdirSync(PREBUILD_DIR).filter((n) => n.endsWith('.node'));
  return f.length === 1 ? join(PREBUILD_DIR, f[0]) : null;
}

/**
 * The Node headers the checkout's own build used (node-gyp recorded them in build/config.gypi),
 * so the staging build needs no download; nothing when npm already says (npm_config_nodedir)
 * or there is no build yet.
 */
function nodeHeaders() {
  if (process.env.npm_config_nodedir) return {};
  const gypi = join(ROOT, 'build', 'config.gypi');
  if (!existsSync(gypi)) return {};
  const m = /"nodedir":\s*"([^"]+)"/.exec(readFileSync(gypi, 'utf8'));
  return m ? { npm_config_nodedir: m[1] } : {};
}

function relative(p) {
  return p.startsWith(ROOT) ? p.slice(ROOT.length) : p;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    prebuild({ ifChanged: process.argv.includes('--if-changed') });
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
