// A pool child's claim, both ends: the zygote sends the spawn's stdio, mount fds and sandbox
// over the child's claim socketpair; the child applies them (native claimChild) and becomes
// the spawn's child. The sandbox travels as JSON with every fd replaced by its index in the
// packet's fds (SCM_RIGHTS renumbers them).
import { native, POLLIN, type NativeSandboxSpec } from '../native/index.js';
import type { ChildTask } from './children.js';
import type { PoolChild } from './pool.js';

/** Setup steps a claim runs (native/fork.cc, ClaimChild): the rest ran before the claim. */
export const CLAIM_STEPS: readonly string[] = [
  'dup2(stdio)',
  'root',
  'setrlimit(RLIMIT_NOFILE)',
  'setrlimit(RLIMIT_FSIZE)',
  'setgroups',
  'setresgid',
  'setresuid',
  'user namespace',
  'capset',
  'prctl(PR_SET_DUMPABLE)',
  'prctl(PR_SET_NO_NEW_PRIVS)',
  'landlock',
  'seccomp',
];

/** A learner's claim (zygote/prefault.ts): sent to a pool child taken out of the pool. */
export function sendRehearsal(pc: PoolChild): boolean {
  return native.sendPacket(pc.claimFd, Buffer.from(JSON.stringify({ rehearse: true })), []);
}

/** The most a claim packet may hold (a sandbox spec with up to 32 mounts is far smaller). */
const MAX_CLAIM_BYTES = 256 * 1024;

interface ClaimMessage {
  /** A learner's claim: rehearse, nothing else (zygote/prefault.ts). */
  rehearse?: true;
  id: number;
  name: string;
  argsJson: string;
  /** The child's process name (comm). */
  comm: string;
  sandbox: NativeSandboxSpec;
}

/**
 * Sends the claim: makes the spawn's stdio pipes, passes the child's ends with the mount fds,
 * and returns the zygote's ends. Throws (nothing sent, every pipe closed) if the packet cannot
 * go; the caller then retires the child and forks fresh.
 */
export function sendClaim(pc: PoolChild, req: { id: number; name: string; argsJson: string; comm: string }, sandbox: NativeSandboxSpec): [number, number, number] {
  const made: number[] = [];
  try {
    const pipes = [native.pipe(), native.pipe(), native.pipe()];
    made.push(...pipes.flat());
    const childEnds = [pipes[0][0], pipes[1][1], pipes[2][1]];
    const fds = [...childEnds];
    const index = (fd: number): number => {
      const at = fds.indexOf(fd);
      if (at >= 0) return at;
      fds.push(fd);
      return fds.length - 1;
    };
    const root = sandbox.root!;
    const mapBind = <B extends { fd?: number }>(b: B): B => (b.fd === undefined ? b : { ...b, fd: index(b.fd) });
    const sent: NativeSandboxSpec = {
      ...sandbox,
      cgroupProcs: [],
      root: {
        ...root,
        binds: root.binds.map(mapBind),
        templateBinds: root.templateBinds?.map(mapBind),
        // The template the child entered before its claim: any number >= 0 says "from the template".
        templateFd: 0,
        ...(root.idmapFd !== undefined ? { idmapFd: index(root.idmapFd) } : {}),
        ...(root.clientMountNsFd !== undefined ? { clientMountNsFd: index(root.clientMountNsFd) } : {}),
      },
    };
    const message: ClaimMessage = { ...req, sandbox: sent };
    const data = Buffer.from(JSON.stringify(message));
    if (data.length > MAX_CLAIM_BYTES) throw new Error(`the claim is ${data.length} bytes, more than ${MAX_CLAIM_BYTES}`);
    if (!native.sendPacket(pc.claimFd, data, fds)) throw new Error('the pool child is not taking its claim (socket full)');
    for (const fd of childEnds) native.close(fd);
    return [pipes[0][1], pipes[1][0], pipes[2][0]];
  } catch (err) {
    for (const fd of made) native.close(fd);
    throw err;
  }
}

/**
 * In a pool child: waits for its claim (up to maxWaitMs; the zygote retires idle children
 * before that), applies it and returns the task to run. A child that gets no claim, or a
 * malformed one, exits without running anything. A learner's task keeps poolPid, its pid as
 * forked, for the set-up it runs before its rehearsal.
 */
export function awaitClaim(claimFd: number, maxWaitMs: number, poolPid: number): ChildTask {
  native.setNonBlocking(claimFd, false);
  const revents = new Int16Array(1);
  const ready = native.poll(Int32Array.of(claimFd), Int16Array.of(POLLIN), revents, maxWaitMs);
  if (ready <= 0) native.exitNow(0);
  const packet = native.recvPacket(claimFd, MAX_CLAIM_BYTES);
  if (packet === null || packet === 'eof' || packet.truncated || packet.fdsTruncated) native.exitNow(0);
  const msg = JSON.parse(packet.data.toString()) as ClaimMessage;
  const fds = packet.fds;
  if (msg.rehearse === true) {
    // No spawn: nothing is applied, and the child never runs one (it is killed once learned from).
    for (const fd of fds) native.close(fd);
    return { pid: poolPid, id: -1, name: '', argsJson: '[]', newRoot: true, claimFd, rehearse: true };
  }
  const fd = (i: number): number => {
    if (!Number.isInteger(i) || i < 0 || i >= fds.length) throw new Error(`claim: fd index ${i} out of range`);
    return fds[i];
  };
  const root = msg.sandbox.root!;
  const mapBind = <B extends { fd?: number }>(b: B): B => (b.fd === undefined ? b : { ...b, fd: fd(b.fd) });
  const sandbox: NativeSandboxSpec = {
    ...msg.sandbox,
    root: {
      ...root,
      binds: root.binds.map(mapBind),
      templateBinds: root.templateBinds?.map(mapBind),
      ...(root.idmapFd !== undefined ? { idmapFd: fd(root.idmapFd) } : {}),
      ...(root.clientMountNsFd !== undefined ? { clientMountNsFd: fd(root.clientMountNsFd) } : {}),
    },
  };
  const { pid } = native.claimChild({ stdin: fd(0), stdout: fd(1), stderr: fd(2), name: msg.comm, sandbox });
  return { pid, id: msg.id, name: msg.name, argsJson: msg.argsJson, newRoot: true };
}
