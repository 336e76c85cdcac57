// node: the Node.js release this host runs zygote on. Its seccomp allow-list and its fork recipe
// are made for Node 20 (protocol/node-version.ts); startZygote, connect and a zygote refuse any other.
import { SUPPORTED_NODE, unsupportedNode } from '../../protocol/node-version.js';
import type { Finding } from './types.js';

export function probeNode(version: string = process.versions.node): Finding {
  const data = { version };
  const why = unsupportedNode(version);
  if (why === null) return { layer: 'node', status: 'ok', detail: `Node.js ${version}`, data };
  const want = `${SUPPORTED_NODE.major}.${SUPPORTED_NODE.minMinor}`;
  return { layer: 'node', status: 'missing', detail: why, fix: `run zygote on Node.js ${SUPPORTED_NODE.major} LTS, ${want} or newer`, data };
}
