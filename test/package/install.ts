// Installing the packed tarball the way a user would, on this machine but with no compiler: a
// fresh directory, a PATH holding only node, npm and sh, and `npm ci --offline` from npm's cache,
// with a lockfile pinning the checkout's own dependency versions (so no registry is asked).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ROOT } from '../helpers/index.js';

/** A cold `npm ci` of the package and its 15 or so dependencies takes a few seconds here. */
export const INSTALL_TIMEOUT_MS = 3 * 60_000;

export interface LockedPackage {
  /** Its place in node_modules ("node_modules/a/node_modules/b"). */
  path: string;
  name: string;
  version: string;
  integrity: string;
  entry: Record<string, unknown>;
}

interface Lock {
  packages: Record<string, { version?: string; integrity?: string; dev?: boolean; devOptional?: boolean; [k: string]: unknown }>;
}

/** The packages an install of zygote brings, as the checkout's package-lock.json pins them: every entry that is not dev-only. */
export function lockedDependencies(): LockedPackage[] {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as Lock;
  const out: LockedPackage[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev || entry.devOptional) continue;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    if (!entry.version || !entry.integrity) throw new Error(`package-lock.json: ${path} has no version or integrity`);
    out.push({ path, name, version: entry.version, integrity: entry.integrity, entry });
  }
  return out;
}

/**
 * A directory of symlinks to node, npm and sh alone: npm runs scripts with `sh` from PATH and
 * its own bin starts with `#!/usr/bin/env node`. No g++, cc, make or python3: nothing to compile with.
 */
export function compilerlessPath(dir: string): string {
  const npm = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8', timeout: 10_000 });
  if (npm.status !== 0) throw new Error('no npm on PATH');
  mkdirSync(dir, { recursive: true });
  symlinkSync(process.execPath, join(dir, 'node'));
  symlinkSync(realpathSync(npm.stdout.trim()), join(dir, 'npm'));
  symlinkSync('/bin/sh', join(dir, 'sh'));
  return dir;
}

/** The whole environment of the install and of the app: nothing of this test run's (no npm_* of `npm test`). */
export function userEnv(pathDir: string, npmCache: string): NodeJS.ProcessEnv {
  return { HOME: process.env.HOME, PATH: pathDir, LANG: 'C.UTF-8', npm_config_cache: npmCache, npm_config_update_notifier: 'false' };
}

/**
 * An app in appDir depending on the tarball alone, with a package-lock.json that pins it and
 * every dependency. Each has a tarball URL (the checkout's lockfile may omit them) and its
 * integrity: npm then takes the tarball from its cache by integrity and needs no metadata.
 */
export function writeApp(appDir: string, tarball: string, integrity: string): void {
  mkdirSync(appDir, { recursive: true });
  const file = basename(tarball);
  copyFileSync(tarball, join(appDir, file));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const app = { name: 'zygote-user', version: '1.0.0', private: true, type: 'module', dependencies: { zygote: `file:${file}` } };
  const packages: Record<string, unknown> = {
    '': { name: app.name, version: app.version, dependencies: app.dependencies },
    'node_modules/zygote': {
      version: pkg.version,
      resolved: `file:${file}`,
      integrity,
      hasInstallScript: true,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
      os: pkg.os,
      cpu: pkg.cpu,
    },
  };
  for (const d of lockedDependencies()) {
    packages[d.path] = { ...d.entry, resolved: d.entry.resolved ?? `https://registry.npmjs.org/${d.name}/-/${d.name.split('/').pop()}-${d.version}.tgz` };
  }
  writeFileSync(join(appDir, 'package.json'), JSON.stringify(app, null, 2));
  writeFileSync(join(appDir, 'package-lock.json'), JSON.stringify({ name: app.name, version: app.version, lockfileVersion: 3, requires: true, packages }, null, 2));
}
