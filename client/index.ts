// zygote: fork warm, sandboxed Node.js children in milliseconds. The public API.
export { startZygote, connect } from './start.js';
export { Zygote } from './zygote.js';
export { ZygoteChild, type ExitStatus } from './child.js';
export type { StartZygoteOptions, ConnectOptions, SpawnOptions } from './options.js';
export { ZygoteError, ZygoteStartError, ZygoteClosedError, SpawnError, AbortError, ProtocolError, type ProtocolErrorReason } from './errors.js';
