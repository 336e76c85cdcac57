// The host side of networked children (opt-in: sandbox.network, then spawn({ network })): a
// /30 and veth names per child (veth-pool.ts; the child makes the pair itself, native/sandbox/
// network.cc), and one nftables table of this zygote's own that NATs the children out and
// decides what they may reach. README, Security, "Network".
import { readFileSync, writeFileSync } from 'node:fs';
import { native } from '../../native/index.js';
import type { Log } from '../log.js';
import { formatIpv4Net, parseAllowEntry, parseIpv4Net, type AllowEntry, type Ipv4Net } from '../../protocol/net-addr.js';
import type { NetworkDefaults } from '../../protocol/sandbox.js';
import { findNft, listNftChains, runNft } from './nft.js';
import { VethPool, type VethLease } from './veth-pool.js';
import { isLiveZygote, pidOfName } from './dead-zygotes.js';

/**
 * What no networked child reaches unless an allow entry names it: "this network", private
 * ranges (RFC 1918), carrier-grade NAT, loopback, link-local (with the cloud metadata address
 * 169.254.169.254), multicast and the reserved 240/4 (with broadcast). The zygote's own subnet
 * (the other children) is added to it. The host's own addresses are the input chain's.
 */
export const FORBIDDEN_IPV4 = ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '224.0.0.0/4', '240.0.0.0/4'] as const;

/** A live networked child's link, and its own allow entries as nft set elements. */
export interface ChildNetwork extends VethLease {
  elements: string[];
}

const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
/**
 * An empty chain that marks a zygote's table while zygotes are why IPv4 forwarding is on: the
 * zygote that turned it on has it, and so does every zygote started while a marked table
 * exists. The last marked table to go turns forwarding back off.
 */
const FORWARDING_MARK = 'zygotes_turned_on_forwarding';

export class HostNetwork {
  /** `inet zygote_<pid>`: one table per zygote, so its rules go with it. */
  readonly table: string;
  private readonly subnet: Ipv4Net;
  private readonly allow: AllowEntry[];
  private readonly pool: VethPool;
  private nft = '';
  private installed = false;
  /** Whether this zygote's table carries FORWARDING_MARK. */
  private forwardingIsOurs = false;
  /** Reaped children whose allow entries are still in the table (removed when the zygote is idle). */
  private readonly toRemove: ChildNetwork[] = [];

  constructor(
    config: NetworkDefaults,
    pid: number,
    private readonly log: Log,
  ) {
    this.table = `zygote_${pid}`;
    this.subnet = parseIpv4Net(config.subnet);
    this.allow = config.allow.map(parseAllowEntry);
    this.pool = new VethPool(this.subnet);
  }

  /**
   * Installs the table (atomically replacing a stale one of the same name, left by a crashed
   * zygote of the same pid), then turns on IPv4 forwarding in this network namespace if it
   * was off. While forwarding is on because of zygotes, their tables also drop other
   * forwarded IPv4, so the host routes nothing but the children's traffic.
   */
  start(): void {
    const nft = findNft();
    if (nft === null) throw new Error('sandbox.network needs nftables: no nft in /usr/sbin, /sbin, /usr/bin or /bin (apt-get install nftables)');
    this.nft = nft;
    const forwarding = readFileSync(IP_FORWARD, 'utf8').trim() === '1';
    this.forwardingIsOurs = !forwarding || this.otherMarkedTables();
    const ruleset = networkRuleset({ table: this.table, subnet: this.subnet, allow: this.allow, guardForwarding: this.forwardingIsOurs });
    runNft(nft, ruleset, `sandbox.network: installing nftables table inet ${this.table}`);
    this.installed = true;
    if (!forwarding) writeFileSync(IP_FORWARD, '1');
  }

  /**
   * Health: what is wrong with this zygote's table (zygote health): gone, or its chains gone,
   * e.g. after someone ran `nft flush ruleset`. Empty when it is whole. Runs nft (a few ms).
   */
  healthProblems(): string[] {
    if (!this.installed) return [`nftables table inet ${this.table} was never installed`];
    let chains: string[];
    try {
      chains = listNftChains(this.nft);
    } catch (err) {
      return [(err as Error).message];
    }
    const ours = chains.filter((c) => c.startsWith(`inet ${this.table} `));
    return ours.length > 0 ? [] : [`nftables table inet ${this.table} is gone (networked children would have no rules): restart the zygote`];
  }

