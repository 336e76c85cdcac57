// `npm run bench`'s set-up (the prebench script): brings the peers the bench compares with that
// are not part of the package, where it can. bubblewrap from the system's packages (apt-get, as
// root); isolated-vm (a native build of a few minutes, pinned to the last version that supports
// Node 20) into node_modules without saving it: it is no dependency of the package, whose users
// would otherwise all build it. Whatever cannot be had is said here, and the bench skips that
// peer with a note. ZYGOTE_BENCH_NO_SETUP=1 skips all of this.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT_DIR } from './lib/paths.js';
import { ISOLATED_VM_VERSION } from './run-step-isolate.js';

if (process.env.ZYGOTE_BENCH_NO_SETUP) {
  console.error('bench setup: skipped (ZYGOTE_BENCH_NO_SETUP)');
} else {
  bubblewrap();
  isolatedVm();
}

function bubblewrap(): void {
  if (spawnSync('bwrap', ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0) return;
  if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version'], { stdio: 'ignore', timeout: 10_000 }).status !== 0) {
    console.error('bench setup: bubblewrap is missing and cannot be installed here (needs root and apt-get): its peer is skipped');
    return;
  }
  console.error('bench setup: apt-get install -y bubblewrap');
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'bubblewrap'], { stdio: 'inherit', timeout: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  // A fresh machine may have no package lists yet.
  if (install().status !== 0 && spawnSync('apt-get', ['update'], { stdio: 'inherit', timeout: 300_000 }).status === 0) install();
}

function isolatedVm(): void {
  const require = createRequire(join(ROOT_DIR, 'package.json'));
  try {
    const installed = (require('isolated-vm/package.json') as { version: string }).version;
    if (installed === ISOLATED_VM_VERSION) return;
  } catch {
    // Not installed.
  }
  console.error(`bench setup: npm install --no-save isolated-vm@${ISOLATED_VM_VERSION} (a native build: a few minutes, once until the next npm ci)`);
  const r = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', `isolated-vm@${ISOLATED_VM_VERSION}`], { cwd: ROOT_DIR, stdio: 'inherit', timeout: 20 * 60_000 });
  if (r.status !== 0) console.error(`bench setup: isolated-vm did not install (${r.error?.message ?? `exit ${r.status}`}): its peer is skipped`);
}
