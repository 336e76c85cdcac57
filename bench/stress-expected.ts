// The digest each stress seed must print, computed here by the fixture's own code, once per seed.
import { fixtureUrl } from './lib/paths.js';

/** bench/fixtures/stress-work.mjs, as this side calls it. */
interface StressWork {
  buildIpc(seed: number): Uint8Array;
  digestOf(ipc: Uint8Array, seed: number): string;
}

export class ExpectedDigests {
  private readonly cache = new Map<number, string>();

  private constructor(private readonly work: StressWork) {}

  static async load(): Promise<ExpectedDigests> {
    const work = (await import(fixtureUrl('stress-work.mjs').href)) as StressWork;
    return new ExpectedDigests(work);
  }

  /** The exact stdout a child given seed must write. */
  stdoutFor(seed: number): string {
    let digest = this.cache.get(seed);
    if (digest === undefined) {
      digest = this.work.digestOf(this.work.buildIpc(seed), seed);
      this.cache.set(seed, digest);
    }
    return `${digest}\n`;
  }
}
