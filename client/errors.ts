// The typed errors the client library throws. Each message says what failed and why.
import type { ZygoteLimitKey } from '../protocol/limits.js';
export { ProtocolError, type ProtocolErrorReason } from '../protocol/errors.js';

/** Base class of every error this package throws on purpose. */
export class ZygoteError extends Error {
  override name = 'ZygoteError';
}

/** The zygote could not be started: bad options, a failed preload or main, a crash, a timeout. */
export class ZygoteStartError extends ZygoteError {
  override name = 'ZygoteStartError';
}

/** The handle was closed, or the zygote died or hung up: nothing more can be done with it. */
export class ZygoteClosedError extends ZygoteError {
  override name = 'ZygoteClosedError';
}

/** A spawn() failed before any of the child's own code ran. */
export class SpawnError extends ZygoteError {
  override name = 'SpawnError';
  constructor(
    message: string,
    /** The setup step that failed ("fork", "pipe", "uv_loop_fork", ...). */
    readonly step: string,
    /** The errno symbol ("EAGAIN"), or '' when the failure had none. */
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A sandbox step failed in the child, which then exited without running any of its code
 * (fail closed). The message reads "sandbox step setresuid failed: EPERM (Operation not permitted)".
 */
export class SandboxError extends SpawnError {
  override name = 'SandboxError';
}

/**
 * The zygote refused a spawn whose limit is above its cap (`zygote serve --max-memory`...), or
 * that asked for no limit where there is a cap. Nothing was forked. step is "limits", code ''.
 */
export class LimitCapError extends SpawnError {
  override name = 'LimitCapError';
  constructor(
    message: string,
    /** The limit: wallTimeMs, cpuTimeMs, memoryBytes, pids, tmpBytes, fileBytes or nofile. */
    readonly field: ZygoteLimitKey,
    /** What the spawn asked for; null: no limit. */
    readonly requested: number | null,
    /** The most the zygote grants. */
    readonly cap: number,
  ) {
    super(message, 'limits', '');
  }
}

/** A spawn() was cancelled through its AbortSignal. */
export class AbortError extends ZygoteError {
  override name = 'AbortError';
}

/**
 * Why readOutputFile or mapOutputFile refused a step's output file; and, for an Arrow file
 * (readArrowOutput, validateArrowFile), what was wrong inside it.
 */
export type InvalidOutputReason =
  | 'not-found' | 'symlink' | 'not-regular' | 'hard-link' | 'too-large' | 'outside' | 'bad-name'
  // Arrow IPC files (steps/arrow-file.ts):
  | 'not-arrow' // no "ARROW1" magic at the start (an Arrow stream, or another format)
  | 'truncated' // empty, too short, or no magic at the end: cut short
  | 'bad-footer' // footer length, or a block in the footer, outside the file, misaligned, overlapping
  | 'bad-schema' // no schema, an unsupported or malformed type, nesting past maxDepth
  | 'too-many-columns' // more than maxColumns columns, or maxFields fields with nested ones
  | 'too-many-rows' // more than maxRows rows in all batches
  | 'too-many-batches' // more than maxBatches record (or dictionary) batches
  | 'too-many-values' // more than maxValues values in all arrays, nested and dictionaries included
  | 'bad-batch' // a record batch that does not match its schema or lies about its buffers
  | 'bad-dictionary' // an index outside its dictionary, an unknown id, a replacement, a bad dictionary batch
  | 'corrupt'; // anything else the decoder could not make sense of

/**
 * A step's output file was refused; the message names the file and what was wrong with it:
 * "output file 'link.arrow' in /srv/out refused: it is a symbolic link, or a directory on its way is".
 */
export class InvalidOutputError extends ZygoteError {
  override name = 'InvalidOutputError';
  constructor(
    message: string,
    readonly reason: InvalidOutputReason,
    /** The name asked for, relative to the output directory. */
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
