#!/usr/bin/env node
// npm pack's and npm publish's prepack: refuse to pack a package whose entry points were never
// built (run `npm run build`), and make the prebuilt addon where the native sources changed since
// the last one (scripts/build-prebuilt.mjs). Progress goes to stderr: `npm pack --json` answers on stdout.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prebuild } from './build-prebuilt.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const entries = [...Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e))), ...Object.values(pkg.bin)];
const missing = entries.filter((e) => !existsSync(join(ROOT, e)));
if (missing.length > 0) {
  console.error(`prepack: ${missing.join(', ')} missing: run \`npm run build\` before packing`);
  process.exit(1);
}
try {
  prebuild({ ifChanged: true });
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
