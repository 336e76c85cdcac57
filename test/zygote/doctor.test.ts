// `zygote doctor` on this host (Debian 12, root, seccomp, cgroup v1 memory+pids, Landlock ABI 7),
// plus its pure parts (cgroup detection, the verdict, the table) on synthetic input.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ALL_LAYERS,
  cgroupDir,
  decideSyscallEntry,
  detectCgroupLayout,
  formatTable,
  landlockAbi,
  libseccompVersion,
  parseMountinfo,
  parseProcCgroup,
  probeSmt,
  probeSpeculation,
  probeSyscallEntry,
  readCgroupFacts,
  statusField,
  runDoctor,
  summarize,
  type DoctorReport,
  type ProbeResult,
} from '../../dist/zygote/doctor/index.js';
import { CLI, ROOT } from '../helpers/index.js';
import { binary, idmappedMounts, itNeeds } from '../helpers/host.js';
import { native } from '../../dist/native/index.js';
import { ATTACK_ADDON_PATH } from '../native/attack.js';
import { constants, tmpdir } from 'node:os';

const STATUSES = ['ok', 'missing', 'degraded', 'unknown'];

/** Runs `zygote doctor [args]` as a CLI would: a fresh node, commander, registerDoctor. */
function doctorCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const script = `
    import { Command } from 'commander';
    import { registerDoctor } from './dist/zygote/doctor/index.js';
    const program = new Command().name('zygote');
    registerDoctor(program);
    program.parse();
  `;
  // With -e, commander takes the user arguments from argv[1] on: no script name to skip.
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, 'doctor', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function layer(report: DoctorReport, name: string): ProbeResult {
  const r = report.results.find((x) => x.layer === name);
  if (!r) throw new Error(`no result for ${name}`);
  return r;
}

describe('zygote doctor on this host', () => {
  const report = runDoctor();

  it('reports every layer once, each with a valid status and a detail, and a fix for what is not ok', () => {
    expect(report.results.map((r) => r.layer)).toEqual([...ALL_LAYERS]);
    for (const r of report.results) {
      expect(STATUSES).toContain(r.status);
      expect(r.detail.length).toBeGreaterThan(0);
      if (r.status === 'missing' || r.status === 'degraded') expect(r.fix, r.layer).toBeTruthy();
    }
    expect(ALL_LAYERS).toEqual(
      expect.arrayContaining(['privileges', 'user-namespace', 'pid-namespace', 'mount-namespace', 'network-namespace', 'ipc-namespace', 'uts-namespace', 'cgroup-namespace', 'seccomp', 'i386-entry', 'x32-entry', 'noexec-mounts', 'idmapped-mounts', 'smt', 'speculation', 'no-new-privs', 'cgroups', 'cgroup-memory', 'cgroup-pids', 'landlock', 'ptrace-scope', 'core-pattern', 'legacy-tiocsti']),
    );
  });

  it('finds root with CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_SYS_CHROOT and CAP_SYS_ADMIN', () => {
    expect(process.geteuid!()).toBe(0);
    const r = layer(report, 'privileges');
    expect(r.status).toBe('ok');
    expect(r.data).toMatchObject({ euid: 0, lacking: [] });
    expect(r.data!.have).toEqual(expect.arrayContaining(['CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SYS_CHROOT', 'CAP_SYS_ADMIN']));
  });

  itNeeds(binary('setpriv', 'util-linux'), 'says root without CAP_SYS_CHROOT (which every spawn needs) is missing a privilege', () => {
    const r = spawnSync('setpriv', ['--bounding-set', '-sys_chroot', process.execPath, CLI, 'doctor', '--json'], { encoding: 'utf8', timeout: 60_000 });
    const found = (JSON.parse(r.stdout) as { results: { layer: string; status: string; data?: { lacking?: string[] } }[] }).results.find((f) => f.layer === 'privileges');
    expect(found).toMatchObject({ status: 'missing', data: { lacking: ['CAP_SYS_CHROOT'] } });
  });

  it('finds seccomp with kill_process among the kernel actions, and the libseccomp version', () => {
    const r = layer(report, 'seccomp');
    expect(r.status).toBe('ok');
    expect(r.data!.actionsAvail).toEqual(expect.arrayContaining(['kill_process', 'errno', 'allow']));
    const v = libseccompVersion();
    expect(v).toEqual({ major: expect.any(Number), minor: expect.any(Number), micro: expect.any(Number) });
    expect(v!.major).toBeGreaterThanOrEqual(2);
    expect(r.data!.libseccomp).toEqual(v);
  });

  it('finds the cgroup memory and pids controllers, writable, in a v1, v2 or hybrid layout', () => {
    const cg = layer(report, 'cgroups');
    expect(['v1', 'v2', 'hybrid']).toContain(cg.data!.mode);
    for (const name of ['cgroup-memory', 'cgroup-pids']) {
      const r = layer(report, name);
      expect(r.status, r.detail).toBe('ok');
      expect(['v1', 'v2']).toContain(r.data!.version);
      expect(r.data).toMatchObject({ exists: true, writeError: null });
    }
  });

  it('gives Landlock as a structured value: an ABI number, or null and an errno name', () => {
    const probe = landlockAbi();
    expect(probe).not.toBeNull();
    expect(Object.keys(probe!).sort()).toEqual(['abi', 'errno']);
    if (probe!.abi === null) expect(probe!.errno).toMatch(/^E[A-Z0-9]+$/);
    else {
      expect(Number.isInteger(probe!.abi) && probe!.abi >= 1).toBe(true);
      expect(probe!.errno).toBeNull();
    }
    const r = layer(report, 'landlock');
    expect(r.data).toMatchObject({ abi: probe!.abi, errno: probe!.errno });
    expect(r.status).toBe(probe!.abi === null ? 'missing' : 'ok');
  });

  it('finds namespaces creatable and no_new_privs supported', () => {
    for (const name of ['pid-namespace', 'mount-namespace', 'network-namespace', 'ipc-namespace', 'uts-namespace', 'no-new-privs']) {
      expect(layer(report, name).status, layer(report, name).detail).toBe('ok');
    }
  });

  it('finds nft for the opt-in network (scripts/setup.sh installs it) and reports ip_forward as it is', () => {
    const r = layer(report, 'network');
    expect(r.status, r.detail).toBe('ok');
    expect(r.required).toBe(false);
    expect(r.data).toMatchObject({ nft: expect.stringMatching(/\/nft$/), ip_forward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() });
  });

  it('changes nothing: no cgroup is created', () => {
    const dir = readCgroupFacts().memory.dir!;
    // Other test files' zygotes and groups (zygote-PID, zygote-test-fork-PID, ...) come and go
    // here meanwhile, slowly in the cgroup v2 guest: names ending in another process's pid are theirs.
    const listing = () => readdirSync(dir).filter((n) => !/-\d+$/.test(n) || n.endsWith(`-${process.pid}`)).sort();
    const before = listing();
    runDoctor();
    expect(listing()).toEqual(before);
  });
});

