// The typed errors the client library throws. Each message says what failed and why; each class
// carries a stable `code` (Node's convention: match on err.code, never on the message), and a
// `cause` where there is one (the errno of a failed step, the connect error, the abort reason).
import type { ZygoteLimitKey } from '../protocol/limits.js';
import type { CapacityCap, RefusalReason } from '../protocol/admission.js';
export type { CapacityCap, RefusalReason } from '../protocol/admission.js';
export { InvalidOptionError, ProtocolError, type ProtocolErrorReason } from '../protocol/errors.js';

/** Base class of every error this package throws on purpose. */
export class ZygoteError extends Error {
  override name = 'ZygoteError';
  /** Stable, for programs: 'ERR_ZYGOTE_START', 'ERR_ZYGOTE_SPAWN', ... (README, Errors). */
  readonly code: string = 'ERR_ZYGOTE';
}

/** The zygote could not be started: bad options, a failed preload or main, a crash, a timeout; cause: the underlying error. */
export class ZygoteStartError extends ZygoteError {
  override name = 'ZygoteStartError';
  override readonly code: string = 'ERR_ZYGOTE_START';
}

/**
 * A served zygote refused this connection, and said why (instead of greeting): reason
 * 'not-allowed' (this uid is not in its --allow-uid), 'connections-per-uid' (this uid holds
 * --max-connections-per-uid already; limit is that cap), 'fds' (the zygote is short of file
 * descriptors: try again later). From connect(); after the greeting it closes the handle
 * (ZygoteClosedError, this as its cause).
 */
export class ZygoteRefusedError extends ZygoteStartError {
  override name = 'ZygoteRefusedError';
  override readonly code = 'ERR_ZYGOTE_REFUSED';
  constructor(
    message: string,
    readonly reason: RefusalReason,
    /** The cap, for 'connections-per-uid'; else null. */
    readonly limit: number | null,
  ) {
    super(message);
  }
}

/** The handle was closed, or the zygote died or hung up: nothing more can be done with it. */
export class ZygoteClosedError extends ZygoteError {
  override name = 'ZygoteClosedError';
  override readonly code: string = 'ERR_ZYGOTE_CLOSED';
}

/**
 * The zygote went away under an open handle: it died (a crash, SIGKILL, the OOM killer), was
 * stopped, or hung up. Every spawn and question in flight rejects with it, and the handle emits
 * 'gone' with it. exitCode and signal say how the zygote ended where this client can see it
 * (a zygote it started); null otherwise (a served zygote is another process's child).
 */
export class ZygoteGoneError extends ZygoteClosedError {
  override name = 'ZygoteGoneError';
  override readonly code = 'ERR_ZYGOTE_GONE';
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A system error as Node makes them: code the errno symbol, syscall the step that failed. */
function systemError(step: string, errno: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${step} failed: ${errno}`), { code: errno, syscall: step });
}

/** A spawn() failed before any of the child's own code ran. */
export class SpawnError extends ZygoteError {
  override name = 'SpawnError';
  override readonly code: string = 'ERR_ZYGOTE_SPAWN';
  constructor(
    message: string,
    /** The setup step that failed ("fork", "pipe", "uv_loop_fork", ...). */
    readonly step: string,
    /** The errno symbol ("EAGAIN"), or '' when the failure had none; also cause.code. */
    readonly errno: string,
    options?: { cause?: unknown },
  ) {
    super(message, { cause: options?.cause ?? (errno ? systemError(step, errno) : undefined) });
  }
}

/**
 * A sandbox step failed in the child, which then exited without running any of its code
 * (fail closed). The message reads "sandbox step setresuid failed: EPERM (Operation not permitted)".
 */
export class SandboxError extends SpawnError {
  override name = 'SandboxError';
  override readonly code = 'ERR_ZYGOTE_SANDBOX';
}

/**
 * The zygote's policy refused the spawn as asked (a network from a zygote that gives none, mounts
 * with the mount namespace skipped, a mount that would cover a loaded module, ...). Nothing was
 * forked; the message names what was refused.
 */
export class SpawnPolicyError extends SpawnError {
  override name = 'SpawnPolicyError';
  override readonly code = 'ERR_ZYGOTE_SPAWN_POLICY';
}

/**
 * The zygote refused a spawn whose limit is above its cap (`zygote serve --max-memory`...), or
 * that asked for no limit where there is a cap. Nothing was forked. step is "limits", code ''.
 */
export class LimitCapError extends SpawnError {
  override name = 'LimitCapError';
  override readonly code = 'ERR_ZYGOTE_LIMIT_CAP';
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

/**
 * The zygote had no room for the spawn, and forked nothing: cap 'children' (it has its most
 * live children and no queue), 'children-per-uid' (this client's uid has its most live and
 * queued children), 'queue-full' (all of the queue, or this uid's share of it, is waiting),
 * 'queue-timeout' (no slot came free while it waited). limit is the cap's value (children,
 * spawns, or milliseconds for 'queue-timeout'). step is "admission", errno ''. Retrying
 * later may succeed.
 */
export class ZygoteBusyError extends SpawnError {
  override name = 'ZygoteBusyError';
  override readonly code = 'ERR_ZYGOTE_BUSY';
  constructor(
    message: string,
    readonly cap: CapacityCap,
    readonly limit: number,
  ) {
    super(message, 'admission', '');
  }
}

/** A spawn() was cancelled through its AbortSignal; cause: the signal's reason. Node's own code for aborts. */
export class AbortError extends ZygoteError {
  override name = 'AbortError';
  override readonly code = 'ABORT_ERR';
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
  override readonly code = 'ERR_ZYGOTE_INVALID_OUTPUT';
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
