// The opt-in network (sandbox.network): whether nft is installed, and IPv4 forwarding in this
// network namespace (a networked zygote turns it on; README, Network). Advisory: children
// have no network unless a zygote is started with it.
import { findNft } from '../sandbox/nft.js';
import { readValue } from './proc.js';
import type { Finding } from './types.js';

export function probeNetwork(): Finding {
  const nft = findNft();
  const forward = readValue('/proc/sys/net/ipv4/ip_forward');
  const data = { nft, ip_forward: forward };
  const forwarding = forward === '1' ? 'net.ipv4.ip_forward=1 here' : `net.ipv4.ip_forward=${forward ?? '?'} here (a networked zygote sets it to 1 while it runs)`;
  if (nft === null) {
    return {
      layer: 'network',
      status: 'missing',
      detail: `no nft binary: a zygote started with sandbox.network (zygote serve --network) cannot install its rules and will not start; ${forwarding}. Without it children have loopback only, as by default`,
      fix: 'apt-get install nftables (and run the zygote with CAP_NET_ADMIN)',
      data,
    };
  }
  return { layer: 'network', status: 'ok', detail: `opt-in per spawn: nft at ${nft}; ${forwarding}`, data };
}
