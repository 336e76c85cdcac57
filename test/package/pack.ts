// The package as npm would publish it: `npm pack` of the checkout, and what the tarball holds.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers/index.js';

/** npm pack's prepack may compile the prebuilt addon (about 30 s on two idle cores). */
export const PACK_TIMEOUT_MS = 8 * 60_000;

export interface Packed {
  /** The tarball's path. */
  file: string;
  /** Its sha512 integrity, as a lockfile records it. */
  integrity: string;
  /** Every file in it, relative to the package's root (npm's "package/" prefix removed), sorted. */
  entries: string[];
}

/** Packs the checkout into dir with `npm pack`, scripts and all, as a publish would. */
export function pack(dir: string): Packed {
  const r = spawnSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', timeout: PACK_TIMEOUT_MS });
  if (r.error || r.status !== 0) throw new Error(`npm pack failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stderr.slice(-4000)}`);
  const [info] = JSON.parse(r.stdout) as { filename: string; integrity: string }[];
  const file = join(dir, info!.filename);
  // The tarball itself, not npm's account of it.
  const list = spawnSync('tar', ['-tzf', file], { encoding: 'utf8', timeout: 30_000 });
  if (list.error || list.status !== 0) throw new Error(`tar -tzf ${file} failed: ${list.error?.message ?? list.stderr}`);
  const entries = list.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      if (!l.startsWith('package/')) throw new Error(`${file}: entry ${l} is outside package/`);
      return l.slice('package/'.length);
    })
    .sort();
  return { file, integrity: info!.integrity, entries };
}
