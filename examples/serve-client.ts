// A renderer and its zygote in separate processes: `zygote serve` on a Unix socket (what a
// sidecar or a systemd service runs; here this example starts it itself, on a temporary socket)
// and `connect()` from the renderer. Three children run at once, each with its own stdin and
// stdout, then the server is stopped with SIGTERM, as a supervisor would.
//   npm run build && node dist/examples/serve-client.js
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { connect } from 'zygote';

// The `zygote` command, the package's bin: `npx zygote` where the package is a dependency; here,
// the file beside the package's entry point.
const ZYGOTE_BIN = fileURLToPath(new URL('./cli.js', import.meta.resolve('zygote')));
const MAIN = fileURLToPath(new URL('../../examples/mains/shout.mjs', import.meta.url));
const WAIT_MS = 10_000;

/** Resolves once the server logs that it listens; rejects if it exits first or takes too long. */
function listening(server: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`zygote serve did not listen within ${WAIT_MS} ms`)), WAIT_MS);
    server.once('exit', (code) => reject(new Error(`zygote serve exited (${code}) before it listened`)));
    // Its log goes on to this process's stderr, one line per connection, spawn and exit.
    createInterface({ input: server.stderr! }).on('line', (line) => {
      process.stderr.write(`[zygote serve] ${line}\n`);
      if (line.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function text(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    stream.setEncoding('utf8').on('data', (d: string) => (out += d)).once('end', () => resolve(out)).once('error', reject);
  });
}

const dir = mkdtempSync(join(tmpdir(), 'zygote-serve-example-'));
const socket = join(dir, 'zygote.sock');
const server = spawn(process.execPath, [ZYGOTE_BIN, 'serve', '--socket', socket, '--main', MAIN, '--max-wall-time', '30000'], { stdio: ['ignore', 'inherit', 'pipe'] });
const stopped = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
try {
  await listening(server);
  // Every child of this handle gets at most 10 s, below the server's cap of 30 s.
  const z = await connect(socket, { limits: { wallTimeMs: 10_000 } });
  console.log(`connected to the zygote at ${socket} (pid ${z.pid})`);
  const words = ['north', 'east', 'south'];
  const runs = await Promise.all(
    words.map(async (word, i) => {
      const child = await z.spawn({ args: [`child ${i}`], name: `shout-${i}` });
      child.stdin.end(word);
      const [out, st] = await Promise.all([text(child.stdout), child.exited]);
      return { out, st };
    }),
  );
  for (const { out, st } of runs) console.log(`${out} (exit ${st.code}, ${st.reason}, ${st.wallMs.toFixed(1)} ms)`);
  await z.close();
} finally {
  server.kill('SIGTERM');
  const timer = setTimeout(() => server.kill('SIGKILL'), WAIT_MS);
  const code = await stopped;
  clearTimeout(timer);
  rmSync(dir, { recursive: true, force: true });
  console.log(`zygote serve stopped (exit ${code})`);
  if (code !== 0) process.exitCode = 1;
}
