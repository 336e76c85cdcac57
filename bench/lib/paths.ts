// Where the bench finds its fixtures and writes its results, from the built file's location.
import { fileURLToPath } from 'node:url';

/** The package root: this file runs as dist/bench/lib/paths.js. */
const ROOT = new URL('../../../', import.meta.url);

/** A fixture main; fixtures stay in the source tree (tsc does not copy .mjs files). */
export function fixtureUrl(name: string): URL {
  return new URL(`bench/fixtures/${name}`, ROOT);
}

/** A fixture's path in the source tree. */
export function fixturePath(name: string): string {
  return fileURLToPath(fixtureUrl(name));
}

/** The package root (where node_modules is). */
export const ROOT_DIR = fileURLToPath(ROOT);

export const RESULTS_DIR = fileURLToPath(new URL('bench/results/', ROOT));

/** The cold runner, the package's `zygote/cold` entry (zygote/cold.ts). */
export const COLD_RUNNER = fileURLToPath(import.meta.resolve('zygote/cold'));
