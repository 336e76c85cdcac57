// Where the bench finds its fixtures and writes its results, from the built file's location.
import { fileURLToPath } from 'node:url';

/** The package root: this file runs as dist/bench/lib/paths.js. */
const ROOT = new URL('../../../', import.meta.url);

/** A fixture main; fixtures stay in the source tree (tsc does not copy .mjs files). */
export function fixtureUrl(name: string): URL {
  return new URL(`bench/fixtures/${name}`, ROOT);
}

export const RESULTS_DIR = fileURLToPath(new URL('bench/results/', ROOT));

/** The cold runner, the package's `zygote/cold` entry (zygote/cold.ts). */
export const COLD_RUNNER = fileURLToPath(import.meta.resolve('zygote/cold'));
