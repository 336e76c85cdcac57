// deploy/: the systemd unit and the Kubernetes sidecar manifest promise what the README says
// (a drain that fits in the stop timeout, probes that ask the zygote, a delegated cgroup, the
// hardening), systemd itself accepts the unit, every flag they pass exists, and the capability
// set they grant is enough for the zygote to serve a spawn with a client's mount.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { connect } from '../../dist/index.js';
import { describeNeeds, idmappedMounts } from '../helpers/host.js';
import { collect } from '../helpers/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/cli.js');
const UNIT_FILE = join(ROOT, 'deploy/zygote.service');
const MANIFEST_FILE = join(ROOT, 'deploy/kubernetes-sidecar.yaml');

// ---- the systemd unit ----

/** A unit file's sections: each key's values in order (a key may repeat, as ExecStartPost=). */
type Unit = Map<string, Map<string, string[]>>;

/** systemd's unit syntax, as much as the unit uses: sections, Key=Value, # and ; comments, \ continuations. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | null = null;
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[([^\]]+)\]$/.exec(line);
    if (head) {
      section = unit.get(head[1]!) ?? new Map();
      unit.set(head[1]!, section);
      continue;
    }
    const kv = /^([A-Za-z0-9]+)\s*=\s*(.*)$/.exec(line);
    if (!section || !kv) throw new Error(`${UNIT_FILE}:${i + 1}: not a section or Key=Value line: ${line}`);
    section.set(kv[1]!, [...(section.get(kv[1]!) ?? []), kv[2]!]);
  }
  return unit;
}

/** The one value of [section] key, or undefined; a key given twice is an error here. */
function one(unit: Unit, section: string, key: string): string | undefined {
  const values = unit.get(section)?.get(key);
  if (values && values.length > 1) throw new Error(`[${section}] ${key}= is given ${values.length} times`);
  return values?.[0];
}

/** A systemd time span ("35s", "1min 30s", "500ms", "20": seconds) in milliseconds. */
function timeSpanMs(value: string): number {
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, hr: 3_600_000 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]*)/g)];
  const squeeze = (t: string) => t.replace(/\s+/g, '');
  if (parts.length === 0 || squeeze(parts.map((p) => p[0]).join('')) !== squeeze(value)) throw new Error(`not a time span: ${JSON.stringify(value)}`);
  return parts.reduce((sum, p) => {
    const unit = p[2] || 's';
    if (!(unit in units)) throw new Error(`unknown time unit in ${JSON.stringify(value)}`);
    return sum + Number(p[1]) * units[unit]!;
  }, 0);
}

/** An Exec line's argv: the unit quotes nothing, so whitespace splits it (a leading -, @, + or ! prefix is refused). */
function execArgv(line: string): string[] {
  if (/["'\\]/.test(line) || /^[-@+!:]/.test(line)) throw new Error(`an Exec line this test cannot split: ${line}`);
  return line.trim().split(/\s+/);
}

/** Every value of --name in argv, as "--name value" or "--name=value". */
function flagValues(argv: string[], name: string): string[] {
  const out: string[] = [];
  for (const [i, a] of argv.entries()) {
    if (a === name && i + 1 < argv.length) out.push(argv[i + 1]!);
    else if (a.startsWith(`${name}=`)) out.push(a.slice(name.length + 1));
  }
  return out;
}

/** The one value of --name in argv; absent or repeated is an error. */
function flagValue(argv: string[], name: string): string {
  const v = flagValues(argv, name);
  if (v.length !== 1) throw new Error(`${name} appears ${v.length} times in ${argv.join(' ')}`);
  return v[0]!;
}

/** The --flags in argv (the part before any =). */
function flagsOf(argv: string[]): string[] {
  return argv.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]!);
}

const unitText = readFileSync(UNIT_FILE, 'utf8');
const unit = parseUnit(unitText);
const execStart = execArgv(one(unit, 'Service', 'ExecStart')!);
const execStartPost = (unit.get('Service')?.get('ExecStartPost') ?? []).map(execArgv);
const healthPost = execStartPost.find((argv) => argv[2] === 'health');

