#!/usr/bin/env node
// The layer check: every import of the package's own code follows the arrows in LAYERS (the
// README's Layout), bench/ and examples/ import the package only by its public entry points,
// and no import cycle runs between top-level directories. `npm test` runs it
// (test/scripts/check-layers.test.ts); so does `npm run check:layers`.
//   node scripts/check-layers.mjs [--root DIR]
// It reads the sources as text with TypeScript's own import scanner (imports, re-exports,
// `import type`, literal import() and require()); nothing is compiled or run.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** What each top-level directory (or top-level entry file) may import besides itself. */
export const LAYERS = {
  protocol: [],
  native: ['protocol'],
  client: ['protocol', 'native'],
  zygote: ['protocol', 'native'],
  steps: ['client', 'protocol', 'native'],
  // The package's root entry and the command line's.
  'index.ts': ['client', 'steps'],
  'cli.ts': ['zygote', 'steps', 'client'],
};

/** Directories that may import the package only by its name (its "exports"), as a user would. */
export const PUBLIC_ONLY = ['bench', 'examples'];

/** Top-level directories that are neither layers nor users of the package: not checked. */
const EXEMPT = new Set(['test', 'scripts', 'deploy', 'node_modules', 'dist', 'build']);

const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/;
const DECLARATION = /\.d\.(ts|mts|cts)$/;

/**
 * Checks the tree at root. Returns every file read, every import of our own code, and the
 * problems: { file, spec, target, message }, file and target relative to root.
 */
export function checkLayers(root, { layers = LAYERS, publicOnly = PUBLIC_ONLY } = {}) {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const files = sourceFiles(root, layers, publicOnly);
  const problems = [];
  const imports = [];
  for (const file of files) {
    const from = unitOf(file);
    if (!(from in layers) && !publicOnly.includes(from)) {
      problems.push({ file, spec: null, target: null, message: `${file}: ${name(from)} has no rule in scripts/check-layers.mjs (LAYERS or PUBLIC_ONLY): say what it may import` });
      continue;
    }
    const text = readFileSync(join(root, file), 'utf8');
    for (const { fileName: spec } of ts.preProcessFile(text, true, true).importedFiles) {
      const r = resolveImport(root, pkg, file, spec);
      if (r === null) continue; // node: builtins and other packages
      if (r.target === null) {
        problems.push({ file, spec, target: null, message: `${file} imports '${spec}', which ${r.why}` });
        continue;
      }
      const to = unitOf(r.target);
      imports.push({ file, spec, target: r.target, from, to });
      if (to === from) continue;
      if (publicOnly.includes(from)) {
        if (!r.viaPackage) {
          problems.push({ file, spec, target: r.target, message: `${file} imports '${spec}' (${r.target}): ${from}/ may import the package only by its public entry points (${publicEntries(pkg).join(', ')}), as a user's code would` });
        }
        continue;
      }
      if (!layers[from].includes(to)) {
        problems.push({ file, spec, target: r.target, message: `${file} imports '${spec}' (${r.target}): ${name(from)} may import ${layers[from].length ? `only ${layers[from].map(name).join(', ')}` : 'nothing of the package\'s own'}, not ${name(to)}` });
      }
    }
  }
  for (const cycle of directoryCycles(imports)) {
    const via = cycle.map((edge) => `${edge.file} imports '${edge.spec}'`).join('; ');
    problems.push({ file: cycle[0].file, spec: cycle[0].spec, target: cycle[0].target, message: `import cycle between directories: ${[...cycle.map((e) => name(e.from)), name(cycle[0].from)].join(' -> ')} (${via})` });
  }
  return { files, imports, problems };
}

/** The source files of every top-level directory and entry file the check knows, or should. */
function sourceFiles(root, layers, publicOnly) {
  const out = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || EXEMPT.has(entry.name)) continue;
    if (entry.isFile()) {
      // Top-level files: the entries in LAYERS; tool configuration (vitest.config.ts) is not code of the package.
      if (entry.name in layers) out.push(entry.name);
      continue;
    }
    if (!entry.isDirectory()) continue;
    for (const f of readdirSync(join(root, entry.name), { recursive: true })) {
      const rel = join(entry.name, String(f));
      if (rel.split(sep).includes('node_modules')) continue;
      if (SOURCE.test(rel) && !DECLARATION.test(rel) && statSync(join(root, rel)).isFile()) out.push(rel.split(sep).join('/'));
    }
  }
  return out.sort();
}

/**
 * Where an import leads, relative to root: { target, viaPackage } for our own code, null for
 * a builtin or another package, { target: null, why } when it leads nowhere it may.
 */
