// Privileges: the zygote drops each child to another uid, which takes root or the capabilities.
import { readValue, selfStatus } from './proc.js';
import type { Finding } from './types.js';

/**
 * The capabilities every spawn needs (bit numbers of linux/capability.h): the uid drop
 * (SETUID, SETGID), emptying the child's bounding set (SETPCAP), its namespaces and root
 * (SYS_ADMIN), and setns() into the root template's mount namespace (SYS_CHROOT). A client's
 * mounts from another mount namespace also need SYS_PTRACE; not every server takes those.
 */
export const NEEDED_CAPS = { CAP_SETGID: 6, CAP_SETUID: 7, CAP_SETPCAP: 8, CAP_SYS_CHROOT: 18, CAP_SYS_ADMIN: 21 } as const;

/** A CapEff/CapPrm hex mask ("000001fffeffffff") as a bigint; 0n when unparseable. */
export function parseCapMask(hex: string | undefined): bigint {
  return hex && /^[0-9a-f]+$/i.test(hex) ? BigInt(`0x${hex}`) : 0n;
}

export function hasCap(mask: bigint, bit: number): boolean {
  return ((mask >> BigInt(bit)) & 1n) === 1n;
}

export function probePrivileges(): Finding {
  const status = selfStatus();
  const euid = process.geteuid?.() ?? -1;
  const capEff = status.get('CapEff');
  const mask = parseCapMask(capEff);
  const have = Object.entries(NEEDED_CAPS).filter(([, bit]) => hasCap(mask, bit)).map(([name]) => name);
  const lacking = Object.keys(NEEDED_CAPS).filter((name) => !have.includes(name));
  // root of the initial user namespace maps the whole uid range onto itself.
  const uidMap = readValue('/proc/self/uid_map')?.split(/\s+/).join(' ') ?? null;
  const initialUserNs = uidMap === '0 0 4294967295';
  const data = { euid, capEff: capEff ?? null, have, lacking, uidMap, initialUserNs };
  const who = euid === 0 ? 'root (euid 0)' : `euid ${euid}`;
  const where = initialUserNs ? 'in the initial user namespace' : `in a user namespace (uid_map: ${uidMap ?? 'unreadable'}), so only mapped uids can be used`;

  if (capEff === undefined) {
    return { layer: 'privileges', status: 'unknown', detail: `${who}; /proc/self/status has no CapEff line (is /proc mounted?)`, fix: 'mount procfs on /proc', data };
  }
  if (lacking.length === 0) {
    return { layer: 'privileges', status: 'ok', detail: `${who} ${where}; effective capabilities include ${have.join(', ')}`, data };
  }
  return {
    layer: 'privileges',
    status: 'missing',
    detail: `${who} without ${lacking.join(', ')} in CapEff (${capEff}): the zygote cannot switch children to another uid or set up their namespaces`,
    fix:
      euid === 0
        ? `the capabilities were dropped (a container or a service's CapabilityBoundingSet): grant ${lacking.join(', ')} (docker --cap-add, systemd AmbientCapabilities=) or run the zygote as full root`
        : `run the zygote as root (sudo zygote serve ...), or give it ${lacking.join(', ')} (systemd: AmbientCapabilities=${lacking.join(' ')})`,
    data,
  };
}
