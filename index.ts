// The package's root entry (`import ... from 'zygote'`): the client library and the steps layer.
// It imports client/ and steps/ only; nothing of the package imports it.
export * from './client/index.js';
export * from './steps/index.js';
