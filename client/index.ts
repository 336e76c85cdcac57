// zygote: fork warm, sandboxed Node.js children in milliseconds. The public API.
export { startZygote, connect } from './start.js';
export { Zygote } from './zygote.js';
export { ZygoteChild, type ExitStatus } from './child.js';
export type { StartZygoteOptions, ConnectOptions, SpawnOptions } from './options.js';
export { SANDBOX_LAYERS, type SandboxLayer, type SandboxDefaults, type RlimitOptions } from '../protocol/sandbox.js';
export type { Limits, Mount, SandboxRequest, NetworkRequest } from '../protocol/spawn.js';
export { ZygoteError, ZygoteStartError, ZygoteClosedError, SpawnError, SandboxError, AbortError, ProtocolError, type ProtocolErrorReason, InvalidOutputError, type InvalidOutputReason } from './errors.js';
export { readOutputFile, mapOutputFile, type OutputFileOptions, type MappedOutputFile } from './output-file.js';
// Messages over a child's stdio: one Thrift frame written, or read from an untrusted stream
// with bounds on size, time and nesting (protocol/messages.ts); the step protocol's request
// and result as validated plain JS (protocol/step.ts, protocol/step.thrift).
export { writeMessage, readMessage, encodeMessage, decodeMessage, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_DEPTH, type WriteMessageOptions, type ReadMessageOptions, type DecodeMessageOptions, type ThriftStruct, type ThriftStructClass } from '../protocol/messages.js';
export {
  encodeStepRequest,
  decodeStepRequest,
  stepResultOk,
  stepResultError,
  decodeStepResult,
  readStepRequest,
  readStepResult,
  StepRequestMessage,
  StepResultMessage,
  MAX_PARAM_DEPTH,
  MAX_STEP_REQUEST_BYTES,
  MAX_STEP_RESULT_BYTES,
  STEP_RESULT_LIMITS,
  type ParamJs,
  type StepParams,
  type StepRequestInit,
  type DecodedStepRequest,
  type DecodedStepResult,
} from '../protocol/step.js';
// Arrow tables on disk: validate a step's output file, map a trusted input without a copy, write a table.
export { readArrowOutput, validateArrowFile, mapArrowFile, writeArrowFile, DEFAULT_ARROW_CAPS, type ArrowCaps, type ArrowOutput, type MappedArrowFile } from './arrow-file.js';
export type { Table } from 'apache-arrow';

// runStep(): one untrusted step on a table, start to validated finish (client/run-step.ts).
export { runStep, stepRunner, type RunStepOptions, type StepOutcome, type StepSuccess, type StepFailure, type StepErrorKind, type CapturedText } from './run-step.js';
