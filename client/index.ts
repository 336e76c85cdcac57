// client/: the library a renderer uses to run children in a zygote: startZygote, connect,
// Zygote (spawn), ZygoteChild, the typed errors, and reading the files a child wrote. Imports
// protocol/ and native/ only. The package's root entry (index.ts) re-exports all of this.
export { startZygote, connect } from './start.js';
export { Zygote, type ZygoteEvents } from './zygote.js';
export type { ZygoteStats, ZygoteHealth } from '../protocol/control.js';
export { ZygoteChild, type ExitStatus, type ChildLimits, type OutputCaps } from './child.js';
export { ChildOutput, type OutputUsage } from './child-output.js';
export type { StartZygoteOptions, ConnectOptions, SpawnOptions, SpawnSandboxOptions } from './options.js';
export { DEFAULT_LIMITS, DEFAULT_NOFILE, MIN_MEMORY_BYTES, MIN_PIDS, type GrantedLimits } from '../protocol/limits.js';
export { SANDBOX_LAYERS, type SandboxLayer, type SandboxDefaults, type RlimitOptions, type Limits, type Mount, type SandboxRequest, type NetworkRequest, type OutputRequest } from '../protocol/index.js';
export { ZygoteError, ZygoteStartError, ZygoteRefusedError, ZygoteClosedError, ZygoteGoneError, SpawnError, SandboxError, SpawnPolicyError, LimitCapError, ZygoteBusyError, type CapacityCap, type RefusalReason, AbortError, ProtocolError, InvalidOptionError, type ProtocolErrorReason, InvalidOutputError, type InvalidOutputReason } from './errors.js';
export { readOutputFile, mapOutputFile, type OutputFileOptions, type MappedOutputFile, type OutputDir } from './output-file.js';
// Messages over a child's stdio: one Thrift frame written, or read from an untrusted stream
// with bounds on size, time and nesting (protocol/messages.ts).
export { writeMessage, readMessage, encodeMessage, decodeMessage, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_DEPTH, type WriteMessageOptions, type ReadMessageOptions, type DecodeMessageOptions, type ThriftStruct, type ThriftStructClass } from '../protocol/index.js';