describe('mount features, SMT and speculation', () => {
  it('finds noexec mounts on this host (required: every writable place of a child is noexec)', () => {
    const report = runDoctor();
    expect(layer(report, 'noexec-mounts')).toMatchObject({ status: 'ok', required: true, data: { ok: true, errno: null } });
  });

  itNeeds(idmappedMounts(), 'finds idmapped mounts on this host (advisory)', () => {
    const report = runDoctor();
    expect(layer(report, 'idmapped-mounts')).toMatchObject({ status: 'ok', required: false, data: { ok: true, errno: null } });
  });

  it("reports idmapped mounts as the kernel answers for TMPDIR's filesystem: ok, or missing with the errno and a fix", () => {
    const probe = native.probeMountAttr(tmpdir(), 'idmap');
    const r = layer(runDoctor(), 'idmapped-mounts');
    expect(r).toMatchObject({ status: probe.ok ? 'ok' : 'missing', required: false, data: probe });
    if (!probe.ok) expect(r.fix).toContain('tmpfs (6.3+)');
  });

  it("the mount probe says no where the kernel does: procfs takes no idmapping, a missing path has no mount", () => {
    expect(native.probeMountAttr('/proc', 'idmap')).toEqual({ ok: false, errno: 'EINVAL' });
    expect(native.probeMountAttr('/no/such/path', 'noexec')).toEqual({ ok: false, errno: 'ENOENT' });
    expect(() => native.probeMountAttr('/tmp', 'rw' as 'noexec')).toThrow(TypeError);
  });

  it('reports SMT from sysfs: ok when off, degraded with a fix when on', () => {
    const r = probeSmt();
    const active = readFileSync('/sys/devices/system/cpu/smt/active', 'utf8').trim();
    expect(r).toMatchObject({ layer: 'smt', status: active === '0' ? 'ok' : 'degraded', data: { active } });
    if (r.status !== 'ok') expect(r.fix).toMatch(/nosmt/);
  });

  it("reports what a seccomp-filtered child gets: its state before the filter is this process's own", () => {
    const r = probeSpeculation();
    const own = statusField(readFileSync('/proc/self/status', 'utf8'), 'Speculation_Store_Bypass');
    expect(r.data).toMatchObject({ speculationStoreBypass: { before: own, after: expect.any(String) } });
    expect(['ok', 'degraded']).toContain(r.status);
    if (r.status === 'degraded') expect(r.fix).toMatch(/spec_store_bypass_disable/);
  });

  it('parses one field of a status text', () => {
    const text = 'Name:\tnode\nSpeculation_Store_Bypass:\tthread force mitigated\nSpeculationIndirectBranch:\tconditional force disabled\n';
    expect(statusField(text, 'Speculation_Store_Bypass')).toBe('thread force mitigated');
    expect(statusField(text, 'SpeculationIndirectBranch')).toBe('conditional force disabled');
    expect(statusField(text, 'Missing')).toBeNull();
  });
});

