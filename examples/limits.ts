// Limits: what the renderer gets back when a step goes over them. A step that hoards memory
// under memoryBytes is killed by the kernel in its own cgroup ('oom'); one that spins past
// wallTimeMs is killed by the zygote at the deadline ('timeout'); the zygote and the next step
// carry on. Exits 1 if any outcome is not the one expected.
//   npm run build && node dist/examples/limits.js
import { fileURLToPath } from 'node:url';
import { tableFromArrays } from 'apache-arrow';
import { runStep, startZygote, stepRunner, type Limits } from 'zygote';

const step = (name: string) => fileURLToPath(new URL(`../../examples/steps/${name}.mjs`, import.meta.url));
const MiB = 1 << 20;

const z = await startZygote({ main: stepRunner, preload: ['apache-arrow'] });
try {
  const cases: { module: string; label: string; limits: Limits; expect: string }[] = [
    { module: 'memory-hog', label: 'memoryBytes 64 MiB', limits: { memoryBytes: 64 * MiB, wallTimeMs: 30_000 }, expect: 'oom' },
    { module: 'spin', label: 'wallTimeMs 1 s', limits: { wallTimeMs: 1_000 }, expect: 'timeout' },
  ];
  const input = tableFromArrays({ n: Int32Array.from([1, 2, 3]) });
  for (const c of cases) {
    const out = await runStep(z, { module: step(c.module), input, limits: c.limits });
    const got = out.ok ? 'ok' : out.error.kind;
    const st = out.exit;
    console.log(`${c.module}, ${c.label}: ${got}${st ? ` after ${st.wallMs.toFixed(0)} ms` : ''}`);
    if (!out.ok) console.log(`  ${out.error.message.split('\n')[0]}`);
    if (got !== c.expect) {
      console.log(`  expected ${c.expect}`);
      process.exitCode = 1;
    }
  }
  // The zygote is unharmed: the next step runs as usual.
  const after = await runStep(z, { module: step('passthrough'), input });
  console.log(`passthrough after them: ${after.ok ? `ok, ${after.result.rows} rows` : after.error.kind}`);
  if (!after.ok) process.exitCode = 1;
} finally {
  await z.close();
}
