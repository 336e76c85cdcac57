// `zygote serve` options from a config file (--config or ZYGOTE_CONFIG, JSON or TOML) and from
// ZYGOTE_* variables: flags > environment > file > defaults, seen in what the server does (its
// pool's size, its children's environment, its log format); and every bad key or value refused
// at start with an error naming where it came from.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../dist/client/index.js';
import { CLI, collect, ECHO_MAIN, ROOT } from '../helpers/index.js';
import { startServed, stopAllServed } from '../helpers/served.js';

const dir = mkdtempSync(join(tmpdir(), 'zygote-serve-config-'));
afterEach(stopAllServed);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The environment of a test's server: this one's without ZYGOTE_* variables, plus vars. */
function envWith(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ZYGOTE_')));
  return { ...env, ...vars };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function poolSize(socket: string): Promise<number> {
  const z = await connect(socket);
  try {
    return (await z.stats()).poolSize;
  } finally {
    await z.close();
  }
}

async function childEnv(socket: string): Promise<Record<string, string>> {
  const z = await connect(socket);
  try {
    const child = await z.spawn({ args: ['whoami'] });
    const [out] = await Promise.all([collect(child.stdout), child.exited]);
    return (JSON.parse(out) as { env: Record<string, string> }).env;
  } finally {
    await z.close();
  }
}

/** A serve that must not start: its exit code and stderr. */
function refused(args: string[], env: NodeJS.ProcessEnv = envWith({})): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'serve', ...args], { encoding: 'utf8', env, cwd: ROOT, timeout: 30_000 });
  return { code: r.status, stderr: r.stderr };
}

describe('precedence: flags > ZYGOTE_* > file > defaults', () => {
  it('the pool size from the file, then the variable over it, then the flag over both', async () => {
    const cfg = file('pool.json', JSON.stringify({ pool: 1 }));
    const fromFile = await startServed(['--config', cfg], { env: envWith({}) });
    expect(await poolSize(fromFile.socket)).toBe(1);
    const fromEnv = await startServed(['--config', cfg], { env: envWith({ ZYGOTE_POOL: '2' }) });
    expect(await poolSize(fromEnv.socket)).toBe(2);
    const fromFlag = await startServed(['--config', cfg, '--pool', '3'], { env: envWith({ ZYGOTE_POOL: '2' }) });
    expect(await poolSize(fromFlag.socket)).toBe(3);
  });

  it('a TOML file named by ZYGOTE_CONFIG gives everything, socket and main included; a list variable (JSON) replaces the file list', async () => {
    const socket = join(dir, 'toml.sock');
    const cfg = file('serve.toml', `socket = "${socket}"\nmain = "${ECHO_MAIN.pathname}"\nlogFormat = "json"\nenv = { A = "from-file", B = "from-file" }\n`);
    const s = await startServed([], { bare: true, socket, env: envWith({ ZYGOTE_CONFIG: cfg }) });
    expect(s.stderr()).toMatch(/^\{"time":/);
    expect(await childEnv(socket)).toEqual({ A: 'from-file', B: 'from-file' });
    await stopAllServed();
    const s2 = await startServed([], { bare: true, socket, env: envWith({ ZYGOTE_CONFIG: cfg, ZYGOTE_ENV: '["B=from-env"]', ZYGOTE_LOG_FORMAT: 'text' }) });
    expect(s2.stderr()).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await childEnv(socket)).toEqual({ B: 'from-env' });
  });

  it('an unknown ZYGOTE_* variable is warned about, not fatal (the environment is shared)', async () => {
    const s = await startServed([], { env: envWith({ ZYGOTE_MAX_CHILDRN: '3' }) });
    expect(s.stderr()).toContain('ignoring the environment variable ZYGOTE_MAX_CHILDRN');
  });
});

describe('refused at start, naming what is wrong', () => {
  const base = ['--socket', join(dir, 'never.sock'), '--main', ECHO_MAIN.pathname];

  it('an unknown key in the file', () => {
    const cfg = file('typo.json', JSON.stringify({ sockt: '/x' }));
    expect(refused([...base, '--config', cfg])).toMatchObject({ code: 1, stderr: expect.stringContaining(`config file ${cfg}: unknown key \`sockt\``) });
  });

  it('a bad value in the file, through the flag’s own check', () => {
    const cfg = file('bad.toml', 'pool = "lots"\n');
    expect(refused([...base, '--config', cfg])).toMatchObject({ code: 1, stderr: expect.stringContaining(`config file ${cfg}: \`pool\``) });
    const typed = file('typed.json', JSON.stringify({ network: 'yes' }));
    expect(refused([...base, '--config', typed]).stderr).toContain('`network`: expected true or false');
  });

  it('a bad value in a variable, naming the variable', () => {
    expect(refused(base, envWith({ ZYGOTE_MAX_CHILDREN: 'many' })).stderr).toContain('ZYGOTE_MAX_CHILDREN:');
    expect(refused(base, envWith({ ZYGOTE_LOG_FORMAT: 'xml' })).stderr).toMatch(/ZYGOTE_LOG_FORMAT: .*xml/);
    expect(refused(base, envWith({ ZYGOTE_ALLOW_UID: '[1,' })).stderr).toContain('ZYGOTE_ALLOW_UID: not a JSON array');
  });

  it('a file that cannot be read or parsed, or has another extension', () => {
    expect(refused([...base, '--config', join(dir, 'absent.json')]).stderr).toContain('cannot read the config file');
    expect(refused([...base, '--config', file('broken.json', '{')]).stderr).toContain('broken.json:');
    expect(refused([...base, '--config', file('serve.yaml', 'pool: 1')]).stderr).toContain('must end in .json or .toml');
  });

  it('no socket or main from anywhere; a bad flag value', () => {
    expect(refused(['--main', ECHO_MAIN.pathname]).stderr).toContain('--socket is required');
    expect(refused(['--socket', join(dir, 'x.sock')]).stderr).toContain('--main is required');
    expect(refused([...base, '--log-level', 'loud']).stderr).toMatch(/--log-level.*loud.*Allowed choices are error, info, debug/);
    expect(refused([...base, '--metrics', 'nowhere']).stderr).toContain('HOST:PORT');
    expect(refused([...base, '--drain-ms', '999999999']).stderr).toContain('at most 600000');
  });
});
