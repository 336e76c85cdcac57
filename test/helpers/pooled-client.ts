// The client library as the "pool" test project sees it (vitest.config.ts): the same exports,
// but every zygote it starts has a warm pool, so every spawn a pool child can take (full
// sandbox, no network) is served by a claimed pool child. The sandbox suites run again
// through this to show each attack fails the same way against a claimed child.
import { startZygote as start, type StartZygoteOptions, type Zygote } from '../../dist/index.js';

export * from '../../dist/index.js';

export function startZygote(options: StartZygoteOptions): Promise<Zygote> {
  return start({ pool: { size: 2 }, ...options });
}