describe('the i386 and x32 syscall entries', () => {
  const SIGSEGV = constants.signals.SIGSEGV;
  const SIGSYS = constants.signals.SIGSYS;
  const answered = (value: number | null, errno: string | null, pid = 42) => ({ returned: true, value, errno, pid, signal: null });
  const killed = (signal: number | null) => ({ returned: false, value: null, errno: null, pid: null, signal });

  it("decides present when the call returns the caller's pid", () => {
    expect(decideSyscallEntry('i386', answered(42, null), false)).toMatchObject({ entry: 'i386', state: 'present' });
    expect(decideSyscallEntry('x32', answered(42, null), false)).toMatchObject({ entry: 'x32', state: 'present' });
  });

  it('decides absent for a fault on int $0x80 (a host without the i386 entry), or ENOSYS, with no filter', () => {
    const v = decideSyscallEntry('i386', killed(SIGSEGV), false);
    expect(v).toMatchObject({ state: 'absent' });
    expect(v.reason).toContain('SIGSEGV');
    expect(decideSyscallEntry('x32', answered(null, 'ENOSYS'), false)).toMatchObject({ state: 'absent' });
    expect(decideSyscallEntry('i386', answered(null, 'ENOSYS'), false)).toMatchObject({ state: 'absent' });
  });

  it("decides filtered where the caller's own seccomp filter kills the call or answers it", () => {
    expect(decideSyscallEntry('i386', killed(SIGSYS), true)).toMatchObject({ state: 'filtered' });
    expect(decideSyscallEntry('x32', answered(null, 'EPERM'), true)).toMatchObject({ state: 'filtered' });
    expect(decideSyscallEntry('x32', answered(null, 'ENOSYS'), true)).toMatchObject({ state: 'filtered' });
  });

  it('throws on any other outcome, so a broken probe fails the run instead of skipping a test', () => {
    expect(() => decideSyscallEntry('i386', answered(7, null), false)).toThrow(/returned 7, but the child's pid is 42/);
    expect(() => decideSyscallEntry('x32', answered(null, 'EPERM'), false)).toThrow(/gave EPERM with no seccomp filter/);
    expect(() => decideSyscallEntry('i386', killed(constants.signals.SIGKILL), false)).toThrow(/was killed by SIGKILL/);
    expect(() => decideSyscallEntry('x32', killed(SIGSEGV), false)).toThrow(/was killed by SIGSEGV/);
    expect(() => decideSyscallEntry('i386', killed(SIGSEGV), true)).toThrow(/runs under a seccomp filter/);
    expect(() => decideSyscallEntry('i386', killed(null), false)).toThrow(/died without a signal or an answer/);
  });

  // The probe against an independent try of the same call: the attack addon in a fresh node.
  // On a host with the entry this proves the tests that need it run (present); on one without,
  // that they are skipped for the right reason (absent).
  it.each(['i386', 'x32'] as const)('the %s probe agrees with the same call made by the attack addon in a fresh node', (entry) => {
    const call = entry === 'i386' ? 'int80_getpid' : 'x32_getpid';
    const script = `const a = require(${JSON.stringify(ATTACK_ADDON_PATH)}); console.log(JSON.stringify({ pid: process.pid, r: a.${call}() }));`;
    const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    const v = probeSyscallEntry(entry);
    if (out.signal !== null) {
      expect(out.signal).toBe('SIGSEGV');
      expect(v).toMatchObject({ entry, state: 'absent' });
    } else {
      expect(out.status, out.stderr).toBe(0);
      const { pid, r } = JSON.parse(out.stdout) as { pid: number; r: { ok: boolean; value: number; errno: string | null } };
      if (r.ok) {
        expect(r.value).toBe(pid);
        expect(v).toMatchObject({ entry, state: 'present' });
      } else {
        expect(r.errno).toBe('ENOSYS');
        expect(v).toMatchObject({ entry, state: 'absent' });
      }
    }
  });

  it('doctor reports both entries as advisory, ok either way, with the state the probe found', () => {
    const report = runDoctor();
    for (const entry of ['i386', 'x32'] as const) {
      const r = layer(report, `${entry}-entry`);
      expect(r).toMatchObject({ status: 'ok', required: false, data: { state: probeSyscallEntry(entry).state } });
      expect(r.detail).toMatch(/^(present|absent|filtered): /);
    }
  });
});

describe('the doctor command', () => {
  it('--json prints a report that parses, with the exit status it states', () => {
    const r = doctorCli(['--json']);
    expect(r.stderr).toBe('');
    const parsed = JSON.parse(r.stdout) as DoctorReport;
    expect(parsed.results.map((x) => x.layer)).toEqual([...ALL_LAYERS]);
    expect(parsed.host.euid).toBe(0);
    expect(r.status).toBe(parsed.exitCode);
    expect(parsed.exitCode).toBe(parsed.failing.length === 0 ? 0 : 1);
  });

  it('prints a table that names every layer, and a summary; exit 0 here, where every required layer is available', () => {
    const r = doctorCli([]);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n');
    for (const name of ALL_LAYERS) expect(lines.some((l) => l.startsWith(`${name} `)), name).toBe(true);
    expect(r.stdout).toMatch(/^LAYER +STATUS +NEED +DETAIL$/m);
    expect(r.stdout).toMatch(/All \d+ required layers are available/);
    expect(r.status).toBe(0);
  });
});

describe('doctor internals', () => {
  const result = (layer: string, status: ProbeResult['status'], required: boolean, fix?: string): ProbeResult => ({ layer, status, required, detail: `${layer} detail`, ...(fix ? { fix } : {}) });

  it('fails (exit 1) on a required layer that is missing or unknown, and only warns on the rest', () => {
    const results = [result('seccomp', 'ok', true), result('cgroup-pids', 'missing', true, 'mount it'), result('cgroup-memory', 'unknown', true), result('privileges', 'degraded', true), result('landlock', 'missing', false, 'boot with lsm=landlock')];
    const verdict = summarize(results);
    expect(verdict).toEqual({ failing: ['cgroup-pids', 'cgroup-memory'], warnings: ['privileges', 'landlock'], exitCode: 1 });
    const table = formatTable({ host: { kernel: '6.1.0', arch: 'x86_64', node: 'v20.19.0', euid: 0 }, results, ...verdict });
    expect(table).toMatch(/^cgroup-pids +missing +required +cgroup-pids detail$/m);
    expect(table).toMatch(/^ +fix: mount it$/m);
    expect(table).toContain('2 of 4 required layers are not available: cgroup-pids (missing), cgroup-memory (unknown).');
    expect(table).toContain('(exit 1)');
    expect(summarize([result('seccomp', 'ok', true), result('landlock', 'missing', false)]).exitCode).toBe(0);
  });

  it('tells v1, v2 and hybrid cgroup layouts apart from mountinfo', () => {
    const known = ['cpu', 'memory', 'pids', 'freezer', 'hugetlb'];
    const hybrid = parseMountinfo(
      [
        '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
        '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
        '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
        '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
        '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
      ].join('\n'),
    );
    const h = detectCgroupLayout(hybrid, known);
    expect(h.mode).toBe('hybrid');
    expect(h.v1.flatMap((x) => x.controllers)).toEqual(['memory', 'pids']);
    expect(h.v2).toEqual({ mountPoint: '/sys/fs/cgroup/unified', root: '/' });

    const v2 = parseMountinfo('30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot');
    expect(detectCgroupLayout(v2, known)).toMatchObject({ mode: 'v2', v1: [], v2: { mountPoint: '/sys/fs/cgroup' } });

    const v1 = parseMountinfo('35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory');
    expect(detectCgroupLayout(v1, known)).toMatchObject({ mode: 'v1', v1: [{ mountPoint: '/sys/fs/cgroup/memory', root: '/docker/abc', controllers: ['memory'] }], v2: null });

    expect(detectCgroupLayout([], known).mode).toBe('none');
    // This process's directory: the mount point plus its cgroup path below the mount's root.
    expect(cgroupDir('/sys/fs/cgroup/memory', '/docker/abc', '/docker/abc/step')).toBe('/sys/fs/cgroup/memory/step');
    expect(cgroupDir('/sys/fs/cgroup/pids', '/', '/')).toBe('/sys/fs/cgroup/pids');
    expect(parseProcCgroup('4:memory:/process_api/x\n8:pids:/\n0::/\n')).toEqual([
      { hierarchy: 4, controllers: ['memory'], path: '/process_api/x' },
      { hierarchy: 8, controllers: ['pids'], path: '/' },
      { hierarchy: 0, controllers: [], path: '/' },
    ]);
  });
});
