// The layer check (scripts/check-layers.mjs): the tree follows the layers, and the check fails,
// naming the file, the import and the rule, on a copy of the tree with a client -> zygote and a
// zygote -> client import put back, on a bench file that reaches past the package's entries,
// and on a cycle between directories that the rules would otherwise allow.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/index.js';

const SCRIPT = join(ROOT, 'scripts/check-layers.mjs');

interface Problem {
  file: string;
  spec: string | null;
  target: string | null;
  message: string;
}
interface CheckLayers {
  checkLayers(root: string, rules?: { layers?: Record<string, string[]>; publicOnly?: string[] }): { files: string[]; imports: unknown[]; problems: Problem[] };
  LAYERS: Record<string, string[]>;
}
const { checkLayers, LAYERS } = (await import(pathToFileURL(SCRIPT).href)) as CheckLayers;

function run(root: string) {
  return spawnSync(process.execPath, [SCRIPT, '--root', root], { encoding: 'utf8', timeout: 60_000 });
}

const tmp = mkdtempSync(join(tmpdir(), 'zygote-layers-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** What the check says of a tree of the given files (path -> text) with a package.json. */
function problemsOf(name: string, files: Record<string, string>, rules: { exports?: Record<string, string>; layers?: Record<string, string[]> } = {}): string[] {
  const root = join(tmp, name);
  files['package.json'] = JSON.stringify({ name: 'zygote', type: 'module', exports: rules.exports ?? { '.': './dist/index.js' } });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return checkLayers(root, { layers: rules.layers }).problems.map((p) => p.message);
}

/** Adds a line after a file's opening comment. */
function addImport(root: string, file: string, line: string): void {
  const path = join(root, file);
  const text = readFileSync(path, 'utf8');
  const at = text.search(/^import /m);
  writeFileSync(path, `${text.slice(0, at)}${line}\n${text.slice(at)}`);
}

describe('the layer check', () => {
  it('passes on the tree as it is', () => {
    const r = run(ROOT);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^check-layers: \d+ files, \d+ imports of the package's own code, all along the layers\n$/);
    const { files, problems } = checkLayers(ROOT);
    expect(problems).toEqual([]);
    // It read every layer, the entries, bench/ and examples/.
    for (const dir of [...Object.keys(LAYERS), 'bench', 'examples']) expect(files.some((f) => f === dir || f.startsWith(`${dir}/`)), dir).toBe(true);
  });

  it('fails on a copy of the tree with a client -> zygote and a zygote -> client import put back, naming file, import and rule', () => {
    const copy = join(tmp, 'reintroduced');
    for (const entry of ['package.json', 'index.ts', 'cli.ts', 'protocol', 'native', 'client', 'zygote', 'steps', 'bench', 'examples']) {
      cpSync(join(ROOT, entry), join(copy, entry), { recursive: true, filter: (src) => !src.includes('node_modules') });
    }
    expect(run(copy).status).toBe(0);
    addImport(copy, 'client/options.ts', "import { resolveSandbox } from '../zygote/sandbox/policy.js';");
    addImport(copy, 'zygote/server.ts', "import { startZygote } from '../client/index.js';");
    const r = run(copy);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      "check-layers: client/options.ts imports '../zygote/sandbox/policy.js' (zygote/sandbox/policy.ts): client/ may import only protocol/, native/, not zygote/",
      "check-layers: zygote/server.ts imports '../client/index.js' (client/index.ts): zygote/ may import only protocol/, native/, not client/",
      "check-layers: import cycle between directories: client/ -> zygote/ -> client/ (client/options.ts imports '../zygote/sandbox/policy.js'; zygote/server.ts imports '../client/index.js')",
      'check-layers: 3 imports against the layers (README, Layout)',
    ]);
  });

  it('fails on the server importing the steps layer, and on the steps layer importing the package root', () => {
    const problems = problemsOf('upward', {
      'zygote/cli.ts': "import { registerRun } from '../steps/run-command.js';\n",
      'steps/run-command.ts': "import { startZygote } from 'zygote';\nexport const registerRun = startZygote;\n",
      'client/index.ts': 'export const startZygote = 1;\n',
      'index.ts': "export * from './client/index.js';\n",
    });
    expect(problems).toEqual([
      "steps/run-command.ts imports 'zygote' (index.ts): steps/ may import only client/, protocol/, native/, not index.ts",
      "zygote/cli.ts imports '../steps/run-command.js' (steps/run-command.ts): zygote/ may import only protocol/, native/, not steps/",
    ]);
  });

  it('lets bench/ and examples/ import the package only by its public entry points', () => {
    const files = {
      'bench/ok.ts': "import { startZygote } from 'zygote';\nimport { COLD_MAIN } from 'zygote/cold';\nimport { x } from './lib/x.js';\n",
      'bench/lib/x.ts': 'export const x = 1;\n',
      'bench/deep.ts': "import { runStep } from '../steps/run-step.js';\n",
      'examples/private.ts': "import { x } from 'zygote/steps/run-step';\n",
      'index.ts': 'export const startZygote = 1;\n',
      'zygote/cold.ts': 'export const COLD_MAIN = 1;\n',
      'steps/run-step.ts': 'export const runStep = 1;\n',
    };
    expect(problemsOf('bench', files, { exports: { '.': './dist/index.js', './cold': './dist/zygote/cold.js' } })).toEqual([
      "bench/deep.ts imports '../steps/run-step.js' (steps/run-step.ts): bench/ may import the package only by its public entry points ('zygote', 'zygote/cold'), as a user's code would",
      "examples/private.ts imports 'zygote/steps/run-step', which is not an entry point in package.json \"exports\" ('zygote', 'zygote/cold')",
    ]);
  });

  it('fails on a cycle between directories even where each import is allowed, and on a directory with no rule', () => {
    const files = {
      'client/a.ts': "import type { B } from '../steps/b.js';\nexport type A = B;\n",
      'steps/b.ts': "export { A } from '../client/a.js';\nexport type B = 1;\n",
      'protocol/p.ts': 'export const p = 1;\n',
      'lib/stray.ts': "import { p } from '../protocol/p.js';\n",
    };
    // client/ may import steps/ here, so only the cycle is against the rules.
    expect(problemsOf('cycle', files, { layers: { ...LAYERS, client: [...LAYERS.client, 'steps'] } })).toEqual([
      'lib/stray.ts: lib/ has no rule in scripts/check-layers.mjs (LAYERS or PUBLIC_ONLY): say what it may import',
      "import cycle between directories: client/ -> steps/ -> client/ (client/a.ts imports '../steps/b.js'; steps/b.ts imports '../client/a.js')",
    ]);
  });
});
