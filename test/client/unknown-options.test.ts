// Unknown option keys are refused at every boundary, with a TypeError naming the key and where
// it was given: a typo such as `limitz` must never run a child without limits. Wrong types too.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, mapOutputFile, readOutputFile, startZygote, type Zygote } from '../../dist/client/index.js';
import { decodeMessage, encodeMessage, readMessage, writeMessage } from '../../dist/protocol/index.js';
import { StepRequestMessage } from '../../dist/protocol/step.js';
import { readArrowOutput, runStep, validateArrowFile } from '../../dist/steps/index.js';
import { ECHO_MAIN } from '../helpers/index.js';

let z: Zygote;
let dir: string;

beforeAll(async () => {
  z = await startZygote({ main: ECHO_MAIN });
  dir = mkdtempSync(join(tmpdir(), 'zygote-options-'));
});
afterAll(async () => {
  await z?.close();
  rmSync(dir, { recursive: true, force: true });
});

const LIMITS = 'wallTimeMs, cpuTimeMs, memoryBytes, pids, stdoutBytes, stderrBytes, fileBytes, tmpBytes, outputBytes, outputFiles';
const main = ECHO_MAIN;

/** [where, call, the exact message]; every call must throw or reject with a TypeError. */
const UNKNOWN: [string, () => unknown, string][] = [
  ['startZygote()', () => startZygote({ main, poolSize: 4 } as never), 'Unknown option `poolSize` in startZygote(); known: main, preload, env, name, startupTimeoutMs, spawnTimeoutMs, verbose, metrics, sandbox, limits, pool, maxChildren, maxQueue, queueTimeoutMs, dangerouslyAllowUnsandboxed'],
  ['startZygote() limits', () => startZygote({ main, limits: { memoryBytez: 1 } } as never), `Unknown option \`limits.memoryBytez\` in startZygote(); known: ${LIMITS}`],
  ['startZygote() sandbox', () => startZygote({ main, sandbox: { tmpbytes: 1 } } as never), 'Unknown option `sandbox.tmpbytes` in startZygote(); known: uid, gid, uidRange, rlimits, tmpBytes, readOnlyPaths, network'],
  ['startZygote() sandbox.rlimits', () => startZygote({ main, sandbox: { rlimits: { nofiles: 9 } } } as never), 'Unknown option `sandbox.rlimits.nofiles` in startZygote(); known: nofile, fsize'],
  ['startZygote() sandbox.uidRange', () => startZygote({ main, sandbox: { uidRange: { start: 1e5, count: 10, step: 2 } } } as never), 'Unknown option `sandbox.uidRange.step` in startZygote(); known: start, count'],
  ['startZygote() sandbox.network', () => startZygote({ main, sandbox: { network: { subnet: '10.9.0.0/16', allowed: [] } } } as never), 'Unknown option `sandbox.network.allowed` in startZygote(); known: subnet, allow, clientAllow'],
  ['connect()', () => connect('/nonexistent.sock', { timeout: 5 } as never), 'Unknown option `timeout` in connect(); known: timeoutMs, retryMs, spawnTimeoutMs, limits'],
  ['connect() limits', () => connect('/nonexistent.sock', { limits: { pid: 20 } } as never), `Unknown option \`limits.pid\` in connect(); known: ${LIMITS}`],
  ['spawn() limitz', () => z.spawn({ limitz: { memoryBytes: 1 } } as never), 'Unknown option `limitz` in spawn(); known: args, name, signal, mounts, network, output, sandbox, limits'],
  ['spawn() timeout', () => z.spawn({ timeout: 5 } as never), 'Unknown option `timeout` in spawn(); known: args, name, signal, mounts, network, output, sandbox, limits'],
  ['spawn() limits', () => z.spawn({ limits: { wallTime: 5 } } as never), `Unknown option \`limits.wallTime\` in spawn(); known: ${LIMITS}`],
  ['spawn() sandbox', () => z.spawn({ sandbox: { nofile: 5 } } as never), 'Unknown option `sandbox.nofile` in spawn() (mounts, network and output are spawn() options of their own); known: rlimits, tmpBytes, dangerouslySkip, dangerouslyInjectFailure'],
  ['spawn() sandbox.mounts', () => z.spawn({ sandbox: { mounts: [] } } as never), 'Unknown option `sandbox.mounts` in spawn() (mounts, network and output are spawn() options of their own); known: rlimits, tmpBytes, dangerouslySkip, dangerouslyInjectFailure'],
  ['spawn() sandbox.rlimits', () => z.spawn({ sandbox: { rlimits: { fsise: 5 } } } as never), 'Unknown option `sandbox.rlimits.fsise` in spawn(); known: nofile, fsize'],
  ['spawn() sandbox.dangerouslyInjectFailure', () => z.spawn({ sandbox: { dangerouslyInjectFailure: { step: 'setsid', errno: 'EPERM', when: 1 } } } as never), 'Unknown option `sandbox.dangerouslyInjectFailure.when` in spawn(); known: step, errno'],
  ['spawn() mounts entry', () => z.spawn({ mounts: [{ source: dir, target: '/data', writeable: true }] } as never), 'Unknown option `mounts[0].writeable` in spawn(); known: source, target, writable'],
  ['spawn() network', () => z.spawn({ network: { allow: [], deny: [] } } as never), 'Unknown option `network.deny` in spawn(); known: allow'],
  ['spawn() output', () => z.spawn({ output: { target: '/output', bytes: 1 << 20 } } as never), 'Unknown option `output.bytes` in spawn(); known: target'],
  ['runStep()', () => runStep(z, { module: '/x.mjs', timeoutMs: 5 } as never), 'Unknown option `timeoutMs` in runStep(); known: module, input, params, files, limits, sandbox, output, stderrBytes, name, timings'],
  ['runStep() limits', () => runStep(z, { module: '/x.mjs', limits: { memory: 5 } } as never), `Unknown option \`limits.memory\` in runStep(); known: ${LIMITS}`],
  ['runStep() sandbox', () => runStep(z, { module: '/x.mjs', sandbox: { skip: [] } } as never), 'Unknown option `sandbox.skip` in runStep(); known: rlimits, tmpBytes, dangerouslySkip, dangerouslyInjectFailure'],
  ['runStep() output caps', () => runStep(z, { module: '/x.mjs', output: { maxRow: 5 } } as never), 'Unknown option `output.maxRow` in runStep(); known: maxBytes, maxColumns, maxRows, maxBatches, maxFields, maxDepth, maxValues'],
  ['readOutputFile()', () => readOutputFile(dir, 'x', { maxBytes: 1, max: 2 } as never), 'Unknown option `max` in readOutputFile(); known: maxBytes'],
  ['mapOutputFile()', () => mapOutputFile(dir, 'x', { maxByte: 1 } as never), 'Unknown option `maxByte` in mapOutputFile(); known: maxBytes'],
  ['readArrowOutput() caps', () => readArrowOutput(dir, 'x', { maxBytes: 1, maxColumns: 1, maxRows: 1, maxRow: 1 } as never), 'Unknown option `maxRow` in the Arrow caps; known: maxBytes, maxColumns, maxRows, maxBatches, maxFields, maxDepth, maxValues'],
  ['validateArrowFile() caps', () => validateArrowFile(Buffer.alloc(0), { maxBytes: 1, maxColumns: 1, maxRows: 1, maxbatches: 1 } as never), 'Unknown option `maxbatches` in the Arrow caps; known: maxBytes, maxColumns, maxRows, maxBatches, maxFields, maxDepth, maxValues'],
  ['readMessage()', () => readMessage(new PassThrough(), StepRequestMessage, { maxBytes: 10, timeoutMs: 10, timeout: 5 } as never), 'Unknown option `timeout` in readMessage(); known: maxBytes, typeName, expectEnd, maxDepth, maxItems, timeoutMs'],
  ['decodeMessage()', () => decodeMessage(Buffer.alloc(0), StepRequestMessage, { maxBytes: 10, timeoutMs: 10 } as never), 'Unknown option `timeoutMs` in decodeMessage(); known: maxBytes, typeName, expectEnd, maxDepth, maxItems'],
  ['writeMessage()', () => writeMessage(new PassThrough(), new StepRequestMessage({ modulePath: '/m', outputPath: '/o' }), { maxbytes: 1 } as never), 'Unknown option `maxbytes` in writeMessage() / encodeMessage(); known: maxBytes'],
  ['encodeMessage()', () => encodeMessage(new StepRequestMessage({ modulePath: '/m', outputPath: '/o' }), { limit: 1 } as never), 'Unknown option `limit` in writeMessage() / encodeMessage(); known: maxBytes'],
];

