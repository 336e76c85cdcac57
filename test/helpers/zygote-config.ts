// The encoded config of a zygote started by hand (`node FLAGS dist/zygote/main.js CONFIG`), as
// `zygote serve` would start it: the echo main, listening on socket for this uid, every default.
import { encodeConfig } from '../../dist/protocol/config.js';
import { builtinLimitPolicy } from '../../dist/protocol/limits.js';
import { resolveAdmission } from '../../dist/protocol/admission.js';
import { normalizeSandboxDefaults } from '../../dist/protocol/sandbox.js';
import { ECHO_MAIN } from './index.js';

export function echoListenConfig(socket: string, name: string): string {
  return encodeConfig({
    main: ECHO_MAIN.href,
    preload: [],
    control: { kind: 'listen', path: socket, allowUids: [process.getuid!()] },
    name,
    setupTimeoutMs: 10_000,
    verbose: false,
    sandbox: normalizeSandboxDefaults({}),
    limits: builtinLimitPolicy(),
    admission: resolveAdmission({}, { uids: 1, uidRangeCount: null }),
    allowUnsandboxed: false,
    shutdownTimeoutMs: 5_000,
  });
}
