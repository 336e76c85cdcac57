// Every runnable example (examples/*.ts, built into dist/examples) runs as a user would run it,
// as its own process, exits 0 and prints what its comment promises. The demo is left to
// `npm run demo`: it times 300,000-row tables, cold starts included.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/index.js';

/** Each example's time, with room for a loaded two-core machine. */
const EXAMPLE_TIMEOUT_MS = 60_000;

/** Runs dist/examples/<name>.js; kills it at the timeout. */
function run(name: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const cp = spawn(process.execPath, [join(ROOT, 'dist/examples', `${name}.js`)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    cp.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    cp.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => cp.kill('SIGKILL'), EXAMPLE_TIMEOUT_MS);
    cp.once('error', reject);
    cp.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('examples', () => {
  it('serve-client: starts zygote serve on a socket, connects, runs three children at once, stops the server cleanly', async () => {
    const r = await run('serve-client');
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 0, signal: null });
    expect(r.stdout).toMatch(/^connected to the zygote at \/.*\/zygote\.sock \(pid \d+\)$/m);
    for (const [i, word] of ['NORTH', 'EAST', 'SOUTH'].entries()) expect(r.stdout).toMatch(new RegExp(`^child ${i}: ${word} \\(exit 0, exit, [\\d.]+ ms\\)$`, 'm'));
    expect(r.stdout).toMatch(/^zygote serve stopped \(exit 0\)$/m);
    // The server's own log, passed through: it listened, and saw each spawn.
    expect(r.stderr).toMatch(/\[zygote serve\] .* listening on /);
    expect(r.stderr.match(/\[zygote serve\] .* spawn id=\d+/g)).toHaveLength(3);
  }, EXAMPLE_TIMEOUT_MS + 5_000);

  it('run-step-files: a step reads its extra file and returns a validated table', async () => {
    const r = await run('run-step-files');
    expect({ code: r.code, signal: r.signal }, r.stderr).toEqual({ code: 0, signal: null });
    expect(r.stdout).toContain('step log: targets: 7 orders over 4 regions, in EUR');
    expect(r.stdout).toMatch(/^output: 4 rows, 4 columns \(region: .*, revenue: Float64, target: Float64, met: Bool\)$/m);
    expect(r.stdout).toMatch(/^ {2}east +revenue +390\.00 +target +350 +met$/m);
    expect(r.stdout).toMatch(/^ {2}north +revenue +203\.00 +target +250 +missed$/m);
  }, EXAMPLE_TIMEOUT_MS + 5_000);

  it("limits: a memory hog gets 'oom', a spinner 'timeout', and the next step runs", async () => {
    const r = await run('limits');
    expect({ code: r.code, signal: r.signal }, `${r.stdout}\n${r.stderr}`).toEqual({ code: 0, signal: null });
    expect(r.stdout).toMatch(/^memory-hog, memoryBytes 64 MiB: oom after \d+ ms$/m);
    expect(r.stdout).toMatch(/^spin, wallTimeMs 1 s: timeout after \d+ ms$/m);
    expect(r.stdout).toMatch(/^passthrough after them: ok, 3 rows$/m);
  }, EXAMPLE_TIMEOUT_MS + 5_000);
});
