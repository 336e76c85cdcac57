// Binding a Unix socket where a crashed server may have left its own: the control socket
// (--socket) and the metrics socket (--metrics unix:PATH). The server runs as root and the path is
// the operator's, but a path is only ever a name: what is there is replaced only if it is, beyond
// doubt, a dead socket of this server's uid; anything else (a file given by a typo, a symlink,
// someone else's socket, a live server) is left alone and the start refused.
import { lstatSync, unlinkSync, type Stats } from 'node:fs';
import { native } from '../native/index.js';
import type { Log } from './log.js';

/**
 * listen() binds path; if it fails with EADDRINUSE, what is there is examined and, if stale,
 * removed and bound again. `what` names the socket in errors (`--socket /run/z.sock`).
 */
export function listenReplacingStale(path: string, what: string, listen: () => number, log: Log): number {
  try {
    return listen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) return listen(); // gone meanwhile
    if (!st.isSocket()) throw new Error(`${what} exists and is not a socket (it is a ${fileKind(st)}): refusing to replace it; remove it or choose another path`);
    if (st.uid !== process.getuid!()) throw new Error(`${what} is a socket owned by uid ${st.uid}, not by this server's uid ${process.getuid!()}: refusing to replace it`);
    if (!nobodyListens(path)) throw new Error(`${what}: another process is already listening on ${path}`);
    // Still the socket just examined: it is what goes.
    if (lstatSync(path).ino !== st.ino) throw new Error(`${what} changed while it was examined: refusing to replace it`);
    log.info('stale-socket', `removing stale socket ${path} (nothing is listening on it)`);
    unlinkSync(path);
    return listen();
  }
}

/**
 * A connect is refused: nothing listens. (The probe is a seqpacket connect: a live seqpacket
 * server accepts it, a live stream server answers EPROTOTYPE; both mean someone is there.)
 */
function nobodyListens(path: string): boolean {
  try {
    native.close(native.connectUnix(path));
  } catch (probe) {
    return (probe as NodeJS.ErrnoException).code === 'ECONNREFUSED';
  }
  return false;
}

function fileKind(st: Stats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'FIFO';
  return 'device';
}
