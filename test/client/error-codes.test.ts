// Every error the package throws on purpose carries a stable `code` and, where there is one, a
// `cause`, each reached here by really causing it (README, Errors). Programs match on these,
// never on messages.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortError,
  connect,
  InvalidOptionError,
  InvalidOutputError,
  ProtocolError,
  readMessage,
  readOutputFile,
  SandboxError,
  SpawnPolicyError,
  startZygote,
  StepResultMessage,
  ZygoteClosedError,
  ZygoteError,
  ZygoteStartError,
  type Zygote,
} from '../../dist/index.js';
import { ECHO_MAIN } from '../helpers/index.js';
import { PassThrough } from 'node:stream';

let z: Zygote;
let dir: string;

beforeAll(async () => {
  z = await startZygote({ main: ECHO_MAIN, dangerouslyAllowUnsandboxed: true });
  dir = mkdtempSync(join(tmpdir(), 'zygote-codes-'));
});
afterAll(async () => {
  await z?.close();
  rmSync(dir, { recursive: true, force: true });
});

const caught = async (p: Promise<unknown> | (() => unknown)): Promise<Error & { code?: string }> => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
};

describe('error codes and causes', () => {
  it('ERR_ZYGOTE_START: a main without a default export', async () => {
    const err = await caught(startZygote({ main: new URL('../fixtures/no-default-main.mjs', import.meta.url) }));
    expect(err).toBeInstanceOf(ZygoteStartError);
    expect(err).toBeInstanceOf(ZygoteError);
    expect(err.code).toBe('ERR_ZYGOTE_START');
  });

  it('ERR_ZYGOTE_START with the connect error as cause: no zygote at the socket', async () => {
    const err = await caught(connect(join(dir, 'nobody.sock')));
    expect(err).toMatchObject({ code: 'ERR_ZYGOTE_START', cause: { code: 'ENOENT' } });
  });

  it('ERR_ZYGOTE_SANDBOX with the errno as cause: a sandbox step that fails', async () => {
    const err = await caught(z.spawn({ args: ['exit', 0], sandbox: { dangerouslyInjectFailure: { step: 'setresuid', errno: 'EPERM' } } }));
    expect(err).toBeInstanceOf(SandboxError);
    expect(err).toMatchObject({ code: 'ERR_ZYGOTE_SANDBOX', step: 'setresuid', errno: 'EPERM', cause: { code: 'EPERM', syscall: 'setresuid' } });
  });

  it('ERR_ZYGOTE_SPAWN_POLICY: a network asked of a zygote that gives none', async () => {
    const err = await caught(z.spawn({ args: ['exit', 0], network: { allow: [] } }));
    expect(err).toBeInstanceOf(SpawnPolicyError);
    expect(err.code).toBe('ERR_ZYGOTE_SPAWN_POLICY');
  });

  it('ABORT_ERR with the signal reason as cause', async () => {
    const ac = new AbortController();
    const reason = new Error('renderer shutting down');
    ac.abort(reason);
    const err = await caught(z.spawn({ args: ['exit', 0], signal: ac.signal }));
    expect(err).toBeInstanceOf(AbortError);
    expect(err).toMatchObject({ code: 'ABORT_ERR', cause: reason });
  });

  it('ERR_ZYGOTE_CLOSED: a spawn on a closed handle', async () => {
    const other = await startZygote({ main: ECHO_MAIN });
    await other.close();
    const err = await caught(other.spawn({ args: ['exit', 0] }));
    expect(err).toBeInstanceOf(ZygoteClosedError);
    expect(err.code).toBe('ERR_ZYGOTE_CLOSED');
  });

  it('ERR_ZYGOTE_INVALID_OUTPUT: an output file that is not there', async () => {
    const err = await caught(() => readOutputFile(dir, 'missing.arrow', { maxBytes: 1024 }));
    expect(err).toBeInstanceOf(InvalidOutputError);
    expect(err).toMatchObject({ code: 'ERR_ZYGOTE_INVALID_OUTPUT', reason: 'not-found' });
  });

  it('ERR_ZYGOTE_PROTOCOL: garbage where a message should be', async () => {
    const stream = new PassThrough();
    stream.end(Buffer.from([0, 0, 0, 3, 0xff, 0xff, 0xff]));
    const err = await caught(readMessage(stream, StepResultMessage, { maxBytes: 1024, timeoutMs: 5_000 }));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.code).toBe('ERR_ZYGOTE_PROTOCOL');
  });

  it('ERR_INVALID_ARG_VALUE, still a TypeError: an unknown option key', async () => {
    const err = await caught(z.spawn({ timeout: 5 } as never));
    expect(err).toBeInstanceOf(TypeError);
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect(err.code).toBe('ERR_INVALID_ARG_VALUE');
  });
});
