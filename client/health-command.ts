// `zygote health --socket P`: asks a served zygote whether it can serve, for supervisors
// (systemd ExecStartPost, Kubernetes probes). Exit 0 healthy; 1 not, with the reason on stdout;
// 2 for a usage error (commander's). A stale socket (nothing listening), a refusal and a zygote
// that does not answer in time are all "not healthy", each with its own reason.
import { InvalidArgumentError, type Command } from 'commander';
import { connect } from './start.js';
import type { ZygoteHealth } from '../protocol/control.js';

const DEFAULT_TIMEOUT_MS = 5_000;
/** Between attempts while --wait-ms lasts. */
const RETRY_MS = 200;

export function registerHealth(program: Command): void {
  program
    .command('health')
    .description('Ask the zygote serving SOCKET whether it can serve: it forks a throwaway child and checks its cgroups and nftables rules. Exit 0 healthy, 1 not (the reason is printed).')
    .requiredOption('--socket <path>', 'the socket `zygote serve --socket` listens on')
    .option('--timeout-ms <ms>', 'how long one attempt may take, connecting included', parsePositive, DEFAULT_TIMEOUT_MS)
    .option('--wait-ms <ms>', 'retry until healthy for up to this long (a unit starting, a pod becoming ready); 0: one attempt', parseNonNegative, 0)
    .option('--json', 'print the answer as one JSON object')
    .action(async (opts: { socket: string; timeoutMs: number; waitMs: number; json?: boolean }) => {
      const deadline = performance.now() + opts.waitMs;
      let answer = await check(opts.socket, opts.timeoutMs);
      while (!answer.healthy && performance.now() + RETRY_MS < deadline) {
        await new Promise((r) => setTimeout(r, RETRY_MS));
        answer = await check(opts.socket, Math.min(opts.timeoutMs, Math.max(1, deadline - performance.now())));
      }
      if (opts.json) process.stdout.write(`${JSON.stringify(answer)}\n`);
      else process.stdout.write(answer.healthy ? `healthy (${answer.checks.join(', ')})\n` : `unhealthy: ${answer.problems.join('; ')}\n`);
      process.exitCode = answer.healthy ? 0 : 1;
    });
}

/** One attempt: connect, ask, close. Never throws: a failure is an unhealthy answer. */
async function check(socket: string, timeoutMs: number): Promise<ZygoteHealth> {
  try {
    // Both waits bounded: the greeting, then the answer.
    const z = await connect(socket, { timeoutMs, spawnTimeoutMs: timeoutMs });
    try {
      return await z.health();
    } finally {
      await z.close();
    }
  } catch (err) {
    const e = err as Error & { cause?: NodeJS.ErrnoException };
    const code = e.cause?.code ?? (err as NodeJS.ErrnoException).code;
    const why = code === 'ECONNREFUSED' ? 'nothing is listening on it (a stale socket)' : code === 'ENOENT' ? 'no such socket' : e.message;
    return { healthy: false, problems: [`cannot ask the zygote at ${socket}: ${why}`], checks: [] };
  }
}

function parsePositive(value: string): number {
  const n = parseNonNegative(value);
  if (n === 0) throw new InvalidArgumentError('expected a positive number of milliseconds');
  return n;
}

function parseNonNegative(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}
