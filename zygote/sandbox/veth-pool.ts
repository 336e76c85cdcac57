// Handing out a /30 of the zygote's network subnet, and veth names, per live networked child.
import type { NativeVeth } from '../../native/index.js';
import { numberToIpv4, type Ipv4Net } from '../../protocol/net-addr.js';

/** Each child's block: network address, host side (+1), child side (+2), broadcast (+3). */
export const BLOCK_PREFIX = 30;
const BLOCK_SIZE = 4;

/** One child's link, and the block it came from. */
export interface VethLease {
  block: number;
  veth: NativeVeth;
}

export class VethPool {
  /** Blocks never handed out are [next, count); freed ones queue in the order they were freed. */
  private next = 0;
  private readonly freed: number[] = [];
  private readonly used = new Set<number>();
  readonly count: number;

  constructor(private readonly subnet: Ipv4Net) {
    if (subnet.prefix > BLOCK_PREFIX) throw new Error(`the subnet must hold at least one /${BLOCK_PREFIX}, got a /${subnet.prefix}`);
    this.count = 2 ** (BLOCK_PREFIX - subnet.prefix);
  }

  /**
   * A block no live child has, or null when all are in use. Freed blocks come back least
   * recently freed first, and one whose host-side name still exists is passed over: a dead
   * child's veth goes away with its network namespace, which the kernel tears down
   * asynchronously, some time after the child was reaped.
   */
  take(nameInUse: (name: string) => boolean): VethLease | null {
    if (this.next < this.count) return this.lease(this.next++);
    for (let tries = this.freed.length; tries > 0; tries--) {
      const block = this.freed.shift()!;
      if (!nameInUse(vethNames(this.blockBase(block)).hostName)) return this.lease(block);
      this.freed.push(block);
    }
    return null;
  }

  /** Returns a block once its child has been reaped and its allow rules removed. */
  release(lease: VethLease): void {
    if (!this.used.delete(lease.block)) return;
    this.freed.push(lease.block);
  }

  private lease(block: number): VethLease {
    this.used.add(block);
    const base = this.blockBase(block);
    return { block, veth: { ...vethNames(base), hostAddr: numberToIpv4(base + 1), childAddr: numberToIpv4(base + 2), prefix: BLOCK_PREFIX } };
  }

  private blockBase(block: number): number {
    return this.subnet.base + block * BLOCK_SIZE;
  }
}

/**
 * Names from the block's address, so they are unique in the host's namespace even across
 * zygotes (whose subnets must not overlap anyway): "zyh0ac90004" for 10.201.0.4/30 on the host
 * side, "zyc0ac90004" in the child. 11 bytes: within IFNAMSIZ (15 and a NUL).
 */
export function vethNames(blockBase: number): { hostName: string; childName: string } {
  const hex = blockBase.toString(16).padStart(8, '0');
  return { hostName: `zyh${hex}`, childName: `zyc${hex}` };
}
