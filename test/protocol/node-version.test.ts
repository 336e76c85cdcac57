// Which Node.js releases zygote accepts, and that package.json "engines" and the README's
// Requirements say the same.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { SUPPORTED_NODE, unsupportedNode } from '../../dist/protocol/node-version.js';
import { ROOT } from '../helpers/index.js';

const SUPPORTED = ['20.19.0', '20.19.5', '20.20.2', '20.99.0'];
const UNSUPPORTED = ['20.18.3', '20.0.0', '18.20.4', '19.9.0', '21.0.0', '22.12.0', '24.1.0', '200.19.0'];

describe('unsupportedNode', () => {
  it('accepts Node.js 20.19 and every later 20.x, this one included', () => {
    for (const v of SUPPORTED) expect(unsupportedNode(v), v).toBeNull();
    expect(unsupportedNode()).toBeNull();
  });

  it('refuses an earlier 20.x and every other major, naming the version it got and the one it needs', () => {
    for (const v of UNSUPPORTED) {
      const why = unsupportedNode(v);
      expect(why, v).toContain(`this is Node.js ${v}`);
      expect(why, v).toContain('Node.js 20.19 or a newer 20.x');
    }
  });

  it('refuses a version it cannot read', () => {
    expect(unsupportedNode('v20.19.0')).toContain('this is Node.js v20.19.0');
    expect(unsupportedNode('')).not.toBeNull();
  });
});

describe('the documented Node.js range', () => {
  it('package.json "engines" accepts exactly what the runtime check accepts', () => {
    const range = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    for (const v of [...SUPPORTED, ...UNSUPPORTED]) expect(semver.satisfies(v, range), `${v} against "${range}"`).toBe(unsupportedNode(v) === null);
  });

  it("the README's Requirements name the same release and major line", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const requirements = readme.slice(readme.indexOf('## Requirements'), readme.indexOf('\n## ', readme.indexOf('## Requirements') + 1));
    const m = /Node\.js (\d+)\.(\d+) or (?:a )?newer (\d+)\.x/.exec(requirements);
    expect(m, 'a "Node.js X.Y or newer X.x" line under ## Requirements').not.toBeNull();
    expect([Number(m![1]), Number(m![2]), Number(m![3])]).toEqual([SUPPORTED_NODE.major, SUPPORTED_NODE.minMinor, SUPPORTED_NODE.major]);
  });
});
