// startZygote and connect refuse a Node.js zygote is not made for, with a ZygoteStartError,
// before they start or reach anything. The process under test is told it runs Node 22
// (test/fixtures/fake-node-version.mjs); everything else about it is real.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ECHO_MAIN, ROOT } from '../helpers/index.js';

const FAKE = join(ROOT, 'test/fixtures/fake-node-version.mjs');
const dir = mkdtempSync(join(tmpdir(), 'zygote-node-version-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs script (an ES module body with `zygote` in scope) on a Node.js claiming version; its last stdout line as JSON. */
function asNode(version: string, script: string): unknown {
  const program = `import * as zygote from ${JSON.stringify(join(ROOT, 'dist/index.js'))};\n${script}`;
  const r = spawnSync(process.execPath, ['--import', FAKE, '--input-type=module', '-e', program], {
    env: { ...process.env, FAKE_NODE_VERSION: version },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** Prints the error, and the processes this one has started (none, if nothing was started). */
const REPORT = `import { readFileSync } from 'node:fs';
const report = (e) => console.log(JSON.stringify({ name: e.name, start: e instanceof zygote.ZygoteStartError, message: e.message, children: readFileSync(\`/proc/self/task/\${process.pid}/children\`, 'utf8').trim() }));`;

describe('on Node.js 22', () => {
  it('startZygote rejects with a ZygoteStartError and starts no zygote', () => {
    const out = asNode('22.3.0', `${REPORT}\nawait zygote.startZygote({ main: new URL(${JSON.stringify(ECHO_MAIN.href)}) }).then(() => console.log('{"started":true}'), report);`);
    expect(out).toMatchObject({ name: 'ZygoteStartError', start: true, children: '' });
    expect((out as { message: string }).message).toMatch(/Node\.js 20\.19 or a newer 20\.x, and this is Node\.js 22\.3\.0/);
  });

  it('connect rejects with a ZygoteStartError before it reaches the socket', () => {
    // A live path would be reached, and a missing one fail with ENOENT: neither happens.
    const out = asNode('22.3.0', `${REPORT}\nawait zygote.connect(${JSON.stringify(join(dir, 'no-such.sock'))}).then(() => console.log('{"connected":true}'), report);`);
    expect(out).toMatchObject({ name: 'ZygoteStartError', start: true });
    expect((out as { message: string }).message).toMatch(/this is Node\.js 22\.3\.0/);
  });

  it('a 20.x before 20.19 is refused the same way', () => {
    const out = asNode('20.18.1', `${REPORT}\nawait zygote.startZygote({ main: new URL(${JSON.stringify(ECHO_MAIN.href)}) }).then(() => console.log('{"started":true}'), report);`);
    expect(out).toMatchObject({ name: 'ZygoteStartError', start: true, children: '' });
  });
});