function resolveImport(root, pkg, file, spec) {
  if (spec === pkg.name || spec.startsWith(`${pkg.name}/`)) {
    const key = spec === pkg.name ? '.' : `./${spec.slice(pkg.name.length + 1)}`;
    const entry = pkg.exports?.[key];
    const built = typeof entry === 'string' ? entry : (entry?.default ?? entry?.import);
    if (typeof built !== 'string') return { target: null, why: `is not an entry point in package.json "exports" (${publicEntries(pkg).join(', ')})` };
    // The built file's source: dist/X.js was compiled from X.ts.
    const source = findSource(root, resolve(root, built.replace(/^\.\/dist\//, './')));
    return source ? { target: source, viaPackage: true } : { target: null, why: `maps to ${built}, whose source is not in the tree` };
  }
  if (!spec.startsWith('.') && !spec.startsWith('/')) return null;
  // Not code: an addon's binary (the tests load test/native/build/Release/*.node), JSON.
  if (/\.[a-z]+$/.test(spec) && !SOURCE.test(spec)) return null;
  const abs = resolve(dirname(join(root, file)), spec);
  const rel = relative(root, abs);
  if (rel.startsWith('..')) return { target: null, why: 'lies outside the package' };
  const source = findSource(root, abs);
  return source ? { target: source, viaPackage: false } : { target: null, why: 'does not resolve to a source file of the package' };
}

/** The source file an import path names (x.js for x.ts and the like), relative to root. */
function findSource(root, abs) {
  const stem = abs.replace(/\.(m|c)?js$/, '');
  const candidates = [abs, `${stem}.ts`, `${stem}.mts`, `${stem}.cts`, `${stem}.js`, `${stem}.mjs`, `${stem}.cjs`, join(abs, 'index.ts'), join(abs, 'index.js')];
  const found = candidates.find((c) => existsSync(c) && statSync(c).isFile());
  return found ? relative(root, found).split(sep).join('/') : null;
}

/** The top-level directory a file is in, or the file itself at the top. */
function unitOf(rel) {
  return rel.split('/')[0];
}

function name(unit) {
  return unit.includes('.') ? unit : `${unit}/`;
}

function publicEntries(pkg) {
  return Object.keys(pkg.exports ?? {}).map((k) => `'${k === '.' ? pkg.name : `${pkg.name}/${k.slice(2)}`}'`);
}

/**
 * Each cycle in the graph of top-level directories (an edge: some file of one imports some
 * file of the other), as the imports that make it, one per strongly connected component.
 */
function directoryCycles(imports) {
  const edges = new Map();
  for (const i of imports) {
    if (i.from === i.to) continue;
    if (!edges.has(i.from)) edges.set(i.from, new Map());
    if (!edges.get(i.from).has(i.to)) edges.get(i.from).set(i.to, i);
  }
  const cycles = [];
  for (const component of stronglyConnected([...edges.keys()], (u) => [...(edges.get(u)?.keys() ?? [])])) {
    if (component.length < 2) continue;
    // The shortest way round from the component's first directory back to it, within it.
    const start = [...component].sort()[0];
    const inside = new Set(component);
    const back = new Map([[start, null]]);
    const queue = [start];
    let last = null;
    while (queue.length > 0 && last === null) {
      const u = queue.shift();
      for (const [v, edge] of edges.get(u) ?? []) {
        if (!inside.has(v)) continue;
        if (v === start) {
          last = edge;
          break;
        }
        if (!back.has(v)) {
          back.set(v, edge);
          queue.push(v);
        }
      }
    }
    const path = [last];
    for (let e = back.get(last.from); e; e = back.get(e.from)) path.unshift(e);
    cycles.push(path);
  }
  return cycles;
}

/** Tarjan's strongly connected components. */
function stronglyConnected(nodes, next) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const out = [];
  let counter = 0;
  const visit = (u) => {
    index.set(u, counter);
    low.set(u, counter++);
    stack.push(u);
    onStack.add(u);
    for (const v of next(u)) {
      if (!index.has(v)) {
        visit(v);
        low.set(u, Math.min(low.get(u), low.get(v)));
      } else if (onStack.has(v)) low.set(u, Math.min(low.get(u), index.get(v)));
    }
    if (low.get(u) === index.get(u)) {
      const component = [];
      let v;
      do {
        v = stack.pop();
        onStack.delete(v);
        component.push(v);
      } while (v !== u);
      out.push(component);
    }
  };
  for (const u of nodes) if (!index.has(u)) visit(u);
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--root');
  const root = resolve(at > 0 ? process.argv[at + 1] : join(dirname(fileURLToPath(import.meta.url)), '..'));
  const { files, imports, problems } = checkLayers(root);
  for (const p of problems) console.error(`check-layers: ${p.message}`);
  if (problems.length > 0) {
    console.error(`check-layers: ${problems.length} import${problems.length === 1 ? '' : 's'} against the layers (README, Layout)`);
    process.exitCode = 1;
  } else {
    console.log(`check-layers: ${files.length} files, ${imports.length} imports of the package's own code, all along the layers`);
  }
}
