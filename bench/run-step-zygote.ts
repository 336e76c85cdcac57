// The zygote peers: an embedded zygote running the step runner, as the demo starts it
// (examples/demo.ts), each step a runStep(); with a warm pool when startZygote has one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStep, startZygote, stepRunner, type Limits, type SpawnOptions, type StartZygoteOptions, type Zygote } from 'zygote';
import { fixturePath } from './lib/paths.js';
import { faultsFrom, HOLD_MARK, STEP_LIMITS, until, type Held, type Peer, type RunningPeer, type Sample, type StepCase } from './run-step-peer.js';

export const IDENTITY_STEP = fixturePath('steps/identity.mjs');
const NO_LIMITS: Limits = { memoryBytes: null, pids: null };

/** The pool the pool peer asks for: enough idle children for the bench's concurrency of 16. */
export const BENCH_POOL = { size: 16 };

/** The options the lead's pool adds (issue 11): passed through as they are, not typed here yet. */
type WithPool = StartZygoteOptions & { pool?: { size: number } };

/** How often the metrics peer's scraper reads /metrics: far more often than Prometheus would (15 s). */
const SCRAPE_EVERY_MS = 1_000;

export function zygotePeer(name: string, withPool: boolean, withMetrics = false): Peer {
  return {
    name,
    description: withMetrics
      ? `as zygote-pool, with metrics on (startZygote({ metrics: 'unix:...' })) and scraped every ${SCRAPE_EVERY_MS} ms`
      : withPool
        ? `startZygote({ main: stepRunner, preload: ['apache-arrow'], pool: ${JSON.stringify(BENCH_POOL)} }), runStep() per step`
        : "startZygote({ main: stepRunner, preload: ['apache-arrow'] }) as the demo does, runStep() per step: full sandbox, a fork per step",
    async start() {
      const opts: WithPool = { main: stepRunner, preload: ['apache-arrow'], env: { LC_ALL: 'C.UTF-8' }, name: `bench-${name}` };
      if (withPool) opts.pool = BENCH_POOL;
      let scraper: Scraper | null = null;
      if (withMetrics) {
        scraper = new Scraper();
        opts.metrics = `unix:${scraper.socketPath}`;
      }
      let z: Zygote;
      try {
        z = await startZygote(opts);
      } catch (err) {
        // Detected, not assumed: startZygote refuses an unknown key with a TypeError naming it.
        if (withPool && err instanceof TypeError && /`pool`/.test(err.message)) return { skipped: `startZygote() has no \`pool\` option yet (it said: ${err.message})` };
        throw err;
      }
      scraper?.start();
      const r = running(z);
      if (!scraper) return r;
      const stop = scraper;
      return { ...r, close: async () => (await stop.stop(), await r.close()) };
    },
  };
}

/** Reads /metrics over the zygote's Unix socket on a timer, as a monitoring agent would. */
class Scraper {
  private readonly dir = mkdtempSync(join(tmpdir(), 'zygote-bench-metrics-'));
  readonly socketPath = join(this.dir, 'metrics.sock');
  private timer: NodeJS.Timeout | null = null;
  scrapes = 0;

  start(): void {
    this.timer = setInterval(() => {
      const req = request({ socketPath: this.socketPath, path: '/metrics', agent: false }, (res) => {
        res.resume();
        res.on('end', () => this.scrapes++);
      });
      req.on('error', () => {});
      req.end();
    }, SCRAPE_EVERY_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    console.log(`  zygote-pool-metrics: ${this.scrapes} scrapes of /metrics during the run`);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function running(z: Zygote): RunningPeer {
  const stats = (z as unknown as { stats?: () => unknown }).stats;
  return {
    residentPid: z.pid,
    async run(c, opts = {}) {
      const t0 = performance.now();
      const out = await runStep(z, { module: IDENTITY_STEP, input: c.table, limits: c.limited ? STEP_LIMITS : NO_LIMITS, timings: opts.timings === true });
      const ms = performance.now() - t0;
      return checked(out, c, ms);
    },
    async hold<T>(c: StepCase, atHold: (h: Held) => T): Promise<T> {
      // runStep with a zygote whose spawn() also tells the bench the child and its /output.
      let child: Awaited<ReturnType<Zygote['spawn']>> | null = null;
      let outDir: string | null = null;
      let holding = false;
      const spy = Object.create(z, {
        spawn: {
          value: async (o: SpawnOptions) => {
            const ch = await z.spawn(o);
            // runStep's /output is the child's own output filesystem (spawn({ output })), reached through its fd.
            outDir = o.mounts?.find((m) => m.target === '/output')?.source ?? ch.output?.path ?? null;
            ch.stderr.on('data', (d: Buffer) => (holding ||= d.toString().includes(HOLD_MARK)));
            child = ch;
            return ch;
          },
        },
      }) as Zygote;
      let over = false;
      const done = runStep(spy, { module: IDENTITY_STEP, input: c.table, params: { release: '/output/release' }, limits: c.limited ? STEP_LIMITS : NO_LIMITS });
      // A runStep that fails before the step holds ends the wait; its error is awaited below.
      done.then(() => (over = true), () => (over = true));
      let value: T;
      try {
        await until(() => holding || over, 30_000, 'the held step saying it holds');
        if (!holding) {
          checked(await done, c, 0);
          throw new Error('the step ended without holding');
        }
        value = atHold({ pid: child!.pid });
      } finally {
        if (outDir) writeFileSync(join(outDir, 'release'), '');
      }
      checked(await done, c, 0);
      return value;
    },
    stats: typeof stats === 'function' ? () => stats.call(z) : undefined,
    close: () => z.close(),
  };
}

function checked(out: Awaited<ReturnType<typeof runStep>>, c: StepCase, ms: number): Sample {
  if (!out.ok) throw new Error(`runStep failed (${out.error.kind}): ${out.error.message}\n${out.stderr.text}`);
  const rows = out.table.numRows;
  out.release();
  if (rows !== c.table.numRows) throw new Error(`the identity step returned ${rows} rows, not ${c.table.numRows}`);
  return { ms, faults: faultsFrom(out.stderr.text), timings: out.timings };
}
