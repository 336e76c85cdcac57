#!/usr/bin/env node
// The `zygote` command line (the package's bin): `zygote serve` becomes a zygote serving a Unix
// socket and `zygote doctor` says what this host can enforce (zygote/); `zygote run` runs one
// step (steps/); `zygote health` asks a served zygote whether it can serve (client/). It imports
// zygote/, steps/ and client/ only; nothing of the package imports it.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerHealth } from './client/health-command.js';
import { registerRun } from './steps/run-command.js';
import { registerDoctor } from './zygote/doctor/index.js';
import { registerServe } from './zygote/serve-command.js';

const program = new Command()
  .name('zygote')
  .description('A pre-fork zygote: a warm Node.js process that forks a child per step in milliseconds.')
  .version((JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version, '-V, --version', 'print the version (from package.json)')
  .showHelpAfterError('(run with --help for usage)');

registerServe(program);
registerDoctor(program);
registerRun(program);
registerHealth(program);
await program.parseAsync();
