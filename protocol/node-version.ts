// The Node.js releases zygote runs on, checked where a client, a zygote or the CLI starts. The
// seccomp allow-list (zygote/sandbox/seccomp-policy.ts) and the recipe for forking a warm Node
// process (README, How it works) were measured on Node 20; 20.19 is the first 20.x that loads
// thrift's ESM-only `uuid` dependency from CommonJS. package.json "engines" and the README
// (Requirements) say the same.

/** The oldest Node.js release supported, and the one major line. */
export const SUPPORTED_NODE = { major: 20, minMinor: 19 } as const;

/** Why this Node.js (default: the running one) cannot run zygote, or null when it can. */
export function unsupportedNode(version: string = process.versions.node): string | null {
  const m = /^(\d+)\.(\d+)\.\d+/.exec(version);
  if (m && Number(m[1]) === SUPPORTED_NODE.major && Number(m[2]) >= SUPPORTED_NODE.minMinor) return null;
  return (
    `zygote needs Node.js ${SUPPORTED_NODE.major}.${SUPPORTED_NODE.minMinor} or a newer ${SUPPORTED_NODE.major}.x, and this is Node.js ${version}: ` +
    `its seccomp allow-list and its way of forking a warm Node process are made for Node ${SUPPORTED_NODE.major} (README, Requirements)`
  );
}
