#!/usr/bin/env node
// `npm run build`'s native half: compiles the package's addon (binding.gyp, into build/) and the
// tests' attack addon (test/native/binding.gyp, into test/native/build) with node-gyp,
// configuring a tree first where it has not been (npm ci skips the compile when a prebuilt
// binary loads, and never configures the attack addon, which the package does not ship).
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE_GYP = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
const TREES = [ROOT, join(ROOT, 'test', 'native')];

// Left in build/Release by builds from before the attack addon had its own tree: node-gyp-build
// loads the first .node file there, which this one would be.
rmSync(join(ROOT, 'build', 'Release', 'zygote_attack_helper.node'), { force: true });

for (const dir of TREES) {
  if (!existsSync(join(dir, 'build', 'Makefile')) || !existsSync(join(dir, 'build', 'config.gypi'))) nodeGyp(dir, 'configure');
  nodeGyp(dir, 'build');
}

function nodeGyp(dir, command) {
  const r = spawnSync(process.execPath, [NODE_GYP, command], { cwd: dir, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build-native: node-gyp ${command} in ${dir} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
    process.exit(1);
  }
}
