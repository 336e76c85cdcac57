// A serve client running as another uid, for the confused-deputy tests: the built package laid
// out where that uid can read it, and test/fixtures/deputy-client.mjs run under setpriv.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { bounded, collect, ROOT } from './index.js';

export interface ClientRun {
  uid: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  results: any[];
}

/**
 * A 0755 scratch directory under /var/tmp holding the built package (hard links where the
 * filesystem allows: no data copied) and the client fixtures (deputy, tenant, flood): the
 * checkout may sit in a directory another uid cannot enter; `extra` (paths relative to the
 * checkout, e.g. `bench/fixtures`) is laid out beside them. Returns the scratch directory and
 * the package in it.
 */
export function scratchPackage(prefix: string, extra: readonly string[] = []): { scratch: string; pkg: string } {
  const scratch = mkdtempSync(join('/var/tmp', prefix));
  chmodSync(scratch, 0o755);
  const pkg = join(scratch, 'pkg');
  mkdirSync(join(pkg, 'build/Release'), { recursive: true });
  mkdirSync(join(pkg, 'test/fixtures'), { recursive: true });
  const link = (from: string, to: string) => {
    try {
      execFileSync('cp', ['-al', from, to], { stdio: 'pipe' });
    } catch {
      execFileSync('cp', ['-a', from, to], { stdio: 'pipe' });
    }
  };
  for (const name of ['package.json', 'dist', 'node_modules']) link(join(ROOT, name), join(pkg, name));
  link(join(ROOT, 'build/Release/zygote_native.node'), join(pkg, 'build/Release/zygote_native.node'));
  for (const name of ['deputy-main.mjs', 'deputy-client.mjs', 'tenant-client.mjs', 'flood-client.mjs']) copyFileSync(join(ROOT, 'test/fixtures', name), join(pkg, 'test/fixtures', name));
  for (const rel of extra) {
    mkdirSync(dirname(join(pkg, rel)), { recursive: true });
    link(join(ROOT, rel), join(pkg, rel));
  }
  return { scratch, pkg };
}

/** Runs the deputy client as uid (setpriv: real and effective ids, no groups), bounded. */
export async function asClient(pkg: string, uid: number, socket: string, ops: unknown[]): Promise<ClientRun> {
  const job = JSON.stringify({ pkg, socket, ops });
  const cp = spawn('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', process.execPath, join(pkg, 'test/fixtures/deputy-client.mjs'), job], {
    cwd: pkg,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exit = new Promise<number | null>((resolve) => cp.once('exit', (code) => resolve(code)));
  try {
    const [out, err, code] = await bounded(Promise.all([collect(cp.stdout!), collect(cp.stderr!), exit]), 90_000, `the client as uid ${uid}`);
    if (code !== 0) throw new Error(`the client as uid ${uid} exited ${code}: ${err}`);
    return JSON.parse(out) as ClientRun;
  } finally {
    if (cp.exitCode === null) cp.kill('SIGKILL');
  }
}