  /**
   * A link for a new child, and its own allow entries in the table, in place before it is
   * forked. Throws (code EAGAIN) when every /30 is taken.
   */
  attach(allow: readonly AllowEntry[]): ChildNetwork {
    const nameInUse = (name: string) => native.interfaceIndex(name) !== 0;
    let lease = this.pool.take(nameInUse);
    if (lease === null && this.removalPending) {
      this.sweep();
      lease = this.pool.take(nameInUse);
    }
    if (lease === null) {
      throw Object.assign(new Error(`every /30 of sandbox.network.subnet ${formatIpv4Net(this.subnet)} is in use by a live networked child`), { code: 'EAGAIN' });
    }
    const elements = allow.map((a) => `${lease.veth.childAddr} . ${formatIpv4Net(ipv4Net(a))} . ${a.port}`);
    if (elements.length > 0) {
      try {
        runNft(this.nft, `add element inet ${this.table} child_allow { ${elements.join(', ')} }\n`, `allowing ${allow.map((a) => a.text).join(', ')} for child ${lease.veth.childAddr}`);
      } catch (err) {
        this.pool.release(lease);
        throw err;
      }
    }
    return { ...lease, elements };
  }

  /**
   * After the child is reaped (every process of its namespace is gone): its /30 is free again
   * once its allow entries are out of the table. Removing them costs an nft run, so that
   * waits for sweep(), when the zygote is idle; until then the /30 is not handed out.
   */
  detach(child: ChildNetwork): void {
    if (child.elements.length === 0) this.pool.release(child);
    else this.toRemove.push(child);
  }

  get removalPending(): boolean {
    return this.toRemove.length > 0;
  }

  /**
   * Removes the allow entries of every reaped child in one nft run and frees their /30s. If
   * that fails they are never handed out again: a next child would inherit the entries.
   */
  sweep(): void {
    const done = this.toRemove.splice(0);
    if (done.length === 0) return;
    const elements = done.flatMap((c) => c.elements);
    try {
      runNft(this.nft, `delete element inet ${this.table} child_allow { ${elements.join(', ')} }\n`, `removing the allow entries of reaped children ${done.map((c) => c.veth.childAddr).join(', ')}`);
    } catch (err) {
      this.log.error('network-cleanup', `${(err as Error).message}; their /30s are not reused`);
      return;
    }
    for (const c of done) this.pool.release(c);
  }

  /** At shutdown: the table goes, and forwarding goes back off if zygotes turned it on and this was the last of them. */
  close(): void {
    if (!this.installed) return;
    this.installed = false;
    try {
      runNft(this.nft, deleteTable(this.table), `sandbox.network: deleting nftables table inet ${this.table}`);
    } catch (err) {
      this.log.error('network-cleanup', (err as Error).message);
    }
    if (!this.forwardingIsOurs) return;
    try {
      if (!this.otherMarkedTables()) writeFileSync(IP_FORWARD, '0');
    } catch (err) {
      this.log.error('network-cleanup', `sandbox.network: could not restore ${IP_FORWARD} to 0: ${(err as Error).message}`);
    }
  }

  private otherMarkedTables(): boolean {
    return listNftChains(this.nft).some((c) => c.endsWith(` ${FORWARDING_MARK}`) && c !== `inet ${this.table} ${FORWARDING_MARK}`);
  }
}

/**
 * At start: deletes the `inet zygote_PID` tables of zygotes that died without cleaning up
 * (dead-zygotes.ts), in one nft transaction. If one of them had turned IPv4 forwarding on
 * (its table carried FORWARDING_MARK) and no live zygote's marked table is left, forwarding
 * goes back off, as that zygote would have done at exit. Returns the tables deleted.
 */
