// The client library as the "pool" test project sees it (vitest.config.ts): the same exports,
// but every zygote it starts has a warm pool, so every spawn a pool child can take (full
// sandbox, no network) is served by a claimed pool child. The sandbox suites run again
// through this to show each attack fails the same way against a claimed child.
import { startZygote as start, type StartZygoteOptions, type Zygote } from '../../dist/index.js';

export * from '../../dist/index.js';

const POOL_SIZE = 2;
/** How long a start waits for its pool to be ready; a zygote whose pool cannot fill is returned anyway. */
const POOL_READY_MS = 10_000;

export async function startZygote(options: StartZygoteOptions): Promise<Zygote> {
  const zygote = await start({ pool: { size: POOL_SIZE }, ...options });
  // A spawn that comes before a pool child is ready forks fresh: wait, so that the suites'
  // first spawns are claims too.
  const size = options.pool?.size ?? POOL_SIZE;
  const deadline = Date.now() + POOL_READY_MS;
  while (Date.now() < deadline) {
    const stats = await zygote.stats().catch(() => null);
    if (stats === null || stats.poolIdle >= size) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return zygote;
}
