// Runs every probe in a fixed order and turns the findings into a report with an exit code.
import { machine, release } from 'node:os';
import { probeCgroups } from './cgroups.js';
import { probeCorePattern, probeLegacyTiocsti, probePtraceScope } from './hardening.js';
import { probeSmt, probeSpeculation } from './cpu-exposure.js';
import { probeIdmappedMounts, probeNoexecMounts } from './mount-features.js';
import { probeLandlock } from './landlock.js';
import { isRequired } from './layers.js';
import { probeNamespaces } from './namespaces.js';
import { probeNetwork } from './network.js';
import { probeNoNewPrivs } from './no-new-privs.js';
import { probeNode } from './node.js';
import { probePrivileges } from './privileges.js';
import { probeSeccomp } from './seccomp.js';
import { probeSyscallEntries } from './syscall-entries.js';
import type { DoctorReport, Finding, HostInfo, ProbeResult } from './types.js';

/** Every probe, in the order the table shows them. Each returns one finding or several. */
const PROBES: Array<{ layers: string[]; run: () => Finding | Finding[] }> = [
  { layers: ['node'], run: probeNode },
  { layers: ['privileges'], run: probePrivileges },
  { layers: ['user-namespace', 'pid-namespace', 'mount-namespace', 'network-namespace', 'ipc-namespace', 'uts-namespace', 'cgroup-namespace'], run: probeNamespaces },
  { layers: ['no-new-privs'], run: probeNoNewPrivs },
  { layers: ['seccomp'], run: probeSeccomp },
  { layers: ['i386-entry', 'x32-entry'], run: probeSyscallEntries },
  { layers: ['landlock'], run: probeLandlock },
  { layers: ['noexec-mounts'], run: probeNoexecMounts },
  { layers: ['idmapped-mounts'], run: probeIdmappedMounts },
  { layers: ['cgroups', 'cgroup-memory', 'cgroup-pids'], run: probeCgroups },
  { layers: ['network'], run: probeNetwork },
  { layers: ['ptrace-scope'], run: probePtraceScope },
  { layers: ['core-pattern'], run: probeCorePattern },
  { layers: ['legacy-tiocsti'], run: probeLegacyTiocsti },
  { layers: ['smt'], run: probeSmt },
  { layers: ['speculation'], run: probeSpeculation },
];

/** Every layer the doctor reports on, in table order. */
export const ALL_LAYERS: readonly string[] = PROBES.flatMap((p) => p.layers);

export function runProbes(): ProbeResult[] {
  const results: ProbeResult[] = [];
  for (const probe of PROBES) {
    let findings: Finding[];
    try {
      const out = probe.run();
      findings = Array.isArray(out) ? out : [out];
    } catch (e) {
      // A probe that throws is a doctor bug or a very odd host: say so, per layer, and go on.
      findings = probe.layers.map((layer) => ({ layer, status: 'unknown' as const, detail: `the probe failed: ${(e as Error).message}` }));
    }
    for (const f of findings) results.push({ layer: f.layer, status: f.status, required: isRequired(f.layer), detail: f.detail, ...(f.fix ? { fix: f.fix } : {}), ...(f.data ? { data: f.data } : {}) });
  }
  return results;
}

/** Pure: the verdict over a set of results. */
export function summarize(results: ProbeResult[]): Pick<DoctorReport, 'failing' | 'warnings' | 'exitCode'> {
  const failing = results.filter((r) => r.required && (r.status === 'missing' || r.status === 'unknown')).map((r) => r.layer);
  const warnings = results.filter((r) => r.status === 'degraded' || (!r.required && r.status !== 'ok')).map((r) => r.layer);
  return { failing, warnings, exitCode: failing.length === 0 ? 0 : 1 };
}

export function hostInfo(): HostInfo {
  return { kernel: release(), arch: machine(), node: process.version, euid: process.geteuid?.() ?? -1 };
}

export function runDoctor(): DoctorReport {
  const results = runProbes();
  return { host: hostInfo(), results, ...summarize(results) };
}
