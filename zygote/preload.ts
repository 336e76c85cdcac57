// Importing main and the preload list, as the zygote does once before it serves.
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { MainFunction } from './child-runtime.js';

/**
 * Imports each module so its code and data sit in the zygote's heap, shared copy-on-write by
 * every child. Bare specifiers are resolved from main's location (where the user's
 * node_modules is), falling back to the zygote's own resolution.
 */
export async function preloadModules(mainUrl: string, specifiers: readonly string[]): Promise<void> {
  const require = createRequire(fileURLToPath(mainUrl));
  for (const spec of specifiers) {
    let target = spec;
    try {
      target = pathToFileURL(require.resolve(spec)).href;
    } catch {
      // An ESM-only package or an URL: let import() resolve it.
    }
    try {
      await import(target);
    } catch (err) {
      throw new Error(`preload of ${JSON.stringify(spec)} failed: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * A main's optional `rehearse` export: the path its children take, run once in a learner pool
 * child (zygote/prefault.ts) so that later pool children copy the pages it writes before their
 * claim. It runs as the pool child is before any claim (no spawn, no sandbox of a spawn's, no
 * files of its own but what it makes in memory), and must not wait for anything outside.
 */
export type RehearseFunction = () => unknown;

/** Imports main and returns its default export, which must be a function. */
export async function loadMain(mainUrl: string): Promise<MainFunction> {
  return (await loadMainModule(mainUrl)).main;
}

/** Imports main: its default export, which must be a function, and its rehearsal, if any. */
export async function loadMainModule(mainUrl: string): Promise<{ main: MainFunction; rehearse: RehearseFunction | null }> {
  let mod: { default?: unknown; rehearse?: unknown };
  try {
    mod = await import(mainUrl);
  } catch (err) {
    throw new Error(`main module ${mainUrl} failed to load: ${(err as Error).message}`, { cause: err });
  }
  if (typeof mod.default !== 'function') {
    throw new Error(`main module ${mainUrl} must have a function as its default export, found ${typeof mod.default}`);
  }
  return { main: mod.default as MainFunction, rehearse: typeof mod.rehearse === 'function' ? (mod.rehearse as RehearseFunction) : null };
}

/**
 * A full, compacting GC once warm-up is done, before the first fork: the young generation
 * starts empty and what survived the imports is packed into old space, so a child's own
 * allocations start on pages nobody else has written, and the zygote's heap does not carry
 * warm-up garbage into every fork.
 */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as (opts?: { type: 'major'; execution: 'sync' }) => void)({ type: 'major', execution: 'sync' });
}
