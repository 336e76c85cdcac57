// Writing a run's raw numbers to bench/results/<kind>-<ISO timestamp>.json (gitignored).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RESULTS_DIR } from './paths.js';

/** Writes data as pretty JSON and returns the file's path. */
export function writeResults(kind: string, startedAt: Date, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  // ISO 8601 with ':' swapped for '-', so the name is valid on every file system.
  const path = join(RESULTS_DIR, `${kind}-${startedAt.toISOString().replaceAll(':', '-')}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}
