// zygote: fork warm, sandboxed Node.js children in milliseconds. The public API.
export { startZygote, connect } from './start.js';
export { Zygote } from './zygote.js';
export { ZygoteChild, type ExitStatus } from './child.js';
export type { StartZygoteOptions, ConnectOptions, SpawnOptions, Limits, Mount } from './options.js';
export { SANDBOX_LAYERS, type SandboxLayer, type SandboxDefaults, type SandboxRequest, type NetworkRequest, type RlimitOptions } from '../zygote/sandbox/policy.js';
export { ZygoteError, ZygoteStartError, ZygoteClosedError, SpawnError, SandboxError, AbortError, ProtocolError, type ProtocolErrorReason, InvalidOutputError, type InvalidOutputReason } from './errors.js';
export { readOutputFile, mapOutputFile, type OutputFileOptions, type MappedOutputFile } from './output-file.js';
