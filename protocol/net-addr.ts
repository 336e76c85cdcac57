// Addresses in the network options: IPv4 subnets and allow entries ("IP:PORT", "CIDR:PORT",
// "[IPv6]:PORT", "[IPv6/len]:PORT"). Pure; shared by the client's option checks, the zygote's
// policy and its nftables rules.
import { isIPv4, isIPv6 } from 'node:net';

/** One allow entry: a destination (an address or a network) and a TCP/UDP port. */
export interface AllowEntry {
  family: 4 | 6;
  /** The network address (host bits zero), in its usual text form. */
  address: string;
  prefix: number;
  port: number;
  /** As the user wrote it, for messages. */
  text: string;
}

/** An IPv4 network: its address as a 32-bit number, and its prefix length. */
export interface Ipv4Net {
  base: number;
  prefix: number;
}

// IPv4 only: networked children get no IPv6 (README, Network), so the message offers no IPv6 form;
// one given is parsed only to be refused by name (zygote/sandbox/policy.ts).
const ALLOW_FORMS = '"IP:PORT" or "CIDR:PORT", IPv4 (e.g. "203.0.113.7:443", "10.0.0.0/8:5432")';

/** Parses an allow entry; throws an Error saying what is wrong with it. */
export function parseAllowEntry(text: unknown): AllowEntry {
  if (typeof text !== 'string') throw new Error(`must be a string of the form ${ALLOW_FORMS}, got ${typeof text}`);
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  const plain = bracketed ? null : /^([^:/\s]+(?:\/\d+)?):(\d+)$/.exec(text);
  const m = bracketed ?? plain;
  if (!m) throw new Error(`must be of the form ${ALLOW_FORMS}, got ${JSON.stringify(text)}`);
  const port = Number(m[2]);
  if (!/^\d{1,5}$/.test(m[2]) || port < 1 || port > 65535) throw new Error(`has port ${m[2]}, which is not 1 to 65535: ${JSON.stringify(text)}`);
  const [addr, len] = m[1].split('/');
  const family = bracketed ? 6 : 4;
  if (family === 4 ? !isIPv4(addr) : !isIPv6(addr)) throw new Error(`has ${JSON.stringify(addr)}, which is not an IPv${family} address: ${JSON.stringify(text)}`);
  const max = family === 4 ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (len !== undefined && (!/^\d{1,3}$/.test(len) || prefix > max)) throw new Error(`has prefix /${len}, which is not 0 to ${max}: ${JSON.stringify(text)}`);
  if (family === 4 && (ipv4ToNumber(addr) & ~maskOf(prefix)) >>> 0 !== 0) {
    throw new Error(`has host bits set in ${addr}/${prefix} (did you mean ${numberToIpv4((ipv4ToNumber(addr) & maskOf(prefix)) >>> 0)}/${prefix}?): ${JSON.stringify(text)}`);
  }
  return { family, address: addr, prefix, port, text };
}

/** Parses "a.b.c.d/len" with no host bits set; throws naming the problem. */
export function parseIpv4Net(text: unknown): Ipv4Net {
  const m = typeof text === 'string' ? /^([\d.]+)\/(\d{1,2})$/.exec(text) : null;
  if (!m || !isIPv4(m[1]) || Number(m[2]) > 32) throw new Error(`must be an IPv4 network "a.b.c.d/len", got ${JSON.stringify(text)}`);
  const base = ipv4ToNumber(m[1]);
  const prefix = Number(m[2]);
  if ((base & ~maskOf(prefix)) >>> 0 !== 0) throw new Error(`has host bits set: ${text} (did you mean ${numberToIpv4((base & maskOf(prefix)) >>> 0)}/${prefix}?)`);
  return { base, prefix };
}

/** Whether network a lies wholly inside network b. */
export function ipv4NetWithin(a: Ipv4Net, b: Ipv4Net): boolean {
  return a.prefix >= b.prefix && ((a.base & maskOf(b.prefix)) >>> 0) === b.base;
}

export function ipv4ToNumber(addr: string): number {
  return addr.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** "a.b.c.d" for a single address, "a.b.c.d/len" for a network: nftables' own notation. */
export function formatIpv4Net(net: Ipv4Net): string {
  return net.prefix === 32 ? numberToIpv4(net.base) : `${numberToIpv4(net.base)}/${net.prefix}`;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}
