// What the soak's spawn number i asks for and what it must end with: a mix that walks every
// path a spawn's resources take (a cgroup with the server's default limits or tighter ones, a
// veth and a /30 with or without its own nft allow entries, a non-zero exit, a kill through the
// zygote), the same in every run, spread evenly over the clients by i.
import type { Limits, NetworkRequest } from 'zygote';

export type SpawnKind = 'plain' | 'limited' | 'network' | 'network-allow' | 'exit-code' | 'killed';
export const SPAWN_KINDS: readonly SpawnKind[] = ['plain', 'limited', 'network', 'network-allow', 'exit-code', 'killed'];

/** The destinations a client may open for its networked children (`--network-client-allow`). */
export const CLIENT_ALLOW_NET = '192.0.2.0/24';
/** The allow entry of a 'network-allow' spawn: TEST-NET-1, inside CLIENT_ALLOW_NET; never contacted. */
const ALLOW_ENTRY = '192.0.2.1:443';

/** Tighter than the server's defaults (1 GiB, 32 pids): a bare child is charged about 2 MiB and 2 tasks. */
export const SOAK_LIMITS = { memoryBytes: 128 * 1024 * 1024, pids: 16 } as const satisfies Limits;

export interface SoakSpawn {
  kind: SpawnKind;
  /** soak-main.mjs's mode. */
  mode: 'ok' | 'exit-3' | 'hold';
  limits?: Limits;
  network?: NetworkRequest;
  /** The exit it must end with: an exit code, or killed by its client (after its byte). */
  expect: { code: 0 | 3 } | { killed: true };
}

/**
 * Spawn i of a run, in a cycle of 20: 1 in 10 networked (half of those with an allow entry of
 * their own, which the zygote adds to and removes from its table), 1 in 10 exiting 3, 1 in 20
 * killed, the rest alternately with the server's default limits and with SOAK_LIMITS. Without
 * a network the networked ones are plain.
 */
export function soakSpawn(i: number, network: boolean): SoakSpawn {
  const slot = i % 20;
  if (slot === 0 && network) return { kind: 'network', mode: 'ok', network: {}, expect: { code: 0 } };
  if (slot === 10 && network) return { kind: 'network-allow', mode: 'ok', network: { allow: [ALLOW_ENTRY] }, expect: { code: 0 } };
  if (slot === 3 || slot === 13) return { kind: 'exit-code', mode: 'exit-3', expect: { code: 3 } };
  if (slot === 7) return { kind: 'killed', mode: 'hold', limits: SOAK_LIMITS, expect: { killed: true } };
  if (slot % 2 === 1) return { kind: 'limited', mode: 'ok', limits: SOAK_LIMITS, expect: { code: 0 } };
  return { kind: 'plain', mode: 'ok', expect: { code: 0 } };
}
