// Node's Buffer() deprecation check, settled once in the zygote.
//
// For the first 10,000 calls of the deprecated `new Buffer()` in a process, Node walks the
// caller's stack (up to 100 frames) to decide whether DEP0005 is worth printing (not from
// node_modules). Thrift's JS library made such calls for every value it wrote and every varint
// it read: encoding a step request took 350-420 us, then 18 us (measured here). Our own
// messages no longer go through those calls (protocol/compact-writer.ts, compact-varint.ts),
// but a step's libraries may make them by the thousand, and each fork inherits the zygote's
// count, so every child would pay the walks again. Node stops checking once it has printed the
// warning: it is printed here, from the zygote's own code, with deprecation warnings muted for
// that one call. Children inherit "already printed"; a step calling Buffer() then gets no
// DEP0005, as in any process where something called it first.
export function settleBufferDeprecation(): void {
  const muted = process.noDeprecation;
  process.noDeprecation = true;
  try {
    // The one deprecated call, from outside node_modules: it settles the check.
    new Buffer(0);
  } finally {
    process.noDeprecation = muted;
  }
}
