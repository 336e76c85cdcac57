// protocol/: the leaf layer. The wire (the control protocol's and the step protocol's Thrift
// messages, framing, messages over a child's stdio) and every type and check that client/ and
// zygote/ share: sandbox layers and defaults, a spawn's request and limits, the zygote's
// configuration. Imports nothing of ours. The package's entries re-export from this file; the
// layers' own code imports the modules themselves.
export * from './errors.js';
export * from './framing.js';
export * from './messages.js';
export * from './control.js';
export * from './step.js';
export * from './signals.js';
export * from './net-addr.js';
export * from './sandbox.js';
export * from './options.js';
export * from './limits.js';
export * from './pool.js';
export * from './admission.js';
export * from './spawn.js';
export * from './config.js';
