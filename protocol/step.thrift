/**
 * zygote step protocol: what the renderer asks of one step and what the step answers, over
 * the child's stdio (the request on its stdin, the result on its stdout).
 *
 * Framing (protocol/messages.ts): one frame per stream, a 4-byte big-endian length followed
 * by exactly that many bytes of one Thrift struct in the compact protocol; the writer then
 * ends the stream. The tables themselves never ride here: they are Arrow IPC files named by
 * path. Every decoded message is validated by protocol/step.ts before anything uses it.
 * Field ids are stable: add fields, never renumber or reuse them.
 */
namespace js zygote.step

/**
 * One parameter value: exactly one member is set. The union refers to itself through its
 * list and map members; the JS generator handles that (a union is a struct on the wire, and
 * a generated class may name itself in its own read()). Decoding recurses once per level, so
 * protocol/step.ts refuses anything nested deeper than 32 levels.
 */
union ParamValue {
  /** A UTF-8 string. */
  1: string text
  /** An integer within JS's safe range (|n| <= 2^53 - 1). */
  2: i64 integer
  /** Any other finite number (never NaN or ±Infinity). */
  3: double number
  4: bool flag
  /** A list of values, in order. */
  5: list<ParamValue> items
  /** String keys to values; key order is not kept. */
  6: map<string, ParamValue> entries
}

/** Renderer → step runner: run this step. */
struct StepRequest {
  /**
   * Absolute path of the step module inside the child. (Named modulePath, not module: the
   * Thrift compiler refuses "module", a reserved word in some of its target languages. The
   * name is not on the wire; protocol/step.ts calls it `module`.)
   */
  1: required string modulePath
  /** The step's parameters, passed to its default export as a plain object. */
  2: optional map<string, ParamValue> params
  /** The input table: an Arrow IPC file the child maps. Absent: the step gets no table. */
  3: optional string inputPath
  /** Where the child writes its output table, an Arrow IPC file. */
  4: required string outputPath
  /** Extra file names the step may read, relative to the input directory. */
  5: optional list<string> files
}

/** The step ran and wrote its output table. */
struct StepOk {
  /** Rows in the output table. */
  1: required i64 rows
  /** Columns in the output table. */
  2: required i32 columns
  /** Human-readable warnings from the step (at most 100). */
  3: optional list<string> warnings
  /** A small key/value summary for display (at most 100 entries); no JSON. */
  4: optional map<string, string> summary
}

/** The step failed: what went wrong, e.g. its exception's stack trace. */
struct StepFailure {
  /** At most 64 KiB of UTF-8. */
  1: required string message
}

/** Step runner → renderer, the last thing on the child's stdout: exactly one member is set. */
union StepResult {
  1: StepOk ok
  2: StepFailure error
}
