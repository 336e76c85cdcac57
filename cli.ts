#!/usr/bin/env node
// The `zygote` command line (the package's bin): `zygote serve` becomes a zygote serving a Unix
// socket and `zygote doctor` says what this host can enforce (zygote/); `zygote run` runs one
// step (steps/). It imports zygote/ and steps/ only; nothing of the package imports it.
import { Command } from 'commander';
import { registerRun } from './steps/run-command.js';
import { registerDoctor } from './zygote/doctor/index.js';
import { registerServe } from './zygote/serve-command.js';

const program = new Command()
  .name('zygote')
  .description('A pre-fork zygote: a warm Node.js process that forks a child per step in milliseconds.')
  .showHelpAfterError('(run with --help for usage)');

registerServe(program);
registerDoctor(program);
registerRun(program);
await program.parseAsync();