export function sweepDeadZygoteTables(nft: string): string[] {
  const chains = listNftChains(nft);
  const tables = new Set<string>();
  for (const c of chains) {
    const [family, table] = c.split(' ');
    if (family === 'inet' && pidOfName('zygote_', table) !== null) tables.add(table);
  }
  const dead = [...tables].filter((t) => !isLiveZygote(pidOfName('zygote_', t)!));
  if (dead.length === 0) return [];
  const marked = (t: string) => chains.includes(`inet ${t} ${FORWARDING_MARK}`);
  runNft(nft, dead.map(deleteTable).join(''), `deleting the nftables tables of dead zygotes (${dead.join(', ')})`);
  const liveMarked = [...tables].some((t) => !dead.includes(t) && marked(t));
  if (dead.some(marked) && !liveMarked && readFileSync(IP_FORWARD, 'utf8').trim() === '1') writeFileSync(IP_FORWARD, '0');
  return dead;
}

/**
 * The zygote's table. Children's traffic arrives on "zyh*" interfaces from their /30s:
 *   forward: IPv6 rejected (children have none); a source that does not route back through
 *            the interface it came in on (spoofed) dropped; established/related accepted; then
 *            the child's own allow entries, the zygote's, and the forbidden ranges rejected
 *            (an ICMP "administratively prohibited": connect() fails at once with EHOSTUNREACH);
 *            everything else accepted. Nothing may open a connection into a child.
 *   input:   from "zyh*" only established/related: a child reaches none of the host's own
 *            services, on any of its addresses, the gateway's included.
 *   postrouting: the subnet masqueraded out of every other interface.
 * guardForwarding (forwarding is on because of zygotes): other forwarded IPv4 is dropped, and
 * the table carries the FORWARDING_MARK chain.
 * Another zygote's children (another subnet) pass this table's forward chain untouched: their
 * own zygote's table judges them.
 */
export function networkRuleset(o: { table: string; subnet: Ipv4Net; allow: readonly AllowEntry[]; guardForwarding: boolean }): string {
  const subnet = formatIpv4Net(o.subnet);
  const allow = o.allow.map((a) => `${formatIpv4Net(ipv4Net(a))} . ${a.port}`);
  return `${deleteTable(o.table)}table inet ${o.table} {
  set forbidden {
    type ipv4_addr; flags interval; auto-merge
    elements = { ${[...FORBIDDEN_IPV4, subnet].join(', ')} }
  }
  set allow {
    type ipv4_addr . inet_service; flags interval
${allow.length > 0 ? `    elements = { ${allow.join(', ')} }\n` : ''}  }
  set child_allow {
    type ipv4_addr . ipv4_addr . inet_service; flags interval
  }
  chain from_child {
    meta nfproto ipv6 reject with icmpx type admin-prohibited
    ip saddr != ${subnet} return
    fib saddr . iif oif missing drop
    ct state established,related accept
    meta l4proto { tcp, udp } ip saddr . ip daddr . th dport @child_allow accept
    meta l4proto { tcp, udp } ip daddr . th dport @allow accept
    ip daddr @forbidden reject with icmpx type admin-prohibited
    accept
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "zyh*" jump from_child
    iifname "zyh*" accept
    oifname "zyh*" ct state established,related accept
    oifname "zyh*" drop
${o.guardForwarding ? '    meta nfproto ipv4 drop\n' : ''}  }
${o.guardForwarding ? `  chain ${FORWARDING_MARK} {\n  }\n` : ''}
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "zyh*" ct state established,related accept
    iifname "zyh*" reject with icmpx type admin-prohibited
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr ${subnet} oifname != "zyh*" masquerade
  }
}
`;
}

/** Deletes the table whether or not it exists (declaring an empty one first makes that so). */
function deleteTable(table: string): string {
  return `table inet ${table} {}\ndelete table inet ${table}\n`;
}

function ipv4Net(a: AllowEntry): Ipv4Net {
  if (a.family !== 4) throw new Error(`allow entry ${a.text} is IPv6, but networked children get IPv4 only`);
  return parseIpv4Net(`${a.address}/${a.prefix}`);
}
