// `zygote doctor`: probes this host for each sandbox layer, read-only, and reports what will be
// enforced and, for anything missing, why and how to enable it.
import type { Command } from 'commander';
import { formatJson, formatTable } from './report.js';
import { runDoctor } from './run.js';

export { ALL_LAYERS, runDoctor, runProbes, summarize } from './run.js';
export { formatJson, formatSummary, formatTable, wrap } from './report.js';
export { REQUIRED_LAYERS, isRequired } from './layers.js';
export { cgroupDir, detectCgroupLayout, parseMountinfo, parseProcCgroup, parseProcCgroups, readCgroupFacts, type CgroupMode } from './cgroups.js';
export { landlockAbi, libseccompVersion, syscallEntry, type LandlockAbiProbe, type SeccompVersion, type SyscallEntryProbe } from './native-probes.js';
export { probeIdmappedMounts, probeNoexecMounts } from './mount-features.js';
export { probeSmt, probeSpeculation, statusField } from './cpu-exposure.js';
export { decideSyscallEntry, probeSyscallEntry, type SyscallEntryName, type SyscallEntryState, type SyscallEntryVerdict } from './syscall-entries.js';
export type { DoctorReport, HostInfo, ProbeResult, Status } from './types.js';

/** Adds the `doctor` subcommand to program. */
export function registerDoctor(program: Command): Command {
  return program
    .command('doctor')
    .description('Probe this host for each sandbox layer (read-only) and print what will be enforced, and how to enable what is missing.')
    .option('--json', 'print the report as JSON instead of a table')
    .addHelpText(
      'after',
      `
Layers: privileges (root or CAP_SETUID+CAP_SETGID+CAP_SYS_ADMIN), namespaces (user, pid, mount,
network, ipc, uts, cgroup; probed with unshare(1) in a child), no_new_privs, seccomp (kernel
actions and libseccomp), the i386 and x32 syscall entries (live: the filter's arch check
kills calls through them; absent: nothing to filter), Landlock, noexec and idmapped mounts,
cgroups (v1/v2/hybrid, memory and pids), the opt-in network (nft, net.ipv4.ip_forward),
the host settings kernel.yama.ptrace_scope,
kernel.core_pattern and dev.tty.legacy_tiocsti, and what the CPU could leak between processes
(SMT, speculative store bypass and indirect branches under seccomp).

Nothing on the host is changed. Exit status: 0 when every required layer is available
(ok or degraded), 1 when one is missing or could not be probed; the last line names them.`,
    )
    .action((opts: { json?: boolean }) => {
      const report = runDoctor();
      process.stdout.write(opts.json ? formatJson(report) : formatTable(report));
      process.exitCode = report.exitCode;
    });
}
