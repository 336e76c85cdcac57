// One of the soak's client processes (forked by soak-run.ts, as the client uid): connects to the
// served zygote, runs the spawns its parent hands it (soak-plan.ts says what each asks for and
// how it must end), each to its exit, a bounded number at a time, and reports counts by outcome.
// It exits when told to, or when its parent goes.
import { connect, type Zygote } from 'zygote';
import { readAll, TimeoutError, within } from './lib/waits.js';
import { emptyCounts, type ClientConfig, type Failure, type FromClient, type Outcome, type ToClient } from './soak-messages.js';
import { soakSpawn, type SoakSpawn, type SpawnKind } from './soak-plan.js';

/** How long a killed child may take to be reported reaped, and its stdio to end after its exit. */
const GRACE_MS = 5_000;
/** Failures kept per phase (the counts have them all). */
const MAX_FAILURES = 20;
/** A progress message every this many spawns. */
const PROGRESS_EVERY = 10;

const config = JSON.parse(process.argv[2] ?? '') as ClientConfig;
let z: Zygote | null = null;
let stopping = false;

process.on('disconnect', () => void shutDown(1));
process.on('message', (m: ToClient) => {
  if (m.type === 'run') runPhase(m).then(send, (err: Error) => send({ type: 'error', message: `${m.phase}: ${err.stack ?? err.message}` }));
  else if (m.type === 'close') void shutDown(0);
});

try {
  z = await connect(config.socket, { timeoutMs: 20_000, spawnTimeoutMs: config.childTimeoutMs });
  send({ type: 'ready', pid: process.pid, uid: process.getuid!() });
} catch (err) {
  send({ type: 'error', message: `client ${config.index} cannot connect: ${(err as Error).message}` });
  process.exitCode = 1;
  process.disconnect();
}

function send(m: FromClient): void {
  if (process.connected) process.send!(m);
}

async function shutDown(code: number): Promise<void> {
  // Once: our own disconnect() below fires 'disconnect' too.
  if (stopping) return;
  stopping = true;
  // close() kills and reaps (bounded) any child still running, then hangs up.
  await z?.close();
  process.exitCode = code;
  if (process.connected) process.disconnect();
}

async function runPhase(m: Extract<ToClient, { type: 'run' }>): Promise<FromClient> {
  if (z === null) throw new Error('not connected');
  const zygote = z;
  const counts = emptyCounts();
  const byKind: Partial<Record<SpawnKind, number>> = {};
  const failures: Failure[] = [];
  let next = m.first;
  let done = 0;
  const worker = async () => {
    while (next < m.end) {
      const i = next;
      next += m.stride;
      const plan = soakSpawn(i, config.network);
      const r = await runSpawn(zygote, i, plan, config.childTimeoutMs);
      counts[r.outcome]++;
      byKind[plan.kind] = (byKind[plan.kind] ?? 0) + 1;
      if (r.outcome !== 'ok' && failures.length < MAX_FAILURES) failures.push({ i, kind: plan.kind, outcome: r.outcome, detail: r.detail });
      if (++done % PROGRESS_EVERY === 0) send({ type: 'progress', phase: m.phase, done });
    }
  };
  await Promise.all(Array.from({ length: m.concurrency }, worker));
  return { type: 'done', phase: m.phase, counts, byKind, failures };
}

/** Spawns i as planned, waits (bounded) for its exit and output, and says how it ended. */
async function runSpawn(zygote: Zygote, i: number, plan: SoakSpawn, timeoutMs: number): Promise<{ outcome: Outcome; detail: string }> {
  let child;
  try {
    child = await zygote.spawn({ args: [plan.mode], name: `soak-${i}`, ...(plan.limits && { limits: plan.limits }), ...(plan.network && { network: plan.network }) });
  } catch (err) {
    return { outcome: 'spawnFailed', detail: (err as Error).message };
  }
  child.stdin.end(); // soak-main reads no input
  const stdout = readAll(child.stdout);
  const stderr = readAll(child.stderr);
  // A 'hold' child waits for this: killed once it has shown it runs.
  if ('killed' in plan.expect) child.stdout.once('data', () => child.kill());
  let status;
  try {
    status = await within(child.exited, timeoutMs, `spawn ${i} (pid ${child.pid})`);
  } catch (err) {
    if (!(err instanceof TimeoutError)) return { outcome: 'lost', detail: `lost with the zygote: ${(err as Error).message}` };
    child.kill();
    await within(child.exited, GRACE_MS, 'reaping a killed child').catch(() => undefined);
    return { outcome: 'hung', detail: err.message };
  }
  const out = await within(stdout, GRACE_MS, 'stdout to end').catch((err: Error) => `(${err.message})`);
  const errText = await within(stderr, GRACE_MS, 'stderr to end').catch(() => '');
  const how = `code ${status.code}, signal ${status.signal}, reason ${status.reason}; stderr ${JSON.stringify(errText.slice(-300))}`;
  const exitOk = 'killed' in plan.expect ? status.reason === 'killed' : status.code === plan.expect.code && status.signal === null;
  if (!exitOk) return { outcome: 'wrongExit', detail: `expected ${JSON.stringify(plan.expect)}, got ${how}` };
  if (out !== 'k') return { outcome: 'wrongOutput', detail: `stdout ${JSON.stringify(out.slice(0, 100))}, expected "k"` };
  return { outcome: 'ok', detail: '' };
}
