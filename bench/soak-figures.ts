// What the soak measures of a served zygote once it is idle, before and after the run: what the
// stress run's leak check counts (stress-leaks.ts: fds, its mounts, zombies, live children,
// cgroups), plus its RSS, the host's mounts, and with a network its nftables table's rules and
// set elements and its subnet's veths; and how much each may grow.
import type { Zygote } from 'zygote';
import { rssNoise, type Figure } from './lib/growth.js';
import { nftTableCounts, vethsInSubnet, type NftTableCounts } from './lib/host-net.js';
import { listMounts, readRssBytes } from './lib/procfs.js';
import { snapshotLeaks, type LeakSnapshot } from './stress-leaks.js';

/** The zygote's network, as the soak started it: its table (`inet zygote_PID`) and subnet. */
export interface ZygoteNetwork {
  table: string;
  subnet: string;
}

export interface SoakSnapshot extends LeakSnapshot {
  rssBytes: number;
  /** This process's mounts ("MOUNT_POINT FS_TYPE"): the host's mount namespace, the zygote's too unless it left it. */
  hostMounts: string[];
  /** With a network: its table's counts (null: the table is missing). */
  nft: NftTableCounts | null;
  /** With a network: the host's veths of its subnet. */
  veths: string[];
}

const POLL_MS = 50;
/**
 * How long after its last spawn an idle zygote gives back the heap a busy spell grew (README,
 * Operations: "Memory"), and a second more for the trim itself and a loaded machine.
 */
const HEAP_TRIM_WAIT_MS = 2_000 + 1_000;
/**
 * The table's set of the live children's own allow entries (zygote/sandbox/network.ts): empty
 * once the idle zygote has removed the reaped children's. Its other sets are its configuration.
 */
const CHILD_SET = 'child_allow';

/** Elements in all of the table's sets (NaN: no table). */
export function nftSetElements(s: SoakSnapshot): number {
  return s.nft === null ? NaN : Object.values(s.nft.setElements).reduce((a, b) => a + b, 0);
}

/**
 * Waits up to settleMs for the zygote to be idle and consistent (stress-leaks.ts: nothing busy
 * or queued, its pool full, no zombies, no cgroup but its pool children's) and, with a network,
 * for every networked child's veth to be gone (the kernel tears a dead namespace down
 * asynchronously) and its allow entries out of the table (removed when the zygote is idle);
 * then, once the idle zygote has had time to trim its heap (zygote/heap-trim.ts: what a busy
 * spell grew is given back only then), measures. `settled` says whether that happened within
 * the bound.
 */
export async function measureIdle(z: Zygote, net: ZygoteNetwork | null, settleMs: number): Promise<SoakSnapshot> {
  const t0 = performance.now();
  for (;;) {
    const leaks = await snapshotLeaks(z, Math.max(0, settleMs - (performance.now() - t0)));
    const nft = net ? nftTableCounts(net.table) : null;
    const veths = net ? vethsInSubnet(net.subnet) : [];
    const netIdle = net === null || (nft !== null && (nft.setElements[CHILD_SET] ?? 0) === 0 && veths.length === 0);
    const waitedMs = performance.now() - t0;
    if ((leaks.settled && netIdle) || waitedMs >= settleMs) {
      // Its last spawn came before it settled, so the trim is due within this wait.
      await new Promise((resolve) => setTimeout(resolve, HEAP_TRIM_WAIT_MS));
      return { ...leaks, settled: leaks.settled && netIdle, waitedMs, rssBytes: readRssBytes(z.pid), hostMounts: listMounts('self'), nft, veths };
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Child cgroups in all of the zygote's trees (with a pool, one per idle pool child in each). */
export function childCgroupCount(s: SoakSnapshot): number {
  return Object.values(s.cgroups).reduce((n, dirs) => n + dirs.length, 0);
}

/**
 * Each figure, before and after, with the growth it is allowed. Only RSS has noise (rssNoise:
 * a heap's size is not a count of anything). The rest are counts of things an idle zygote
 * holds exactly as many of as before: the same connections, listening socket and pool children
 * (fds), the same table (rules), no running child (set elements, veths, zombies, cgroups and
 * live children beyond the full pool's), the same namespace (mounts). Any growth there is
 * something a spawn left behind, so none is allowed. (The host's mounts are also other
 * processes': a mount of theirs made mid-run shows here, named in the report.) NaN: missing.
 */
export function soakFigures(before: SoakSnapshot, after: SoakSnapshot, network: boolean): Figure[] {
  const count = (name: string, get: (s: SoakSnapshot) => number): Figure => ({ name, unit: 'count', before: get(before), after: get(after), noise: 0 });
  return [
    { name: 'zygote RSS', unit: 'bytes', before: before.rssBytes, after: after.rssBytes, noise: rssNoise(before.rssBytes) },
    count('zygote fds', (s) => s.zygoteFds),
    count('zygote mounts', (s) => s.mounts),
    count('host mounts', (s) => s.hostMounts.length),
    count('child cgroups', childCgroupCount),
    ...(network
      ? [count('nft rules', (s) => s.nft?.rules ?? NaN), count('nft set elements', nftSetElements), count('veths', (s) => s.veths.length)]
      : []),
    count('zombies', (s) => s.zombies.length),
    count('live children', (s) => s.liveChildren.length),
  ];
}
