// steps/: data steps on Arrow tables. runStep() runs one untrusted step in a child of a zygote
// whose main is the step runner (step-runner.ts, which runs in the child); the step protocol's
// glue (talkToStep); Arrow IPC files: validating a step's output, mapping an input, writing a
// table (arrow-file.ts, arrow/); `zygote run` (run-command.ts). Imports client/ (to spawn),
// protocol/ and native/. The package's root entry (index.ts) re-exports all of this.
// runStep(): one untrusted step on a table, start to validated finish (run-step.ts).
export { runStep, stepRunner, talkToStep, type RunStepOptions, type StepOutcome, type StepSuccess, type StepFailure, type StepErrorKind, type CapturedText, type StepIO, type StepExchange } from './run-step.js';
// Where one runStep's milliseconds went, when asked (`timings: true`).
export type { StepTimings } from './step-timings.js';
// The step protocol's request and result as validated plain JS (protocol/step.ts, protocol/step.thrift).
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
} from '../protocol/index.js';
// Arrow tables on disk: validate a step's output file, map a trusted input without a copy, write a table.
export { readArrowOutput, validateArrowFile, mapArrowFile, writeArrowFile, DEFAULT_ARROW_CAPS, type ArrowCaps, type ArrowOutput, type MappedArrowFile } from './arrow-file.js';
export type { Table } from 'apache-arrow';
