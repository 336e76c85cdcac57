// Signal numbers to names, with the canonical name where Linux has two for one number.
import { constants as osConstants } from 'node:os';

// os.constants.signals lists aliases too (SIGIOT = SIGABRT = 6, SIGPOLL = SIGIO = 29); a
// plain reverse map would keep whichever came last. Node's child_process reports these.
const CANONICAL: Partial<Record<number, NodeJS.Signals>> = { 6: 'SIGABRT', 29: 'SIGIO' };

const NAMES = new Map<number, NodeJS.Signals>();
for (const [name, n] of Object.entries(osConstants.signals)) {
  if (!NAMES.has(n)) NAMES.set(n, name as NodeJS.Signals);
}
for (const [n, name] of Object.entries(CANONICAL)) NAMES.set(Number(n), name!);

/** The name of signal n ("SIGKILL"), or "SIG<n>" for a number Node does not name. */
export function signalName(n: number): NodeJS.Signals {
  return NAMES.get(n) ?? (`SIG${n}` as NodeJS.Signals);
}
