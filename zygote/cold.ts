// The cold path: a fresh `node` that imports the same preloads and main, then runs main
// with the same runtime code a forked child uses. The benchmark's and the demo's baseline,
// exported as the package's `zygote/cold` entry.
//   node dist/zygote/cold.js <base64url JSON { main, preload, args }>
import { runMain, watchStdio } from './child-runtime.js';
import { loadMain, preloadModules } from './preload.js';

export interface ColdJob {
  main: string;
  preload: string[];
  args: unknown[];
}

export function encodeColdJob(job: ColdJob): string {
  return Buffer.from(JSON.stringify(job)).toString('base64url');
}

/** The script to run with node, beside this file in the built package. */
export const COLD_MAIN = new URL('./cold.js', import.meta.url).pathname;

if (process.argv[1] === COLD_MAIN) {
  const job = JSON.parse(Buffer.from(process.argv[2] ?? '', 'base64url').toString('utf8')) as ColdJob;
  await preloadModules(job.main, job.preload);
  const main = await loadMain(job.main);
  watchStdio();
  await runMain(main, job.args);
}