/** Wrong types, beside the unknown keys: each names the option and what it got. */
const WRONG_TYPE: [string, () => unknown, string][] = [
  ['spawn() limits not an object', () => z.spawn({ limits: 5 } as never), 'Expected the `limits` option of spawn() to be an object, got 5 (number)'],
  ['spawn() a memory limit as text', () => z.spawn({ limits: { memoryBytes: '1G' } } as never), 'Expected `limits.memoryBytes` to be a positive integer (or null for no limit), got "1G" (string)'],
  ['spawn() Infinity for no limit', () => z.spawn({ limits: { wallTimeMs: Infinity } }), 'Expected `limits.wallTimeMs` to be a positive integer (or null for no limit), got Infinity (number)'],
  ['spawn() /tmp lifted with null', () => z.spawn({ limits: { tmpBytes: null } } as never), 'Expected `limits.tmpBytes` to be a positive integer, got null'],
  ['spawn() output not an object', () => z.spawn({ output: '/output' } as never), 'Expected the `output` option of spawn() to be an object { target?: string }, got "/output" (string)'],
  ['spawn() output.target not absolute', () => z.spawn({ output: { target: 'out' } }), 'Expected `output.target` of spawn() to be an absolute path, got "out" (string)'],
  ['spawn() output.target not a string', () => z.spawn({ output: { target: 7 } } as never), 'Expected `output.target` of spawn() to be an absolute path, got 7 (number)'],
  ['spawn() outputBytes lifted with null', () => z.spawn({ limits: { outputBytes: null } } as never), 'Expected `limits.outputBytes` to be a positive integer, got null'],
  ['spawn() outputFiles as text', () => z.spawn({ limits: { outputFiles: '4k' } } as never), 'Expected `limits.outputFiles` to be a positive integer, got "4k" (string)'],
  ['runStep() outputBytes of 0', () => runStep(z, { module: '/x.mjs', limits: { outputBytes: 0 } }), 'Expected `limits.outputBytes` to be a positive integer, got 0 (number)'],
  ['spawn() mounts not an array', () => z.spawn({ mounts: {} } as never), 'Expected the `mounts` option to be an array of { source, target, writable? }, got an object'],
  ['spawn() sandbox not an object', () => z.spawn({ sandbox: 'none' } as never), 'Expected the `sandbox` option to be an object, got "none" (string)'],
  ['startZygote() sandbox.uidRange not an object', () => startZygote({ main, sandbox: { uidRange: 7 } } as never), 'Expected `sandbox.uidRange` to be { start, count }, got 7 (number)'],
  ['startZygote() pids below what Node needs', () => startZygote({ main, limits: { pids: 4 } }), 'Expected `limits.pids` to be at least 10'],
  ['connect() options not an object', () => connect('/nonexistent.sock', 'fast' as never), 'Expected connect() options to be an object, got "fast" (string)'],
  ['connect() retryMs negative', () => connect('/nonexistent.sock', { retryMs: -1 }), 'Expected the `retryMs` option to be a non-negative integer, got -1 (number)'],
  ['startZygote() metrics not an address', () => startZygote({ main, metrics: 'nowhere' }), 'a metrics address is HOST:PORT (port 1-65535) or unix:/PATH, got "nowhere"'],
  ['startZygote() metrics not a string', () => startZygote({ main, metrics: 9100 } as never), 'Expected the `metrics` option to be a string, got 9100 (number)'],
  ['runStep() files not paths', () => runStep(z, { module: '/x.mjs', files: { 'a.csv': 5 } } as never), 'Expected `files.a.csv` of runStep() to be a path, got 5 (number)'],
  ['runStep() timings not a boolean', () => runStep(z, { module: '/x.mjs', timings: 1 } as never), 'Expected the `timings` option of runStep() to be a boolean, got 1 (number)'],
  ['runStep() module missing', () => runStep(z, {} as never), 'Expected the `module` option of runStep() to be a path, got undefined (undefined)'],
];

async function thrown(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  return null;
}

describe('unknown option keys', () => {
  it.each(UNKNOWN)('%s: a TypeError naming the key, where it was given and what is known', async (_where, call, message) => {
    const err = await thrown(call);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toBe(message);
  });

  it('positive control: the same zygote spawns with the keys spelt right', async () => {
    const child = await z.spawn({ args: ['exit', 0], limits: { memoryBytes: 256 << 20, wallTimeMs: 5000, outputBytes: 1 << 20 }, sandbox: { rlimits: { nofile: 64 } }, mounts: [{ source: dir, target: '/data', writable: false }], output: { target: '/out' } });
    expect((await child.exited).code).toBe(0);
    expect(child.output!.usage().maxBytes).toBe(1 << 20);
    child.output!.close();
  });
});

describe('wrong types', () => {
  it.each(WRONG_TYPE)('%s: a TypeError saying what it must be and what it was', async (_what, call, message) => {
    const err = await thrown(call);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toContain(message);
  });
});
