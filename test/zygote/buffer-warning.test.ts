// zygote/buffer-warning.ts: the zygote settles Node's Buffer() deprecation check before it
// serves, so neither it nor its children walk the stack on each Buffer() call a library makes.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startZygote, type Zygote } from '../../dist/index.js';
import { collect, ECHO_MAIN } from '../helpers/index.js';

describe("the zygote's Buffer() deprecation check", () => {
  let zygote: Zygote;
  beforeAll(async () => {
    zygote = await startZygote({ main: ECHO_MAIN });
  });
  afterAll(async () => {
    await zygote?.close();
  });

  it('positive control: Buffer() from code outside node_modules prints DEP0005 in a plain node process', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', 'process.stdout.write(String(new Buffer(2).length))'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stdout).toBe('2');
    expect(r.stderr).toMatch(/\[DEP0005\] DeprecationWarning: Buffer\(\) is deprecated/);
  });

  it('is settled in a child: the same call prints nothing, because the zygote has had its one warning; other deprecations still print', async () => {
    const child = await zygote.spawn({ args: ['buffer-constructor'] });
    const [out, err, exit] = await Promise.all([collect(child.stdout), collect(child.stderr), child.exited]);
    expect(exit).toMatchObject({ code: 0 });
    expect(out).toBe('2');
    expect(err).not.toMatch(/DEP0005/);
    // process.noDeprecation was muted for that one call only.
    expect(err).toMatch(/\[ZYGOTE_TEST\] DeprecationWarning: still shown/);
  });
});
