// What the zygote has loaded, for the children's root to hold exactly that: every JavaScript
// file V8 has parsed (ESM and CommonJS, asked of the in-process inspector, which lists the
// scripts it knows at Debugger.enable) and every CommonJS module in require's cache, plus
// the package.json files Node's resolver reads for them. Asked once, before the zygote serves.
// An in-process inspector session starts no thread and opens no socket; it is closed again
// before any fork.
import { existsSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Session } from 'node:inspector';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Every module file this process has loaded, as real absolute paths, sorted. */
export function loadedModuleFiles(): string[] {
  const urls = new Set<string>();
  const session = new Session();
  session.connect();
  try {
    session.on('Debugger.scriptParsed', (m: { params: { url: string } }) => urls.add(m.params.url));
    // In-process sessions answer synchronously: every known script is reported during this call.
    let error: Error | null = null;
    session.post('Debugger.enable', (err) => (error = err));
    if (error) throw error;
    session.post('Debugger.disable');
  } finally {
    session.disconnect();
  }
  const files = new Set<string>();
  const add = (path: string) => {
    try {
      const real = realpathSync(path);
      if (statSync(real).isFile()) files.add(real);
    } catch {
      // Gone since it was loaded: nothing to show.
    }
  };
  for (const url of urls) if (url.startsWith('file:')) add(fileURLToPath(url));
  for (const path of Object.keys(createRequire(import.meta.url).cache)) if (path.startsWith('/')) add(path);
  return [...files].sort();
}

/**
 * The package.json files Node reads to load and resolve these files: the nearest one above each
 * file (its module type), and the root one of each package under node_modules (its exports,
 * for a bare import of it).
 */
export function packageJsonsOf(files: readonly string[]): string[] {
  const out = new Set<string>();
  const nearestCache = new Map<string, string | null>();
  const nearest = (dir: string): string | null => {
    if (nearestCache.has(dir)) return nearestCache.get(dir)!;
    const candidate = join(dir, 'package.json');
    const found = existsSync(candidate) ? candidate : dir === dirname(dir) ? null : nearest(dirname(dir));
    nearestCache.set(dir, found);
    return found;
  };
  for (const file of files) {
    const own = nearest(dirname(file));
    if (own) out.add(own);
    const root = packageRootUnderNodeModules(file);
    if (root && existsSync(join(root, 'package.json'))) out.add(join(root, 'package.json'));
  }
  return [...out].sort();
}

/** /x/node_modules/pkg or /x/node_modules/@scope/pkg for a file inside one, else null. */
export function packageRootUnderNodeModules(file: string): string | null {
  const marker = `${sep}node_modules${sep}`;
  const at = file.lastIndexOf(marker);
  if (at < 0) return null;
  const rest = file.slice(at + marker.length).split(sep);
  const depth = rest[0]?.startsWith('@') ? 2 : 1;
  if (rest.length <= depth) return null;
  return file.slice(0, at + marker.length) + rest.slice(0, depth).join(sep);
}

/** The package name of a bare specifier ('apache-arrow/x' -> 'apache-arrow'), or null. */
export function packageName(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(specifier)) return null;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return name && !(specifier.startsWith('@') && parts.length < 2) ? name : null;
}
