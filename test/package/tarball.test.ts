// The package as a user gets it: `npm pack` ships the library, the CLI, the addon's sources and
// its prebuilt binary, and nothing else; installed from that tarball where there is no compiler,
// it loads the prebuilt binary and runs a sandboxed child.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix, relative } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/index.js';
import { describeNeeds, npmCacheDir, npmCacheHolds } from '../helpers/host.js';
import { compilerlessPath, INSTALL_TIMEOUT_MS, lockedDependencies, userEnv, writeApp } from './install.js';
import { pack, PACK_TIMEOUT_MS, type Packed } from './pack.js';

interface PackageJson {
  exports: Record<string, Record<string, string>>;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;

/** The prebuilt addon for linux-x64 glibc (scripts/build-prebuilt.mjs). */
const PREBUILT = 'prebuilds/linux-x64/zygote.glibc.node';
/** The built library's directories: every layer but bench/, examples/ and test/. */
const LIBRARY_DIRS = ['client', 'zygote', 'steps', 'protocol', 'native'];

let dir: string;
let packed: Packed;
let shipped: Set<string>;

beforeAll(() => {
  // Not under /tmp: a zygote cannot yet copy module files from under /tmp into a child's root
  // (native/sandbox/root.cc mounts its staging tmpfs there before it copies them).
  dir = mkdtempSync('/var/tmp/zygote-package-');
  packed = pack(dir);
  shipped = new Set(packed.entries);
}, PACK_TIMEOUT_MS + 30_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Files under ROOT/sub matching keep, relative to ROOT. */
function tree(sub: string, keep: (rel: string) => boolean): string[] {
  return readdirSync(join(ROOT, sub), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .filter(keep);
}

describe('npm pack', () => {
  it('ships exactly the built library and CLI, the addon sources, the wire spec and the prebuilt binary', () => {
    const expected = [
      'package.json',
      'README.md',
      'LICENSE',
      'binding.gyp',
      ...tree('protocol', (f) => /^protocol\/[^/]+\.thrift$/.test(f)),
      ...tree('native', (f) => /\.(cc|h)$/.test(f)),
      ...['index', 'cli'].flatMap((n) => [`dist/${n}.js`, `dist/${n}.d.ts`]),
      ...LIBRARY_DIRS.flatMap((d) => tree(`dist/${d}`, (f) => !f.endsWith('.map'))),
      PREBUILT,
    ].sort();
    expect(packed.entries).toEqual(expected);
  });

  it('ships no test, bench, example or fixture, no TypeScript source or source map, and not the attack addon', () => {
    const unwanted = packed.entries.filter((f) => /(^|\/)(test|tests|bench|examples?|fixtures)(\/|$)/.test(f) || /\.map$/.test(f) || /(?<!\.d)\.ts$/.test(f) || /attack/.test(f));
    expect(unwanted).toEqual([]);
  });

  it('ships every file its exports and bin point at', () => {
    const targets = [...Object.values(pkg.exports).flatMap((e) => Object.values(e)), ...Object.values(pkg.bin)].map((p) => posix.normalize(p));
    expect(targets.length).toBeGreaterThan(6);
    expect(targets.filter((t) => !shipped.has(t))).toEqual([]);
  });

  it('ships every module its code imports, and depends on every package its code imports', () => {
    const problems: string[] = [];
    for (const file of packed.entries.filter((f) => /\.(js|cjs|d\.ts|d\.cts)$/.test(f))) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const declaration = /\.d\.c?ts$/.test(file);
      for (const { fileName: spec } of ts.preProcessFile(text, true, true).importedFiles) {
        if (spec.startsWith('.')) {
          let target = posix.join(posix.dirname(file), spec);
          // A declaration's './x.js' is './x.d.ts'.
          if (declaration) target = target.replace(/\.js$/, '.d.ts').replace(/\.cjs$/, '.d.cts');
          if (!shipped.has(target)) problems.push(`${file} imports ${spec}, which is not in the tarball`);
          continue;
        }
        if (declaration || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!(name in pkg.dependencies)) problems.push(`${file} imports ${spec}, but ${name} is not in package.json "dependencies"`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('ships every source binding.gyp compiles and every header they include, so npm install can build from source', () => {
    // gyp files are Python literals: JSON once the # comment lines are gone.
    const gyp = JSON.parse(readFileSync(join(ROOT, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '')) as { targets: { target_name: string; sources: string[] }[] };
    expect(gyp.targets.map((t) => t.target_name)).toEqual(['zygote_native']);
    const sources = gyp.targets[0]!.sources;
    expect(sources.filter((s) => !shipped.has(s))).toEqual([]);
    const missing: string[] = [];
    for (const file of packed.entries.filter((f) => /^native\/.*\.(cc|h)$/.test(f))) {
      for (const [, header] of readFileSync(join(ROOT, file), 'utf8').matchAll(/^#include "([^"]+)"/gm)) {
        if (!shipped.has(posix.join(posix.dirname(file), header!))) missing.push(`${file} includes "${header}"`);
      }
    }
    expect(missing).toEqual([]);
    // node-addon-api's headers come from the dependency, as binding.gyp asks for them.
    expect(pkg.dependencies).toHaveProperty('node-addon-api');
  });
});

/** The user's step: prints a line from inside the sandbox. */
const STEP = `export default (greeting) => { console.log(\`\${greeting} from pid \${process.pid}\`); };\n`;

/** The user's program: an embedded zygote, one spawn, and which addon file each process mapped. */
const PROGRAM = `import { readFileSync } from 'node:fs';
import { startZygote } from 'zygote';

const addon = (pid) => readFileSync(\`/proc/\${pid}/maps\`, 'utf8').split('\\n').map((l) => l.split(/\\s+/)[5]).find((p) => p?.endsWith('.node')) ?? null;
const z = await startZygote({ main: new URL('./step.mjs', import.meta.url) });
try {
  const child = await z.spawn({ args: ['hello'] });
  child.stdin.end();
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  // The exit can be reported before the last of stdout is read: wait for both.
  const ended = new Promise((resolve) => child.stdout.once('end', resolve));
  const [st] = await Promise.all([child.exited, ended]);
  console.log(JSON.stringify({ out, code: st.code, reason: st.reason, addons: { program: addon(process.pid), zygote: addon(z.pid) } }));
} finally {
  await z.close();
}
`;

describeNeeds(npmCacheHolds(lockedDependencies()), 'the tarball, installed where there is no compiler', () => {
  it('installs with its prebuilt binary, builds nothing, and runs a sandboxed child from it', () => {
    const env = userEnv(compilerlessPath(join(dir, 'bin')), npmCacheDir());
    // The premise: nothing on this PATH compiles.
    const tools = spawnSync('sh', ['-c', 'for t in g++ c++ gcc cc make python3 python; do command -v $t; done; true'], { env, encoding: 'utf8', timeout: 10_000 });
    expect(tools.stdout).toBe('');

    const app = join(dir, 'app');
    writeApp(app, packed.file, packed.integrity);
    const ci = spawnSync('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], { cwd: app, env, encoding: 'utf8', timeout: INSTALL_TIMEOUT_MS });
    expect(ci.error, 'npm ci timed out or could not start').toBeUndefined();
    expect(ci.status, `npm ci failed:\n${ci.stdout}\n${ci.stderr}`).toBe(0);
    // The install script found the prebuilt binary loadable and compiled nothing.
    const installed = join(app, 'node_modules', 'zygote');
    expect(existsSync(join(installed, PREBUILT))).toBe(true);
    expect(existsSync(join(installed, 'build'))).toBe(false);

    writeFileSync(join(app, 'step.mjs'), STEP);
    writeFileSync(join(app, 'program.mjs'), PROGRAM);
    const run = spawnSync('node', ['program.mjs'], { cwd: app, env, encoding: 'utf8', timeout: 60_000 });
    expect(run.error, 'the program timed out or could not start').toBeUndefined();
    expect(run.status, `the program failed:\n${run.stdout}\n${run.stderr}`).toBe(0);
    const prebuilt = join(installed, PREBUILT);
    expect(JSON.parse(run.stdout.trim().split('\n').pop()!)).toEqual({
      out: 'hello from pid 2\n',
      code: 0,
      reason: 'exit',
      addons: { program: prebuilt, zygote: prebuilt },
    });
  }, INSTALL_TIMEOUT_MS + 90_000);
});
