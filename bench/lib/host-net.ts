// What a networked zygote holds in the host's network namespace, seen from outside (the bench
// may use only the package's public entry points, so this asks nft and sysfs itself): the
// rules and set elements of its nftables table, and the veth interfaces of its subnet.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const NFT_PATHS = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft', '/bin/nft'];
const NFT_TIMEOUT_MS = 10_000;

export interface NftTableCounts {
  /** Rules in all its chains. */
  rules: number;
  /** Elements in each of its sets, by name. */
  setElements: Record<string, number>;
}

/** The counts of table `inet NAME`, or null when it does not exist. Throws if nft cannot say. */
export function nftTableCounts(name: string): NftTableCounts | null {
  const nft = NFT_PATHS.find((p) => existsSync(p));
  if (nft === undefined) throw new Error('no nft binary (apt-get install nftables)');
  const r = spawnSync(nft, ['-j', 'list', 'table', 'inet', name], { encoding: 'utf8', timeout: NFT_TIMEOUT_MS, killSignal: 'SIGKILL' });
  if (r.error) throw new Error(`nft -j list table inet ${name}: ${r.error.message}`);
  if (r.status !== 0) {
    if (/No such file or directory/.test(r.stderr)) return null;
    throw new Error(`nft -j list table inet ${name} failed (exit ${r.status ?? r.signal}): ${r.stderr.trim()}`);
  }
  // libnftables' JSON: { nftables: [ { metainfo }, { table }, { chain }, { set: { elem? } }, { rule }, ... ] }.
  const objects = (JSON.parse(r.stdout) as { nftables: Record<string, { name?: string; elem?: unknown[] }>[] }).nftables;
  let rules = 0;
  const setElements: Record<string, number> = {};
  for (const o of objects) {
    if ('rule' in o) rules++;
    if ('set' in o) setElements[o.set.name ?? '?'] = o.set.elem?.length ?? 0;
  }
  return { rules, setElements };
}

/**
 * The host's veth interfaces named for a /30 of subnet (zygote/sandbox/veth-pool.ts names them
 * `zyh` or `zyc` and the block's address in 8 hex digits), so other zygotes' do not count.
 */
export function vethsInSubnet(subnet: string): string[] {
  const { base, size } = parseIpv4Cidr(subnet);
  return readdirSync('/sys/class/net').filter((name) => {
    const m = /^zy[hc]([0-9a-f]{8})$/.exec(name);
    if (!m) return false;
    const addr = parseInt(m[1], 16);
    return addr >= base && addr < base + size;
  });
}

/** "a.b.c.d/p" as its first address (a number) and its number of addresses. */
export function parseIpv4Cidr(cidr: string): { base: number; size: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const prefix = m ? Number(m[5]) : NaN;
  if (!m || octets.some((o) => o > 255) || prefix > 32) throw new Error(`expected an IPv4 CIDR, got ${JSON.stringify(cidr)}`);
  const size = 2 ** (32 - prefix);
  const addr = octets.reduce((n, o) => n * 256 + o, 0);
  return { base: addr - (addr % size), size };
}
