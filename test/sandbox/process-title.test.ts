// The zygote's configuration (main, preloads, the children's env, the socket and allowed uids)
// reaches it on argv. Every child's init is a fork of the zygote, so whatever its argv area
// holds is the init's /proc/1/cmdline, readable by the step. The zygote overwrites it with a
// plain title as soon as it has decoded it.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type Zygote } from '../../dist/client/index.js';
import { collect, waitFor } from '../helpers/index.js';

const MAIN = new URL('../fixtures/sandbox-main.mjs', import.meta.url);
/** Something of the config that only the encoded argument carries: a child env value. */
const MARK = 'config-mark-7f3a';

let z: Zygote;

beforeAll(async () => {
  z = await startZygote({ main: MAIN, env: { ZYGOTE_TEST_MARK: MARK }, name: 'title-test' });
});
afterAll(async () => {
  await z?.close();
});

const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').split('\0');

describe("the zygote's argv", () => {
  it('shows a plain title in ps, not the encoded configuration', () => {
    const argv = cmdline(z.pid);
    expect(argv[0]).toBe('zygote title-test');
    expect(argv.join(' ')).not.toMatch(/[A-Za-z0-9+/=]{200}/);
  });

  it("is what a child reads at /proc/1/cmdline (its init's): the title, no config", async () => {
    const child = await z.spawn({ args: ['try-read', '/proc/1/cmdline'] });
    const [out, , status] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    expect(status).toMatchObject({ code: 0 });
    const r = JSON.parse(out) as { ok: boolean; text: string };
    expect(r.ok).toBe(true);
    expect(r.text.replace(/\0+$/, '')).toBe('zygote title-test');
  });

  it('positive control: a node process given the same kind of argument shows it in its cmdline, for anyone who can read it', async () => {
    const blob = Buffer.from(JSON.stringify({ env: { ZYGOTE_TEST_MARK: MARK } })).toString('base64');
    const cp = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)', blob], { stdio: 'ignore' });
    try {
      await waitFor(() => cmdline(cp.pid!).includes(blob), 5_000, 'the plain node to start');
      expect(Buffer.from(cmdline(cp.pid!).at(-1)!, 'base64').toString()).toContain(MARK);
    } finally {
      cp.kill('SIGKILL');
    }
  });
});
