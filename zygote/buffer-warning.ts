// Node's Buffer() deprecation check, settled once in the zygote.
//
// Thrift's JS library builds every value it writes with the deprecated `new Buffer()`. For the
// first 10,000 such calls in a process, Node walks the caller's stack (up to 100 frames) to
// decide whether DEP0005 is worth printing (not from node_modules, which is where thrift is),
// so a message costs 20 times what it costs after: encoding a step request took 350-420 us,
// then 18 us (measured here). Each fork inherits the zygote's count, so every child paid it on
// its first messages too. Node stops checking once it has printed the warning: it is printed
// here, from the zygote's own code, with deprecation warnings muted for that one call. Children
// inherit "already printed"; a step calling Buffer() then gets no DEP0005, as in any process
// where something called it first.
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
