// Steps after a quiet spell: what a renderer with sporadic traffic sees. Every other part of the
// bench runs steps back to back, so the zygote never goes quiet and never trims its heap
// (zygote/heap-trim.ts: after 2 s without a spawn). Here each step comes after a pause longer
// than that, so it runs in a child forked after the zygote's idle work. The bug this caught: a
// V8 timer armed in the zygote fired in every child forked after it (protocol/config.ts,
// --no-memory-reducer): back to back nothing showed; 2.5 s apart, first byte doubled.
import type { RunningPeer, StepCase } from './run-step-peer.js';
import { shuffled, summarize, type Summary } from './lib/stats.js';

/** Pause before each step: longer than the 2 s after which the zygote trims its heap, so each step follows a trim. */
export const QUIET_PAUSE_MS = 2_500;

export interface QuietResult {
  peer: string;
  case: string;
  pauseMs: number;
  steps: number;
  total: Summary;
  firstByte: Summary;
  faults: Summary;
  failures: string[];
}

/**
 * steps rounds: a pause of pauseMs, then one step of each peer, in an order shuffled each round
 * (a peer right after another pays for that one's pool refill); each peer's own quiet spell is
 * the pause plus the other peers' steps.
 */
export async function quietSpells(peers: { name: string; running: RunningPeer }[], c: StepCase, steps: number, pauseMs = QUIET_PAUSE_MS): Promise<QuietResult[]> {
  const raw = peers.map(() => ({ total: [] as number[], firstByte: [] as number[], faults: [] as number[], failures: [] as string[] }));
  for (let r = 0; r < steps; r++) {
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    for (const i of shuffled(peers.length)) {
      const p = peers[i];
      try {
        const s = await p.running.run(c, { timings: true });
        raw[i].total.push(s.ms);
        if (s.timings?.firstByteMs != null) raw[i].firstByte.push(s.timings.firstByteMs);
        if (s.faults) raw[i].faults.push(s.faults.minor);
      } catch (err) {
        raw[i].failures.push(`quiet ${r + 1}: ${(err as Error).message.slice(0, 2000)}`);
      }
    }
    process.stderr.write(`  quiet spells: ${r + 1}/${steps}\n`);
  }
  return peers.map((p, i) => ({
    peer: p.name,
    case: c.label,
    pauseMs,
    steps,
    total: summarize(raw[i].total),
    firstByte: summarize(raw[i].firstByte),
    faults: summarize(raw[i].faults),
    failures: raw[i].failures,
  }));
}
