// A zygote refuses to start on a Node.js it is not made for (told by
// test/fixtures/fake-node-version.mjs that it runs Node 22), and `zygote doctor` reports the
// Node.js version as a required layer.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FORK_SAFE_NODE_FLAGS } from '../../dist/protocol/config.js';
import { probeNode } from '../../dist/zygote/doctor/node.js';
import { isRequired } from '../../dist/zygote/doctor/layers.js';
import { CLI, ROOT } from '../helpers/index.js';
import { echoListenConfig } from '../helpers/zygote-config.js';

const FAKE = join(ROOT, 'test/fixtures/fake-node-version.mjs');
const dir = mkdtempSync(join(tmpdir(), 'zygote-node-version-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the zygote process', () => {
  it('on Node.js 22, logs why it cannot start, exits 1 and never listens', () => {
    const socket = join(dir, 'zygote.sock');
    const config = echoListenConfig(socket, 'node-version');
    const r = spawnSync(process.execPath, [...FORK_SAFE_NODE_FLAGS, '--import', FAKE, join(ROOT, 'dist/zygote/main.js'), config], {
      env: { FAKE_NODE_VERSION: '22.3.0' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot start: zygote needs Node\.js 20\.19 or a newer 20\.x, and this is Node\.js 22\.3\.0/);
    expect(existsSync(socket)).toBe(false);
  });
});

describe('zygote doctor', () => {
  it('reports the Node.js version as a required layer: ok on this one, missing on Node 22 with a fix', () => {
    expect(isRequired('node')).toBe(true);
    expect(probeNode()).toMatchObject({ layer: 'node', status: 'ok', data: { version: process.versions.node } });
    const r = probeNode('22.3.0');
    expect(r).toMatchObject({ layer: 'node', status: 'missing', data: { version: '22.3.0' } });
    expect(r.fix).toMatch(/Node\.js 20/);
  });

  it('fails (exit 1) on Node.js 22, naming the node layer', () => {
    const r = spawnSync(process.execPath, ['--import', FAKE, CLI, 'doctor', '--json'], { env: { ...process.env, FAKE_NODE_VERSION: '22.3.0' }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect((JSON.parse(r.stdout) as { failing: string[] }).failing).toContain('node');
  });
});