/** What the zygote needs (README, Security; the unit's and the manifest's comments say why each). */
const CAPABILITIES = ['SETUID', 'SETGID', 'SETPCAP', 'SYS_ADMIN', 'SYS_CHROOT', 'SYS_PTRACE', 'NET_ADMIN', 'KILL'];

/** systemd-analyze, where installed; else why not, for the skip's title. */
const analyze = ((): { present: true } | { present: false; reason: string } => {
  const r = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return { present: false, reason: 'no systemd-analyze binary (apt-get install systemd)' };
  if (r.error) throw new Error(`probing systemd-analyze failed: ${r.error.message}`);
  return { present: true };
})();

/** systemd-analyze verify on a unit file; its output, both streams. */
function verify(file: string): { status: number | null; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const scratch = mkdtempSync(join(tmpdir(), 'zygote-deploy-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * The unit as this machine can verify it: every Exec line's node and cli.js (argv 0 and 1) are
 * this machine's node and this checkout's dist/cli.js; nothing else changes.
 */
function localUnit(text: string): string {
  return text.replace(/^(Exec[A-Za-z]*=)(\S+) (\S+)/gm, (_, key: string, node: string, cli: string) => {
    expect(node, 'an Exec line runs node').toMatch(/\/node$/);
    expect(cli, "an Exec line runs the package's bin").toMatch(/\/zygote\/dist\/cli\.js$/);
    return `${key}${process.execPath} ${CLI}`;
  });
}

describe('deploy/zygote.service', () => {
  const title = 'systemd-analyze verify accepts it, with its executables made this machine\'s, and prints nothing about it';
  it.skipIf(!analyze.present)(analyze.present ? title : `${title} [skipped: ${analyze.reason}]`, () => {
    const dir = join(scratch, 'verify');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'zygote.service');
    writeFileSync(file, localUnit(unitText));
    const r = verify(file);
    expect(r.output.split('\n').filter((l) => l.includes('zygote.service')), r.output).toEqual([]);
    expect(r.status, r.output).toBe(0);
    // The check can fail: the same unit with a misspelt key gets a warning naming the file.
    const bad = join(dir, 'bad', 'zygote.service');
    mkdirSync(join(dir, 'bad'));
    writeFileSync(bad, localUnit(unitText).replace(/^Delegate=/m, 'Delegat='));
    expect(verify(bad).output).toMatch(/zygote\.service:\d+: Unknown key 'Delegat'/);
  });

  it('runs zygote serve as a simple service whose start waits for `zygote health` on the same socket', () => {
    expect(one(unit, 'Service', 'Type')).toBe('simple');
    expect(execStart[2]).toBe('serve');
    expect(healthPost, 'an ExecStartPost= runs `zygote health`').toBeDefined();
    expect(healthPost!.slice(0, 2), 'the same node and cli.js as ExecStart').toEqual(execStart.slice(0, 2));
    expect(flagValue(healthPost!, '--socket')).toBe(flagValue(execStart, '--socket'));
    // The start timeout covers the health check's whole wait.
    expect(timeSpanMs(one(unit, 'Service', 'TimeoutStartSec')!)).toBeGreaterThan(Number(flagValue(healthPost!, '--wait-ms')));
    expect(one(unit, 'Service', 'Restart')).toBe('on-failure');
  });

  it('puts the socket in its RuntimeDirectory and allows root (the health check) and the renderer to connect', () => {
    expect(one(unit, 'Service', 'RuntimeDirectory')).toBe('zygote');
    expect(flagValue(execStart, '--socket')).toMatch(/^\/run\/zygote\/[^/]+$/);
    expect(flagValues(execStart, '--allow-uid')).toContain('0');
    expect(one(unit, 'Service', 'User'), 'the zygote runs as root').toBeUndefined();
  });

  it('delegates its cgroup, and stops by draining: SIGTERM to the zygote alone, with time for the drain and the reap', () => {
    expect(one(unit, 'Service', 'Delegate')).toBe('yes');
    expect(one(unit, 'Service', 'KillMode')).toBe('mixed');
    expect(one(unit, 'Service', 'KillSignal') ?? 'SIGTERM').toBe('SIGTERM');
    const drainMs = Number(flagValue(execStart, '--drain-ms'));
    expect(drainMs).toBeGreaterThan(0);
    // The drain, then at most 5 s to kill and reap what is left (README, CLI), then a margin.
    expect(timeSpanMs(one(unit, 'Service', 'TimeoutStopSec')!)).toBeGreaterThan(drainMs + 5_000);
  });

  it('has the hardening the README describes, and none of the settings that would break the sandbox', () => {
    const s = (key: string) => one(unit, 'Service', key);
    expect({
      ProtectSystem: s('ProtectSystem'),
      ProtectHome: s('ProtectHome'),
      PrivateTmp: s('PrivateTmp'),
      PrivateDevices: s('PrivateDevices'),
      NoNewPrivileges: s('NoNewPrivileges'),
      ProtectKernelModules: s('ProtectKernelModules'),
      ProtectKernelLogs: s('ProtectKernelLogs'),
    }).toEqual({ ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', PrivateDevices: 'yes', NoNewPrivileges: 'yes', ProtectKernelModules: 'yes', ProtectKernelLogs: 'yes' });
    expect(s('CapabilityBoundingSet')!.split(/\s+/).sort()).toEqual(CAPABILITIES.map((c) => `CAP_${c}`).sort());
    // Each of these would break it (the unit's comments say how): unset, or explicitly off.
    for (const key of ['ProtectControlGroups', 'ProtectKernelTunables', 'ProtectHostname', 'RestrictNamespaces', 'SystemCallFilter', 'MemoryDenyWriteExecute', 'PrivateUsers', 'PrivateNetwork', 'DynamicUser']) {
      expect([undefined, 'no'], key).toContain(s(key));
    }
    expect([undefined, '0022', '022'], 'UMask').toContain(s('UMask'));
  });
});

// ---- the Kubernetes manifest ----

type Obj = Record<string, unknown>;
interface Container {
  name: string;
  command?: string[];
  env?: { name: string; value?: string }[];
  securityContext?: { runAsUser?: number; runAsNonRoot?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { add?: string[]; drop?: string[] } };
  volumeMounts?: { name: string; mountPath: string }[];
  readinessProbe?: { exec?: { command?: string[] } };
  livenessProbe?: { exec?: { command?: string[] } };
  startupProbe?: { exec?: { command?: string[] } };
}

const documents = parseAllDocuments(readFileSync(MANIFEST_FILE, 'utf8')).map((d) => {
  if (d.errors.length > 0) throw new Error(`${MANIFEST_FILE}: ${d.errors.map((e) => e.message).join('; ')}`);
  return d.toJS() as Obj;
});
const pods = documents.filter((d) => d.kind === 'Pod');
const pod = pods[0] as { apiVersion: string; metadata: Obj; spec: { containers: Container[]; volumes?: Obj[]; terminationGracePeriodSeconds?: number; runtimeClassName?: string; hostUsers?: boolean } };
const container = (name: string) => pod.spec.containers.find((c) => c.name === name)!;
const zygote = container('zygote');
const renderer = container('renderer');

describe('deploy/kubernetes-sidecar.yaml', () => {
  it('is one v1 Pod, with a renderer and a zygote container, beside the RuntimeClass it names', () => {
    expect(pods).toHaveLength(1);
    expect(pod.apiVersion).toBe('v1');
    expect(pod.spec.containers.map((c) => c.name).sort()).toEqual(['renderer', 'zygote']);
    const runtimeClass = documents.find((d) => d.kind === 'RuntimeClass') as { apiVersion: string; metadata: { name: string }; handler: string } | undefined;
    expect(runtimeClass?.apiVersion).toBe('node.k8s.io/v1');
    expect(runtimeClass?.handler).toMatch(/^[a-z0-9-]+$/);
    expect(pod.spec.runtimeClassName).toBe(runtimeClass?.metadata.name);
    expect(pod.spec.hostUsers).toBe(true);
    expect(documents.map((d) => d.kind).sort()).toEqual(['Pod', 'RuntimeClass']);
  });

  it('serves on the socket the renderer is told, in the emptyDir both containers mount', () => {
    const argv = zygote.command!;
    expect(argv[2]).toBe('serve');
    expect(argv[1]).toMatch(/\/zygote\/dist\/cli\.js$/);
    const socket = flagValue(argv, '--socket');
    expect(renderer.env?.find((e) => e.name === 'ZYGOTE_SOCKET')?.value).toBe(socket);
    const dir = socket.slice(0, socket.lastIndexOf('/'));
    for (const c of [zygote, renderer]) expect(c.volumeMounts?.find((m) => m.mountPath === dir)?.name, c.name).toBe('zygote-socket');
    expect(pod.spec.volumes?.find((v) => v.name === 'zygote-socket')).toEqual({ name: 'zygote-socket', emptyDir: {} });
    // The renderer's uid, and root's: the probes run `zygote health` as root.
    expect(flagValues(argv, '--allow-uid')).toEqual(expect.arrayContaining([String(renderer.securityContext!.runAsUser), '0']));
  });

  it('probes readiness, liveness and startup with `zygote health` on the zygote\'s own socket', () => {
    const socket = flagValue(zygote.command!, '--socket');
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe'] as const) {
      const argv = zygote[probe]?.exec?.command;
      expect(argv, `${probe} is an exec probe`).toBeDefined();
      expect(argv!.slice(0, 2), `${probe}: the same node and cli.js as the zygote`).toEqual(zygote.command!.slice(0, 2));
      expect(argv![2], probe).toBe('health');
      expect(flagValue(argv!, '--socket'), probe).toBe(socket);
    }
  });

  it('mounts no cgroup tree of the host: no hostPath volume, nothing mounted at /sys/fs/cgroup', () => {
    for (const v of pod.spec.volumes ?? []) expect(v, `volume ${String(v.name)}`).not.toHaveProperty('hostPath');
    for (const c of pod.spec.containers) {
      for (const m of c.volumeMounts ?? []) expect(m.mountPath.replace(/\/+$/, ''), `${c.name} mounts ${m.name}`).not.toMatch(/^\/sys(\/fs(\/cgroup.*)?)?$/);
    }
  });

  it('gives the pod a grace period longer than the drain and the reap', () => {
    const drainMs = Number(flagValue(zygote.command!, '--drain-ms'));
    expect(drainMs).toBeGreaterThan(0);
    expect(pod.spec.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(drainMs + 5_000);
  });

  it('runs the renderer as non-root without capabilities, and the zygote as root with exactly the capabilities it needs', () => {
    expect(renderer.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(renderer.securityContext!.runAsUser).toBeGreaterThan(0);
    expect(renderer.securityContext!.capabilities!.add ?? []).toEqual([]);
    expect(zygote.securityContext!.runAsUser).toBe(0);
    expect(zygote.securityContext!.capabilities!.drop).toEqual(['ALL']);
    expect([...zygote.securityContext!.capabilities!.add!].sort()).toEqual([...CAPABILITIES].sort());
  });
});

// ---- both against the CLI ----

/**
 * `zygote <command> --help`, or null where that is not the command's own help
 * (commander answers an unknown command's --help with the top-level help, exit 0).
 */
function commandHelp(command: string): string | null {
  const r = spawnSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return r.status === 0 && r.stdout.startsWith(`Usage: zygote ${command} `) ? r.stdout : null;
}

describe('deploy/ and the CLI', () => {
  it('uses only flags that `zygote serve --help` and `zygote health --help` list', () => {
    const used = {
      serve: [...flagsOf(execStart), ...flagsOf(zygote.command!)],
      health: [
        ...execStartPost.filter((a) => a[2] === 'health').flatMap(flagsOf),
        ...(['readinessProbe', 'livenessProbe', 'startupProbe'] as const).flatMap((p) => flagsOf(zygote[p]?.exec?.command ?? [])),
      ],
    };
    expect(used.serve).toContain('--drain-ms');
    expect(used.health).toContain('--socket');
    const problems: string[] = [];
    for (const [command, flags] of Object.entries(used)) {
      const text = commandHelp(command);
      if (text === null) {
        problems.push(`zygote ${command}: no such command (its --help is not its own)`);
        continue;
      }
      for (const f of new Set(flags)) if (!new RegExp(`(^|[\\s,])${f}(?=[\\s=<\\[,]|$)`, 'm').test(text)) problems.push(`zygote ${command} ${f}: not in its --help`);
    }
    expect(problems).toEqual([]);
  });

  // The capabilities both files grant, and no_new_privs, tried for real: a zygote limited to
  // them, in a mount namespace of its own (as ProtectSystem= and the sidecar put it), serves a
  // spawn with a mount from this process's namespace. Without SYS_CHROOT or SYS_PTRACE it cannot.
  // The mount's source is in TMPDIR, whose filesystem must take idmapped mounts.
  describeNeeds(idmappedMounts(), 'a zygote with only the deployed capabilities and no_new_privs', () => {
    const dir = join(scratch, 'caps');
    const input = join(dir, 'input');
    const main = join(dir, 'main.mjs');
    mkdirSync(input, { recursive: true });
    writeFileSync(join(input, 'in.txt'), 'from the renderer');
    writeFileSync(main, "import { readFileSync } from 'node:fs';\nexport default async function main() { process.stdout.write(readFileSync('/input/in.txt', 'utf8')); }\n");

    /**
     * Starts `zygote serve` under unshare -m and setpriv with caps, runs one spawn with a mount
     * (no cgroup: a cgroup v1 hierarchy's root, where a test runs, is writable only with
     * CAP_DAC_OVERRIDE; a delegated subtree is the service's own), stops it cleanly; returns the
     * spawn's stdout or error.
     */
    async function spawnWith(caps: string[], name: string): Promise<{ stdout?: string; error?: string }> {
      const socket = join(dir, `${name}.sock`);
      const bounding = ['-all', ...caps.map((c) => `+${c.toLowerCase()}`)].join(',');
      const server = spawn(
        'unshare',
        ['--mount', '--propagation', 'slave', 'setpriv', '--no-new-privs', `--bounding-set=${bounding}`, '--inh-caps=-all', process.execPath, CLI, 'serve', '--socket', socket, '--main', main, '--max-memory', 'none', '--max-pids', 'none', '--quiet'],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let log = '';
      server.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
      const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
      try {
        for (let i = 0; i < 100 && !existsSync(socket) && server.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
        if (!existsSync(socket)) throw new Error(`zygote serve did not listen: ${log}`);
        const z = await connect(socket);
        try {
          let child;
          try {
            child = await z.spawn({ mounts: [{ source: input, target: '/input' }], limits: { memoryBytes: null, pids: null } });
          } catch (err) {
            return { error: (err as Error).message };
          }
          child.stdin.end();
          // Read to the end: the exit can be told before the last of stdout is read.
          const [stdout, st] = await Promise.all([collect(child.stdout), child.exited]);
          expect(st.code, log).toBe(0);
          return { stdout };
        } finally {
          await z.close();
        }
      } finally {
        server.kill('SIGTERM');
        const timer = setTimeout(() => server.kill('SIGKILL'), 15_000);
        const code = await exited;
        clearTimeout(timer);
        expect(code, `zygote serve exited ${code}: ${log}`).toBe(0);
      }
    }

    it('runs the spawn, its mount copied from the client\'s mount namespace', async () => {
      expect(await spawnWith(CAPABILITIES, 'all')).toEqual({ stdout: 'from the renderer' });
    });

    // Each fails where the unit's comment says: entering the root template's mount namespace,
    // and copying the client's mount (its namespace could not be opened).
    it.each([
      ['SYS_CHROOT', /setns\((root template|client mount namespace)\) failed: EPERM/],
      ['SYS_PTRACE', /mounts\[0\]: open_tree\(source fd\) failed/],
    ])('fails without %s', async (cap, error) => {
      const r = await spawnWith(CAPABILITIES.filter((c) => c !== cap), cap);
      expect(r.stdout).toBeUndefined();
      expect(r.error).toMatch(error);
    });
  });
});
