// The zygote's serve loop: poll(2) over its sockets, its children's pidfds and setup
// reports, and its signal pipe; fork on request. Runs on the main thread with the Node event
// loop parked, so nothing in JS is mid-flight when it forks (shared/notes/fork-safety.md).
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { type ServerMessage, type ZygoteHealth, type ZygoteStats, decodeClientMessage, encodeServerMessage, MAX_CONTROL_FRAME_BYTES, PROTOCOL_VERSION, type ClientMessage, type WireMount, type WireSandboxRequest } from '../protocol/control.js';
import type { CapacityCap, RefusalReason } from '../protocol/admission.js';
import { signalName } from '../protocol/signals.js';
import { native, type NativeSandboxSpec, type ReapResult, type StepExit, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT } from '../native/index.js';
import { closeHandover, forkChild, forkPoolChild, processName, reapChild, type ChildRecord, type ChildTask } from './children.js';
import { closePoolChild, WarmPool, type PoolChild } from './pool.js';
import { CLAIM_STEPS, sendClaim, sendRehearsal } from './claim.js';
import { decodeLearnerAnswer, LEARN_TIMEOUT_MS, LEARNER_POLL_MS, MAX_LEARNER_ANSWER_BYTES, PrefaultLearner } from './prefault.js';
import type { ZygoteConfig } from '../protocol/config.js';
import { SANDBOX_LAYERS, type SandboxLayer } from '../protocol/sandbox.js';
import type { SandboxRequest } from '../protocol/spawn.js';
import { Connection } from './connection.js';
import { resolveNetwork, resolveSandbox } from './sandbox/policy.js';
import { AboveCapError, grantLimits } from './sandbox/limits.js';
import type { GrantedLimits } from '../protocol/limits.js';
import { HostNetwork, sweepDeadZygoteTables, type ChildNetwork } from './sandbox/network.js';
import { findNft } from './sandbox/nft.js';
import { initSeccompRules, SECCOMP_DEFAULT_ERRNO, seccompRules } from './sandbox/seccomp-policy.js';
import { planRoot, TEMPLATE_MOUNT_POINTS, type RootPlan } from './sandbox/root.js';
import { loadedModuleFiles } from './sandbox/loaded-modules.js';
import { UidPool } from './sandbox/uids.js';
import { Cgroups, type CgroupFigures, type ChildCgroup } from './sandbox/cgroups.js';
import { Idmaps } from './sandbox/idmaps.js';
import { makeOutput, outputOwnership, type OutputOwnership } from './sandbox/output.js';
import type { FdMount } from './sandbox/root.js';
import type { Log } from './log.js';
import { PACKAGE_VERSION, ZygoteMetrics, type SpawnOutcome } from './metrics.js';
import { formatMetricsAddress } from '../protocol/operations.js';
import { MetricsServer } from './metrics-server.js';
import { Acceptor, BACKOFF_MS, FDS_PER_CHILD } from './accept.js';
import { Admission } from './admission.js';
import { RefusalLog } from './refusal-log.js';
import { HeapTrim } from './heap-trim.js';
import { listenReplacingStale } from './stale-socket.js';


type SpawnMessage = Extract<ClientMessage, { kind: 'spawn' }>;

/** dangerouslyInjectFailure.step that makes the serve loop throw while handling the spawn (allowUnsandboxed zygotes only). */
const SERVE_LOOP_FAULT = 'serve-loop';

/** Mount fds all queued spawns together may hold (each spawn carries at most 32). */
const MAX_QUEUED_FDS = 256;

/** How long a health answer is reused (zygote health, probes every few seconds). */
const HEALTH_CACHE_MS = 1_000;

type Watch =
  | { kind: 'signals' }
  | { kind: 'listen' }
  | { kind: 'connection'; conn: Connection }
  | { kind: 'report'; child: ChildRecord }
  | { kind: 'status'; child: ChildRecord }
  | { kind: 'pidfd'; child: ChildRecord }
  | { kind: 'pool'; child: PoolChild }
  | { kind: 'learner' }
  | { kind: 'metrics'; fd: number };

export class Server {
  private readonly connections = new Map<number, Connection>();
  /** Every child not yet reaped, by pid. */
  private readonly children = new Map<number, ChildRecord>();
  private listenFd = -1;
  /** The inode of the socket this zygote bound: it removes that at shutdown and nothing else. */
  private socketIno = -1;
  private readonly signalFd: number;
  /**
   * Set by the first SIGTERM or SIGINT: running children may finish until killAt (the drain),
   * then are killed (reason 'shutdown'); the zygote exits once all are reaped, or at deadline.
   */
  private shuttingDown: { reason: string; killAt: number; killed: boolean; deadline: number } | null = null;
  /**
   * Made once here rather than in every child: the compiled seccomp filters (native ids) of
   * the step and of its pid namespace's init, and the binds of every child's root.
   */
  private readonly compiled: { seccompId: number; initSeccompId: number; root: RootPlan; rootTemplateFd: number; landlockAbi: number };
  private readonly uidPool: UidPool | null;
  private readonly cgroups = new Cgroups(`zygote-${process.pid}`);
  private readonly idmaps = new Idmaps();
  /** Networked children's host side (sandbox.network), or null: this zygote gives no network. */
  private readonly network: HostNetwork | null;
  /** Children forked ahead of spawns (config.pool), or null. */
  private readonly pool: WarmPool | null;
  /** Pool children killed (retired, or at shutdown) and not yet reaped. */
  private readonly retiring = new Map<number, PoolChild>();
  /** A pool child taken out of the pool to rehearse (zygote/prefault.ts), until it is retired. */
  private readonly learners = new Map<number, PoolChild>();
  /** /dev/null, a pool child's stdio until its claim. */
  private readonly devNull: number;
  private poolForkFailures = 0;
  /** Spawns that forked fresh (not from the pool), for stats(). */
  private forkedCount = 0;
  /** When the pool may be refilled again after failures (performance.now()). */
  private poolRetryAt = 0;
  /** Who gets the next child, and the spawns waiting for one (zygote/admission.ts). */
  private readonly admission: Admission<Connection, { msg: SpawnMessage; limits: GrantedLimits }>;
  /** Mount fds held by queued spawns. */
  private queuedFds = 0;
  /** The listening socket's accept policy (zygote/accept.ts); null for an embedded zygote. */
  private acceptor: Acceptor | null = null;
  /** Connections per peer uid. */
  private readonly connectionsOf = new Map<number, number>();
  private readonly refusals: RefusalLog;
  /** Set in a freshly forked child on its way out of the loop: nothing may catch its exceptions. */
  private forked = false;
  /** Whose output filesystems are (zygote/sandbox/output.ts): the client's where tmpfs takes an idmap. */
  private readonly outputOwnership: OutputOwnership;

  /** Which pages pool children copy before their claim, learned from a rehearsal (zygote/prefault.ts). */
  private readonly prefault: PrefaultLearner;
  /** The last health check's answer, reused for HEALTH_CACHE_MS. */
  private lastHealth: { at: number; answer: ZygoteHealth } | null = null;
  private readonly metrics = new ZygoteMetrics({ version: PACKAGE_VERSION, node: process.version });
  private readonly heapTrim = new HeapTrim();
  /** --metrics: scrapes answered from the serve loop; null without. */
  private metricsServer: MetricsServer | null = null;

  constructor(
    private readonly config: ZygoteConfig,
    private readonly log: Log,
    canRehearse = false,
  ) {
    this.prefault = new PrefaultLearner(canRehearse && config.pool !== null && config.pool !== undefined);
    this.compiled = {
      seccompId: native.compileSeccomp(seccompRules(), SECCOMP_DEFAULT_ERRNO).id,
      initSeccompId: native.compileSeccomp(initSeccompRules(), SECCOMP_DEFAULT_ERRNO).id,
      // Exactly what this process has loaded by now: main, the preloads and the zygote itself.
      root: planRoot({ mainUrl: config.main, preload: config.preload, readOnlyPaths: config.sandbox.readOnlyPaths, loaded: loadedModuleFiles() }),
      rootTemplateFd: -1,
      landlockAbi: landlockAbi(log),
    };
    this.compiled.rootTemplateFd = rootTemplate(this.compiled.root);
    // Before it says hello or listens: a client's first spawn finds the host clean.
    this.sweepDeadZygotes();
    this.pool = config.pool ? new WarmPool(config.pool) : null;
    this.devNull = this.pool ? openSync('/dev/null', 'r+') : -1;
    this.admission = new Admission(config.admission);
    this.refusals = new RefusalLog(log);
    this.outputOwnership = probeOutputOwnership(this.idmaps, { uid: config.sandbox.uid, gid: config.sandbox.gid }, log);
    // The probe's namespace helper is killed by now; reaped here, not left for an idle moment.
    this.idmaps.settle(1_000);
    const range = config.sandbox.uidRange;
    this.uidPool = range ? new UidPool(range.start, range.count) : null;
    this.signalFd = native.installSignalPipe([osConstants.signals.SIGTERM, osConstants.signals.SIGINT, osConstants.signals.SIGHUP]);
    // Before the control socket: once it says it listens, its metrics are there too.
    const metricsAt = config.operations?.metrics ?? null;
    if (metricsAt) {
      this.metricsServer = new MetricsServer(metricsAt, () => this.renderMetrics(), log);
      log.info('metrics', `serving metrics at ${formatMetricsAddress(metricsAt)}/metrics`);
    }
    const ctl = config.control;
    if (ctl.kind === 'fd') {
      this.addConnection(ctl.fd, { pid: process.ppid, uid: process.getuid!(), gid: process.getgid!() });
    } else {
      this.listenFd = listenReplacingStale(ctl.path, `--socket ${ctl.path}`, () => native.listenUnix(ctl.path, 128), log);
      this.socketIno = lstatSync(ctl.path).ino;
      // The fds kept from connections: every child's while it sets up, and the queue's mount fds.
      this.acceptor = new Acceptor(this.listenFd, config.admission.maxChildren * FDS_PER_CHILD + MAX_QUEUED_FDS, {
        refuseForFds: (fd) => this.refuseConnection(fd, null, 'fds', `the zygote is short of file descriptors`),
        failed: (code, message, limit) =>
          this.refusals.note({ key: `accept ${code}`, verb: 'failed', what: `accepts (${code})` }, code, `cannot accept a connection: ${message} (RLIMIT_NOFILE ${limit}); not accepting for ${BACKOFF_MS} ms`),
        shed: (threshold) => this.shedConnections(threshold),
      });
      // The socket is root's, 0600: the other allowed uids get an ACL entry each, so they can
      // connect and nobody else can; SO_PEERCRED still checks every connection (acceptAll).
      const others = ctl.allowUids.filter((u) => u !== process.getuid!());
      if (others.length > 0) {
        try {
          native.grantSocketAccess(ctl.path, others);
        } catch (err) {
          throw new Error(`cannot let uids ${others.join(', ')} connect to ${ctl.path} (a POSIX ACL on the socket): ${(err as Error).message}; put the socket on a filesystem with ACLs (tmpfs, ext4, xfs)`, { cause: err });
        }
      }
      log.info('listening', `listening on ${ctl.path} (mode 0600${others.length > 0 ? `, ACL rw for uids ${others.join(', ')}` : ''}) for uids ${ctl.allowUids.join(', ')}`);
    }
    // Last, so nothing after it can fail and leave the table behind.
    this.network = config.sandbox.network ? new HostNetwork(config.sandbox.network, process.pid, log) : null;
    this.network?.start();
  }

  /**
   * Removes what zygotes that died without cleaning up (SIGKILL) left: their cgroup trees, and
   * their nftables tables where this zygote gives networks or serves a socket (an embedded
   * zygote without a network skips the nft run it would cost each start). Logged, never fatal.
   */
  private sweepDeadZygotes(): void {
    try {
      const { removed, left } = this.cgroups.sweepDeadZygotes();
      for (const dir of removed) this.log.info('swept-cgroup', `removed cgroup ${dir}, left by a zygote that died`);
      for (const dir of left) this.log.error('sweep-failed', `cannot remove cgroup ${dir}, left by a zygote that died: a process of it is still alive`);
    } catch (err) {
      this.log.error('sweep-failed', `sweeping the cgroups of dead zygotes failed: ${(err as Error).message}`);
    }
    const nft = this.config.sandbox.network || this.config.control.kind === 'listen' ? findNft() : null;
    if (nft === null) return;
    try {
      for (const table of sweepDeadZygoteTables(nft)) this.log.info('swept-nft-table', `deleted nftables table inet ${table}, left by a zygote that died`);
    } catch (err) {
      this.log.error('sweep-failed', `sweeping the nftables tables of dead zygotes failed: ${(err as Error).message}`);
    }
  }

  /**
   * After the serve loop failed unexpectedly: the cleanup that needs no loop. Kills every
   * child and reaps them (bounded), removes this zygote's cgroups, nftables table and socket.
   * The caller exits.
   */
  abort(): void {
    for (const child of this.children.values()) killChild(child);
    for (const pc of this.poolChildren()) native.pidfdSendSignal(pc.pidfd, osConstants.signals.SIGKILL);
    const deadline = performance.now() + this.config.shutdownTimeoutMs;
    while (this.children.size > 0 && performance.now() < deadline) {
      const list = [...this.children.values()];
      native.poll(Int32Array.from(list.map((c) => c.pidfd)), Int16Array.from(list.map(() => POLLIN)), new Int16Array(list.length), Math.ceil(deadline - performance.now()));
      for (const c of list) {
        if (native.reap(c.pid) === null) continue;
        this.children.delete(c.pid);
        native.close(c.pidfd);
        if (c.cgroup) this.cgroups.finish(c.cgroup);
      }
    }
    for (const problem of this.cgroups.removeAll()) this.log.error('cgroup-left', `left a cgroup behind: ${problem}`);
    this.network?.close();
    this.metricsServer?.close();
    this.removeSocket();
  }

  /**
   * Serves until shutdown (then exits the process) or until this process is a freshly forked
   * child, in which case it returns that child's task.
   */
  run(): ChildTask {
    for (;;) {
      if (this.shuttingDown && !this.shuttingDown.killed && performance.now() >= this.shuttingDown.killAt) this.endDrain();
      if (this.shuttingDown && ((this.children.size === 0 && this.retiring.size === 0) || performance.now() > this.shuttingDown.deadline)) this.exit();
      const watches: Watch[] = [];
      const fds: number[] = [];
      const events: number[] = [];
      const watch = (fd: number, ev: number, w: Watch) => {
        fds.push(fd);
        events.push(ev);
        watches.push(w);
      };
      watch(this.signalFd, POLLIN, { kind: 'signals' });
      if (this.listenFd >= 0 && this.acceptor?.watching(performance.now())) watch(this.listenFd, POLLIN, { kind: 'listen' });
      for (const conn of this.connections.values()) watch(conn.fd, POLLIN | (conn.wantsWrite ? POLLOUT : 0), { kind: 'connection', conn });
      for (const child of this.children.values()) {
        if (child.reportFd >= 0) watch(child.reportFd, POLLIN, { kind: 'report', child });
        if (child.statusFd >= 0 && child.stepExit === null) watch(child.statusFd, POLLIN, { kind: 'status', child });
        watch(child.pidfd, POLLIN, { kind: 'pidfd', child });
      }
      for (const child of this.poolChildren()) watch(child.pidfd, POLLIN, { kind: 'pool', child });
      if (this.prefault.learner) watch(this.prefault.learner.claimFd, POLLIN, { kind: 'learner' });
      for (const m of this.metricsServer?.watches() ?? []) watch(m.fd, m.events, { kind: 'metrics', fd: m.fd });
      const revents = new Int16Array(fds.length);
      const ready = native.poll(Int32Array.from(fds), Int16Array.from(events), revents, this.pollTimeout());
      // Idle: now is the time for housekeeping that must not delay a spawn.
      if (ready === 0 && this.cgroups.removalPending) this.cgroups.sweep();
      if (ready === 0 && this.network?.removalPending) this.network.sweep();
      if (ready === 0 && this.idmaps.sweepPending) this.idmaps.sweep();
      if (ready === 0 && !this.anyInSetup()) this.trimHeap();
      this.expireDeadlines();
      this.expireQueue();
      if (this.prefault.learner && performance.now() - this.prefault.learner.since > LEARN_TIMEOUT_MS) this.endLearner(`no answer within ${LEARN_TIMEOUT_MS} ms`);
      this.refusals.flushDue();
      this.metricsServer?.expire(performance.now());
      for (let i = 0; i < watches.length; i++) {
        if (revents[i] === 0) continue;
        const task = this.isolated(watches[i], () => this.dispatch(watches[i], revents[i]));
        if (task) return task;
      }
      // Children reaped this round made room: the queue goes first, in its fair order.
      const task = this.admitWaiting();
      if (task) return task;
      // Refill the pool, one child a round, so a spawn that arrives meanwhile waits for one fork
      // at most (refillDue says when): in an idle round, or in a busy one once fewer than half
      // the pool is idle (under steady load idle rounds hardly come, and the pool would drain).
      if ((ready === 0 || this.poolLow()) && this.refillDue()) {
        const task = this.forkPoolChild();
        if (task) return task;
      } else if (ready === 0 && this.prefault.wantsLearner && !this.shuttingDown && !this.anyInSetup()) {
        this.startLearner();
      }
    }
  }

  /**
   * Runs one event's handling so that nothing it throws ends the serve loop: a connection's
   * failure drops that connection (and its children), a child's forgets that child (its fd
   * would wake the loop forever), the listening socket's backs off. In a freshly forked child
   * the exception is its own, and goes on up.
   */
  private isolated(w: Watch, fn: () => ChildTask | undefined): ChildTask | undefined {
    try {
      return fn();
    } catch (err) {
      if (this.forked) throw err;
      const what = err instanceof Error ? (err.stack ?? err.message) : String(err);
      switch (w.kind) {
        case 'connection':
          this.log.error('internal-error', `handling ${w.conn.label} failed, dropping it: ${what}`);
          this.dropConnection(w.conn, `internal error: ${err instanceof Error ? err.message : String(err)}`);
          return;
        case 'report':
        case 'status':
        case 'pidfd':
          this.log.error('internal-error', `handling child pid=${w.child.pid} failed, killing and forgetting it: ${what}`, { pid: w.child.pid });
          this.forgetChild(w.child);
          return;
        default:
          this.log.error('internal-error', `handling the ${w.kind} event failed: ${what}`);
      }
    }
  }

  /**
   * Last resort for a child whose events cannot be handled: killed, its fds closed, its slot
   * freed. Its uid of the range is not given back: the child may live on, and no other may share it.
   */
  private forgetChild(child: ChildRecord): void {
    try {
      killChild(child);
    } catch {
      // Gone already.
    }
    if (this.children.get(child.pid) === child) this.children.delete(child.pid);
    this.admission.reaped(child.pid);
    closeHandover(child);
    if (child.pidfd >= 0) native.close(child.pidfd);
    child.pidfd = -1;
  }

  private pollTimeout(): number {
    if (this.cgroups.removalPending || this.network?.removalPending) return 0;
    if (this.refillDue() && this.poolForkFailures < POOL_FORK_FAILURES_BEFORE_BACKOFF) return 0;
    let next = Infinity;
    const now = performance.now();
    // The end of an accept back-off, a queued spawn's deadline, a refusal count due in the log.
    for (const t of [this.acceptor?.wakeAt(now), this.admission.nextDeadline(), this.refusals.nextFlush(), this.metricsServer?.nextDeadline(), this.heapTrim.nextDeadline()]) if (t != null) next = Math.min(next, t);
    for (const c of this.children.values()) {
      if (c.state === 'setup') next = Math.min(next, c.forkedAt + this.config.setupTimeoutMs);
      if (c.deadline !== null && c.limitHit === null) next = Math.min(next, c.deadline);
    }
    if (this.shuttingDown) next = Math.min(next, this.shuttingDown.killed ? this.shuttingDown.deadline : this.shuttingDown.killAt);
    if (this.pool) next = Math.min(next, this.pool.nextExpiry());
    if (this.prefault.learner) next = Math.min(next, this.prefault.learner.since + LEARN_TIMEOUT_MS);
    // A pool child's readiness is read when one is taken: look again shortly while one is wanted.
    else if (this.prefault.wantsLearner && this.pool?.hasBlank && !this.shuttingDown) next = Math.min(next, now + LEARNER_POLL_MS);
    // The end of a refill back-off (a refill that is due without one returned 0 above).
    if (this.pool?.wantsChild && !this.shuttingDown && this.poolRetryAt > now) next = Math.min(next, this.poolRetryAt);
    // Killed idmap helpers die within a scheduling round or two: look again shortly.
    if (this.idmaps.sweepPending) next = Math.min(next, performance.now() + IDMAP_SWEEP_MS);
    return next === Infinity ? -1 : Math.max(0, Math.ceil(next - performance.now()));
  }

  private dispatch(w: Watch, rev: number): ChildTask | undefined {
    switch (w.kind) {
      case 'signals':
        for (const sig of native.readSignals()) {
          if (sig === osConstants.signals.SIGHUP) this.reopenLog();
          else this.shutdown(`received ${signalName(sig)}`);
        }
        return;
      case 'listen':
        this.acceptAll();
        return;
      case 'connection':
        if (w.conn.closed) return;
        if (rev & POLLOUT) this.guard(w.conn, () => w.conn.flush());
        if (rev & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) return this.readFrom(w.conn);
        return;
      case 'report':
        // A watch from this round may be stale: the child can be gone already.
        if (this.children.get(w.child.pid) === w.child && w.child.reportFd >= 0) this.onReport(w.child);
        return;
      case 'status':
        if (this.children.get(w.child.pid) === w.child && w.child.statusFd >= 0) this.onStepExit(w.child);
        return;
      case 'pidfd':
        if (this.children.get(w.child.pid) === w.child) this.onChildExit(w.child);
        return;
      case 'pool':
        this.onPoolChildExit(w.child);
        return;
      case 'learner':
        this.onLearner();
        return;
      case 'metrics':
        this.metricsServer!.onReady(w.fd, rev);
        return;
    }
  }

  private acceptAll(): void {
    const ctl = this.config.control;
    if (this.shuttingDown || !this.acceptor || ctl.kind !== 'listen') return;
    for (const fd of this.acceptor.connections()) {
      let peer;
      try {
        peer = native.peerCred(fd);
      } catch (err) {
        this.log.error('accept-failed', `could not read the peer credentials of a new connection: ${(err as Error).message}`);
        native.close(fd);
        continue;
      }
      if (!ctl.allowUids.includes(peer.uid)) {
        this.refuseConnection(fd, peer, 'not-allowed', `uid ${peer.uid} is not in --allow-uid`);
        continue;
      }
      // One uid cannot take all of the zygote's fds (and with them every other client's spawns).
      const max = this.config.admission.maxConnectionsPerUid;
      if ((this.connectionsOf.get(peer.uid) ?? 0) >= max) {
        this.refuseConnection(fd, peer, 'connections-per-uid', `uid ${peer.uid} has ${max} connections already, the most one uid may hold`, max);
        continue;
      }
      // A client in a mount namespace of its own (a sidecar container) passes fds of mounts of
      // that namespace: its children copy them from inside it.
      let mountNs = -1;
      try {
        mountNs = native.peerMountNamespace(fd);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        this.refusals.note(
          { key: `mount namespace uid ${peer.uid}`, verb: 'failed', what: `opens of the mount namespace of uid ${peer.uid}` },
          e.code ?? 'error',
          `error: could not open the mount namespace of uid ${peer.uid} pid ${peer.pid} (its mounts will be refused unless it shares ours): ${e.message}`,
        );
      }
      if (mountNs >= 0 && this.acceptor.inHeadroom(mountNs)) {
        native.close(mountNs);
        this.refuseConnection(fd, peer, 'fds', 'the zygote is short of file descriptors');
        continue;
      }
      this.addConnection(fd, peer, mountNs);
    }
  }

  /**
   * Tells a peer why it is refused (a Refused frame instead of Hello), then closes it. Logged
   * once per uid and interval, with a count of the rest (zygote/refusal-log.ts).
   */
  private refuseConnection(fd: number, peer: { pid: number; uid: number } | null, reason: RefusalReason, message: string, limit?: number): void {
    this.metrics.refusedConnection(reason);
    if (!peer) {
      try {
        peer = native.peerCred(fd);
      } catch {
        // Nameless: logged under "unknown".
      }
    }
    const who = peer ? `uid ${peer.uid}` : 'an unknown uid';
    this.refusals.note({ key: `connection ${who}`, verb: 'refused', what: `connections from ${who}` }, reason, `refused connection from ${who}${peer ? ` pid ${peer.pid}` : ''}: ${message} (${reason})`);
    try {
      native.sendPacket(fd, encodeServerMessage({ kind: 'refused', reason, message, ...(limit === undefined ? {} : { limit }) }), []);
    } catch {
      // The peer is gone already.
    }
    native.close(fd);
  }

  /** RLIMIT_NOFILE was lowered under the zygote: connections now in the fds kept for spawns go. */
  private shedConnections(threshold: number): void {
    for (const conn of [...this.connections.values()]) {
      if (conn.fd < threshold && conn.mountNs < threshold) continue;
      this.guard(conn, () => conn.send({ kind: 'refused', reason: 'fds', message: 'the zygote is short of file descriptors (its RLIMIT_NOFILE was lowered)' }));
      this.refusals.note({ key: `connection uid ${conn.peer.uid}`, verb: 'refused', what: `connections from uid ${conn.peer.uid}` }, 'fds', `dropped ${conn.label}: the zygote is short of file descriptors (its RLIMIT_NOFILE was lowered)`);
      this.dropConnection(conn, 'short of file descriptors');
    }
  }

  private addConnection(fd: number, peer: { pid: number; uid: number; gid: number }, mountNs = -1): void {
    const conn = new Connection(fd, peer, mountNs, (c, m) => this.observeSent(c, m));
    this.connections.set(fd, conn);
    this.connectionsOf.set(peer.uid, (this.connectionsOf.get(peer.uid) ?? 0) + 1);
    this.guard(conn, () => conn.send({ kind: 'hello', protocolVersion: PROTOCOL_VERSION, zygotePid: process.pid, nodeVersion: process.version }));
  }

  private readFrom(conn: Connection): ChildTask | undefined {
    // Bounded per wake-up so one busy client cannot starve the others.
    for (let n = 0; n < 64 && !conn.closed; n++) {
      const packet = native.recvPacket(conn.fd, MAX_CONTROL_FRAME_BYTES + 4);
      if (packet === null) return;
      if (packet === 'eof') {
        this.dropConnection(conn, 'disconnected');
        return;
      }
      // Only a spawn request carries fds: its mount sources, one per mount, opened by the client.
      let msg: ClientMessage;
      try {
        if (packet.truncated) throw new Error(`frame larger than ${MAX_CONTROL_FRAME_BYTES} bytes`);
        if (packet.fdsTruncated) throw new Error(`more fds on a client frame than one may carry (${packet.fds.length} kept)`);
        msg = decodeClientMessage(packet.data);
        if (msg.kind !== 'spawn' && packet.fds.length > 0) throw new Error(`unexpected ${packet.fds.length} fds on a client frame`);
        const mounts = msg.kind === 'spawn' ? (msg.sandbox.mounts?.length ?? 0) : 0;
        if (packet.fds.length !== mounts) throw new Error(`a spawn frame with ${mounts} mounts carries ${packet.fds.length} fds (one per mount)`);
      } catch (err) {
        closeClientFds(packet.fds);
        this.fault(conn, (err as Error).message);
        return;
      }
      let kept = false;
      try {
        const task = this.handle(conn, msg, packet.fds);
        // A freshly forked child: it closed its copies itself (native/fork.cc); the numbers may
        // be reused already. A queued spawn's fds are the queue's until it is served.
        kept = task !== undefined;
        if (task && task !== 'queued') return task;
      } finally {
        if (!kept) closeClientFds(packet.fds);
      }
    }
  }

  /**
   * fds: a spawn's mount sources, in the order of its mounts, closed by the caller unless the
   * spawn was queued (then the queue holds them).
   */
  private handle(conn: Connection, msg: ClientMessage, fds: readonly number[]): ChildTask | 'queued' | undefined {
    if (msg.kind === 'kill') {
      const pid = conn.children.get(msg.id);
      const child = pid === undefined ? undefined : this.children.get(pid);
      if (child && Number.isInteger(msg.signal) && msg.signal > 0 && msg.signal < 65) killChild(child, msg.signal);
      return;
    }
    if (msg.kind === 'stats') {
      this.guard(conn, () => conn.send({ kind: 'stats', id: msg.id, ...this.stats() }));
      return;
    }
    if (msg.kind === 'health') {
      this.guard(conn, () => conn.send({ kind: 'health', id: msg.id, ...this.health() }));
      return;
    }
    if (!conn.requestedAt.has(msg.id)) conn.requestedAt.set(msg.id, performance.now());
    if (this.shuttingDown) {
      this.guard(conn, () => conn.send({ kind: 'spawnFailed', id: msg.id, step: 'shutdown', errnoName: '', message: 'the zygote is shutting down', sandbox: false }));
      return;
    }
    if (conn.children.has(msg.id) || this.admission.isWaiting(conn, msg.id)) {
      this.fault(conn, `spawn id ${msg.id} is already in use on this connection`);
      return;
    }
    if (!isJsonArray(msg.argsJson)) {
      this.guard(conn, () =>
        conn.send({ kind: 'spawnFailed', id: msg.id, step: 'arguments', errnoName: '', message: 'argsJson is not a JSON array', sandbox: false }),
      );
      return;
    }
    // Tests only: a request whose handling throws, to show it ends its connection and nothing
    // else (test/zygote/serve-isolation.test.ts).
    if (this.config.allowUnsandboxed && msg.sandbox.injectStep === SERVE_LOOP_FAULT) throw new Error('a failure injected into the serve loop (tests only)');
    let limits: GrantedLimits;
    try {
      // The zygote's defaults fill in what the request leaves out; its caps bound the rest.
      limits = grantLimits(this.config, msg.limits, msg.sandbox);
    } catch (err) {
      if (!(err instanceof AboveCapError)) this.guard(conn, () => conn.send({ kind: 'spawnFailed', id: msg.id, step: 'limits', errnoName: '', message: (err as Error).message, sandbox: false }));
      else this.guard(conn, () => conn.send({ kind: 'spawnFailed', id: msg.id, step: 'limits', errnoName: '', message: err.message, sandbox: false, aboveCap: err.aboveCap }));
      return;
    }
    // Room for it: now, after a wait in the queue, or none (zygote/admission.ts).
    const verdict = this.admission.consider(conn.peer.uid);
    if (verdict.kind === 'queue' && this.queuedFds + fds.length > MAX_QUEUED_FDS) {
      this.refuseSpawn(conn, msg.id, 'queue-full', MAX_QUEUED_FDS, `the zygote is full and its queued spawns hold ${this.queuedFds} mount fds; ${fds.length} more would pass ${MAX_QUEUED_FDS}`);
      return;
    }
    if (verdict.kind === 'refuse') {
      this.refuseSpawn(conn, msg.id, verdict.cap, verdict.limit, verdict.message);
      return;
    }
    if (verdict.kind === 'queue') {
      this.admission.enqueue({ owner: conn, uid: conn.peer.uid, id: msg.id, request: { msg, limits }, fds: [...fds] }, performance.now());
      this.queuedFds += fds.length;
      this.guard(conn, () => conn.send({ kind: 'queued', id: msg.id, timeoutMs: this.config.admission.queueTimeoutMs }));
      if (this.config.verbose) this.log.info('queued', `spawn id=${msg.id} for ${conn.label} queued: ${this.admission.fullness(conn.peer.uid)} (${this.admission.queued} waiting)`, { id: msg.id, clientUid: conn.peer.uid, queued: this.admission.queued });
      return 'queued';
    }
    return this.spawnNow(conn, msg, fds, limits);
  }

  /** How busy this zygote is, for a client's stats(). */
  /**
   * zygote health: each check, and a line for each that failed. Bounded: a throwaway fork
   * (about 2 ms), two stats of cgroup directories, and with networks one nft run (a few ms).
   */
  private health(): ZygoteHealth {
    // At most one check a second, whoever asks: each forks, and questions cost a client nothing.
    const now = performance.now();
    if (this.lastHealth && now - this.lastHealth.at < HEALTH_CACHE_MS && !this.shuttingDown) return this.lastHealth.answer;
    const answer = this.checkHealth();
    this.lastHealth = { at: now, answer };
    this.log.debug('health', `health checked: ${answer.healthy ? 'healthy' : answer.problems.join('; ')}`, { reason: answer.healthy ? 'healthy' : answer.problems[0] });
    return answer;
  }

  private checkHealth(): ZygoteHealth {
    const checks = ['serving', 'fork', 'cgroups'];
    const problems: string[] = [];
    if (this.shuttingDown) problems.push(`shutting down (${this.shuttingDown.reason})`);
    const fork = native.probeFork();
    if (!fork.ok) problems.push(`cannot fork: ${fork.errno}`);
    const d = this.config.limits.defaults;
    problems.push(...this.cgroups.healthProblems({ memory: d.memoryBytes !== null, pids: d.pids !== null }));
    if (this.network) {
      checks.push('nftables');
      problems.push(...this.network.healthProblems());
    }
    if (this.pool) {
      checks.push('pool');
      if (this.poolForkFailures >= POOL_FORK_FAILURES_BEFORE_BACKOFF) problems.push(`the pool cannot refill: ${this.poolForkFailures} forks in a row failed`);
    }
    return { healthy: problems.length === 0, problems, checks };
  }

  /** The metrics a scrape gets: counters kept as things happen, gauges read now. */
  private renderMetrics(): string {
    const children = [...this.children.values()];
    let openFds = 0;
    try {
      openFds = readdirSync('/proc/self/fd').length - 1; // the directory's own fd
    } catch {
      // Unreadable /proc: reported as 0.
    }
    const rssPages = Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]);
    const heap = getHeapStatistics();
    return this.metrics.render(
      {
        children: children.length,
        queued: this.admission.queued,
        poolIdle: this.pool?.idle ?? 0,
        poolSize: this.pool?.options.size ?? 0,
        cgroups: children.filter((c) => c.cgroup !== null).length + this.cgroups.pendingRemovals,
        networks: children.filter((c) => c.network !== null).length,
        connections: this.connections.size,
      },
      { rssBytes: rssPages * 4096, openFds, heapUsedBytes: heap.used_heap_size, heapSizeBytes: heap.total_heap_size, externalBytes: heap.external_memory }, // x86_64 pages
    );
  }

  /** Counts what the clients are told: spawn latency and how each spawn ended. */
  private observeSent(conn: Connection, m: ServerMessage): void {
    if (m.kind === 'spawned') {
      const t0 = conn.requestedAt.get(m.id);
      conn.requestedAt.delete(m.id);
      if (t0 !== undefined) this.metrics.spawned((performance.now() - t0) / 1000, this.children.get(m.pid)?.fromPool === true);
    } else if (m.kind === 'spawnFailed') {
      conn.requestedAt.delete(m.id);
      this.metrics.outcome(m.sandbox ? 'sandbox-refused' : 'refused');
    } else if (m.kind === 'exited') {
      const outcome: SpawnOutcome = m.limit ?? (m.signal !== null ? 'signal' : 'exit');
      this.metrics.outcome(outcome);
    }
  }

  private stats(): ZygoteStats {
    const p = this.pool;
    return {
      // Children whose exit their client has not been told yet (an init still exiting after it
      // reported its step's end is not busy; it holds its admission slot until reaped).
      busy: [...this.children.values()].filter((c) => !c.exitSent).length,
      queued: this.admission.queued,
      poolIdle: p?.idle ?? 0,
      poolSize: p?.options.size ?? 0,
      claimed: p?.counts.claimed ?? 0,
      forked: this.forkedCount,
      retired: p?.counts.retired ?? 0,
    };
  }

  /** A spawn refused for lack of room: a typed reply naming the cap, and a log line (rate-limited per uid). */
  private refuseSpawn(conn: Connection, id: number, cap: CapacityCap, limit: number, message: string): void {
    this.guard(conn, () => conn.send({ kind: 'spawnFailed', id, step: 'admission', errnoName: '', message, sandbox: false, capacity: { cap, limit } }));
    const uid = conn.peer.uid;
    this.refusals.note({ key: `spawn uid ${uid}`, verb: 'refused', what: `spawns of uid ${uid}` }, cap, `refused spawn id=${id} of ${conn.label}: ${message} (${cap})`);
  }

  /** Serves the queue while there is room: each spawn forked, or refused for another reason. */
  private admitWaiting(): ChildTask | undefined {
    for (let w = this.admission.next(); w; w = this.admission.next()) {
      this.queuedFds -= w.fds.length;
      const conn = w.owner;
      if (conn.closed) {
        closeClientFds(w.fds);
        continue;
      }
      let forked = false;
      try {
        const task = this.isolated({ kind: 'connection', conn }, () => this.spawnNow(conn, w!.request.msg, w!.fds, w!.request.limits));
        forked = task !== undefined;
        if (task) return task;
      } finally {
        if (!forked) closeClientFds(w.fds);
      }
    }
  }

  /** Refuses the queued spawns that waited too long. */
  private expireQueue(): void {
    for (const w of this.admission.expired(performance.now())) {
      this.queuedFds -= w.fds.length;
      closeClientFds(w.fds);
      const ms = this.config.admission.queueTimeoutMs;
      this.refuseSpawn(w.owner, w.id, 'queue-timeout', ms, `no child slot came free within ${ms} ms: ${this.admission.fullness(w.uid)}`);
    }
  }

  /** Forks a spawn that was admitted; fds as for handle(). */
  private spawnNow(conn: Connection, msg: SpawnMessage, fds: readonly number[], limits: GrantedLimits): ChildTask | undefined {
    this.heapTrim.noteSpawn(performance.now());
    const refuse = (step: string, message: string, errnoName = '') =>
      this.guard(conn, () => conn.send({ kind: 'spawnFailed', id: msg.id, step, errnoName, message, sandbox: false }));
    const pooledUid = this.uidPool ? this.uidPool.take() : null;
    if (this.uidPool && pooledUid === null) {
      // Not reached while maxChildren is at most the range's count (protocol/config.ts checks).
      this.refuseSpawn(conn, msg.id, 'children', this.config.admission.maxChildren, `every uid of the sandbox's uid range is in use by a live child`);
      return;
    }
    const ids = pooledUid === null ? { uid: this.config.sandbox.uid, gid: this.config.sandbox.gid } : { uid: pooledUid, gid: pooledUid };
    let sandbox;
    let networkAllow;
    // Its output filesystem, when it asked for one: closed on every path below that forks no
    // child, else handed to the client with `spawned`.
    let output: FdMount | null = null;
    if (msg.sandbox.output) {
      try {
        output = makeOutput(msg.sandbox.output.target, limits, this.outputOwnership, { client: conn.peer, child: ids });
      } catch (err) {
        if (pooledUid !== null) this.uidPool!.release(pooledUid);
        refuse('output', (err as Error).message, (err as NodeJS.ErrnoException).code ?? '');
        return;
      }
    }
    try {
      const request = sandboxRequest(msg.sandbox, limits);
      networkAllow = resolveNetwork(this.config.sandbox, request, this.config.control.kind === 'fd');
      sandbox = resolveSandbox(this.config.sandbox, request, ids, this.compiled, this.config.allowUnsandboxed, {
        mounts: mountFds(msg.sandbox.mounts ?? [], fds),
        // The client's own ids, shown as the child's on its mounts: it gets its own rights there.
        idmapFd: () => this.idmaps.fd({ uid: conn.peer.uid, gid: conn.peer.gid }, ids),
        clientMountNs: conn.mountNs,
        output,
      });
      if (limits.cpuTimeMs !== null) sandbox.rlimits.cpu = Math.ceil(limits.cpuTimeMs / 1000);
    } catch (err) {
      if (pooledUid !== null) this.uidPool!.release(pooledUid);
      closeOutput(output);
      refuse('sandbox policy', (err as Error).message);
      return;
    }
    // A networked child's /30, names and own allow rules, in place before it exists.
    let network: ChildNetwork | null = null;
    if (networkAllow) {
      try {
        network = this.network!.attach(networkAllow);
      } catch (err) {
        if (pooledUid !== null) this.uidPool!.release(pooledUid);
        closeOutput(output);
        refuse('network', (err as Error).message, (err as NodeJS.ErrnoException).code ?? '');
        return;
      }
      sandbox.veth = network.veth;
    }
    // A child from the pool, when one is ready and the spawn asks nothing it lacks.
    const claimed = network === null ? this.claim(conn, msg, sandbox, limits, output) : null;
    if (claimed) {
      claimed.pooledUid = pooledUid;
      this.children.set(claimed.pid, claimed);
      conn.children.set(msg.id, claimed.pid);
      this.admission.started(claimed.pid, conn.peer.uid);
      if (this.config.verbose) this.log.info('spawn', `spawn id=${msg.id} pid=${claimed.pid} name=${JSON.stringify(msg.name)} for ${conn.label} (from the pool)`, { id: msg.id, pid: claimed.pid, name: msg.name, uid: this.childUid(claimed), clientUid: conn.peer.uid, pool: true });
      return;
    }
    let cgroup: ChildCgroup | null = null;
    if (limits.memoryBytes !== null || limits.pids !== null) {
      try {
        cgroup = this.cgroups.prepare({ memoryBytes: limits.memoryBytes ?? undefined, pids: limits.pids ?? undefined });
      } catch (err) {
        if (pooledUid !== null) this.uidPool!.release(pooledUid);
        if (network) this.network!.detach(network);
        closeOutput(output);
        refuse('cgroup', (err as Error).message, (err as NodeJS.ErrnoException).code ?? '');
        return;
      }
      sandbox.cgroupProcs = cgroup.procsFds;
    }
    const out = forkChild(msg, sandbox, conn.fd);
    if (out.role === 'child') {
      this.forked = true;
      return out.task;
    }
    // The child has joined (or failed to); the zygote's copies of cgroup.procs are done with.
    for (const fd of cgroup?.procsFds ?? []) closeSync(fd);
    if (cgroup && out.role === 'failed') this.cgroups.finish(cgroup);
    if (out.role === 'failed') {
      if (out.step === 'fork') this.metrics.forkFailed();
      if (pooledUid !== null) this.uidPool!.release(pooledUid);
      if (network) this.network!.detach(network);
      closeOutput(output);
      this.log.error('spawn-failed', `spawn ${msg.id} for ${conn.label} failed at ${out.step}: ${out.message}`, { id: msg.id, name: msg.name, clientUid: conn.peer.uid, reason: out.step });
      refuse(out.step, out.message, out.errnoName);
      return;
    }
    out.child.pooledUid = pooledUid;
    out.child.cgroup = cgroup;
    out.child.network = network;
    out.child.limits = limits;
    out.child.outputFd = output?.fd ?? -1;
    if (limits.wallTimeMs !== null) out.child.deadline = out.child.forkedAt + limits.wallTimeMs;
    if (sandbox.rlimits.cpu !== undefined) out.child.cpuLimitSec = sandbox.rlimits.cpu;
    this.children.set(out.child.pid, out.child);
    this.admission.started(out.child.pid, conn.peer.uid);
    this.forkedCount++;
    conn.children.set(msg.id, out.child.pid);
    if (this.config.verbose) this.log.info('spawn', `spawn id=${msg.id} pid=${out.child.pid} name=${JSON.stringify(msg.name)} for ${conn.label}`, { id: msg.id, pid: out.child.pid, name: msg.name, uid: this.childUid(out.child), clientUid: conn.peer.uid, pool: false });
  }

  /**
   * Hands the spawn to a ready pool child: writes its limits into the child's cgroup, then
   * sends the claim. Null when no pool child can take it (none ready, or the spawn needs what a
   * pool child lacks: a network, skipped layers, a root not from the template); a child whose
   * claim could not be applied in full is retired and the spawn forks fresh.
   */
  private claim(conn: Connection, msg: Extract<ClientMessage, { kind: 'spawn' }>, sandbox: NativeSandboxSpec, limits: GrantedLimits, output: FdMount | null): ChildRecord | null {
    // A spawn with neither a memory nor a pids limit takes a pool child too: its cgroup then
    // has no limits and only measures it (memoryPeakBytes), so limits cost a spawn nothing.
    if (!this.pool || !poolable(sandbox)) return null;
    const needs = { memoryBytes: limits.memoryBytes ?? undefined, pids: limits.pids ?? undefined };
    for (;;) {
      const pc = this.pool.take();
      if (!pc) return null;
      let stdio: [number, number, number];
      try {
        if (needs.memoryBytes !== undefined || needs.pids !== undefined) {
          if (!pc.cgroup) throw new Error('the pool child has no cgroup');
          this.cgroups.applyLimits(pc.cgroup, needs);
        }
        stdio = sendClaim(pc, { id: msg.id, name: msg.name, argsJson: msg.argsJson, comm: processName(msg) }, sandbox);
      } catch (err) {
        this.log.error('claim-failed', `a pool child could not take spawn ${msg.id} (${(err as Error).message}): retired`);
        this.retire(pc);
        continue;
      }
      native.close(pc.claimFd);
      const now = performance.now();
      return {
        fromPool: true,
        id: msg.id,
        pid: pc.pid,
        pidfd: pc.pidfd,
        name: msg.name,
        ownerFd: conn.fd,
        forkedAt: now,
        state: 'setup',
        reportFd: pc.reportFd,
        statusFd: -1,
        stepExit: null,
        exitSent: false,
        stdio,
        failed: false,
        pooledUid: null,
        deadline: limits.wallTimeMs !== null ? now + limits.wallTimeMs : null,
        cpuLimitSec: sandbox.rlimits.cpu ?? null,
        limitHit: null,
        cgroup: pc.cgroup,
        network: null,
        limits,
        stepPidfd: pc.stepPidfd,
        // The output filesystem's fd: handed to the client with `spawned` (the child got a copy).
        outputFd: output?.fd ?? -1,
      };
    }
  }

  /** Forks one pool child while the loop is idle. In the pool child, returns its task. */
  /** Gives back the heap a busy spell grew, once the zygote has been quiet a while (zygote/heap-trim.ts). */
  private trimHeap(): void {
    const t = this.heapTrim.trimIfDue(performance.now());
    if (!t) return;
    this.metrics.heapTrimmed();
    this.log.debug('heap-trimmed', `idle: heap ${(t.beforeBytes / 2 ** 20).toFixed(1)} -> ${(t.afterBytes / 2 ** 20).toFixed(1)} MiB in ${t.ms.toFixed(1)} ms`, { beforeBytes: t.beforeBytes, afterBytes: t.afterBytes, ms: Math.round(t.ms) });
  }

  private forkPoolChild(): ChildTask | undefined {
    if (performance.now() < this.poolRetryAt) return;
    let sandbox: NativeSandboxSpec;
    let cgroup: ChildCgroup | null;
    try {
      const request: SandboxRequest = { dangerouslySkip: [], rlimits: {}, tmpBytes: this.config.sandbox.tmpBytes };
      sandbox = resolveSandbox(this.config.sandbox, request, { uid: this.config.sandbox.uid, gid: this.config.sandbox.gid }, this.compiled, false, { mounts: [], idmapFd: () => -1, clientMountNs: -1 });
      cgroup = this.cgroups.preparePooled();
    } catch (err) {
      this.poolFailed(`cannot prepare a pool child: ${(err as Error).message}`);
      return;
    }
    if (cgroup) sandbox.cgroupProcs = cgroup.procsFds;
    const learned = this.prefault.forFork(this.pool!.hasBlank);
    const out = forkPoolChild(sandbox, this.devNull, learned);
    if (out.role === 'child') {
      this.forked = true;
      return out.task;
    }
    for (const fd of cgroup?.procsFds ?? []) closeSync(fd);
    if (cgroup) cgroup.procsFds = [];
    if (out.role === 'failed') {
      if (cgroup) this.cgroups.discard(cgroup);
      this.poolFailed(`forking a pool child failed at ${out.step}: ${out.message}`);
      return;
    }
    out.child.cgroup = cgroup;
    out.child.prefaultGeneration = learned.generation;
    this.pool!.add(out.child);
  }

  /** A pool child could not be made, or died before its claim: try again later, not at once. */
  private poolFailed(message: string): void {
    this.metrics.forkFailed();
    this.poolForkFailures++;
    if (this.poolForkFailures >= POOL_FORK_FAILURES_BEFORE_BACKOFF) this.poolRetryAt = performance.now() + POOL_RETRY_MS;
    this.log.error('fork-failed', `${message}${this.poolForkFailures >= POOL_FORK_FAILURES_BEFORE_BACKOFF ? `; the pool is refilled again in ${POOL_RETRY_MS} ms` : ''}`);
  }

  /** The uid a child runs as: its own from --uid-range, or the sandbox's. */
  private childUid(child: Pick<ChildRecord, 'pooledUid'>): number {
    return child.pooledUid ?? this.config.sandbox.uid;
  }

  /**
   * Whether to fork a pool child now. Once fewer than half the pool is idle, always. Otherwise
   * not while a child sets up (its report would wait for the fork) or steps run: a refill
   * blocks the loop for a fork and competes for the CPUs with those steps (measured: a refill
   * during a step added milliseconds to its spawn and first byte on 2 vCPUs), so a pool with
   * children to spare is refilled when the zygote is quiet.
   */
  private refillDue(): boolean {
    if (!this.pool?.wantsChild || this.shuttingDown) return false;
    // Low: refill whatever runs or sets up (a report then waits for one fork at most), or the
    // pool drains under a steady load and every spawn forks on its own path.
    if (this.poolLow()) return true;
    if (this.anyInSetup()) return false;
    for (const c of this.children.values()) if (!c.exitSent && !c.failed) return false;
    return true;
  }

  /** Fewer than half the pool is idle. */
  private poolLow(): boolean {
    return this.pool !== null && this.pool.idle * 2 < this.pool.options.size;
  }

  private anyInSetup(): boolean {
    for (const c of this.children.values()) if (c.state === 'setup' && !c.failed) return true;
    return false;
  }

  /** Every pool child the zygote must watch: idle, and retired but not yet reaped. */
  private *poolChildren(): Generator<PoolChild> {
    if (this.pool) yield* this.pool.all();
    yield* this.retiring.values();
    yield* this.learners.values();
  }

  /** Takes a ready pool child out of the pool and has it rehearse (zygote/prefault.ts). */
  private startLearner(): void {
    const pc = this.pool?.take(true);
    if (!pc) return;
    try {
      if (!sendRehearsal(pc)) throw new Error('its socket is full');
    } catch (err) {
      this.log.error('learner-failed', `cannot start a prefault learner (pid ${pc.pid}): ${(err as Error).message}`);
      this.retire(pc);
      return;
    }
    this.learners.set(pc.pid, pc);
    this.prefault.learner = { pid: pc.pid, claimFd: pc.claimFd, stepPidfd: pc.stepPidfd, since: performance.now() };
  }

  /** The learner answered or went away: learn from it, then kill it (it never serves a spawn). */
  private onLearner(): void {
    const l = this.prefault.learner;
    if (!l || !this.learners.has(l.pid)) return;
    let answer: { said: string; accessed: number[] } | null = null;
    try {
      const packet = native.recvPacket(l.claimFd, MAX_LEARNER_ANSWER_BYTES);
      if (packet === null) return;
      if (packet !== 'eof') {
        for (const fd of packet.fds) native.close(fd);
        answer = packet.truncated ? { said: 'a truncated answer', accessed: [] } : decodeLearnerAnswer(packet.data);
      }
    } catch {
      answer = null;
    }
    this.endLearner(answer?.said ?? null, answer?.accessed);
  }

  private endLearner(said: string | null, accessed: number[] = []): void {
    const l = this.prefault.learner!;
    let line: string;
    try {
      line = this.prefault.finish(said, accessed);
    } catch (err) {
      line = `learning from the prefault learner (pid ${l.pid}) failed: ${(err as Error).message}`;
    }
    if (line.startsWith('learned')) this.log.debug('prefault', line);
    else this.log.info('prefault', line);
    const pc = this.learners.get(l.pid);
    this.learners.delete(l.pid);
    if (pc) this.retire(pc);
    // Idle children that copied older ranges (or none) are replaced by ones that copy these.
    for (const old of [...(this.pool?.all() ?? [])]) if (old.prefaultGeneration < this.prefault.generation) this.retire(old);
  }

  /** Kills a pool child that will never be claimed; it is reaped when its pidfd says so. */
  private retire(pc: PoolChild): void {
    this.pool?.remove(pc.pid);
    this.retiring.set(pc.pid, pc);
    native.pidfdSendSignal(pc.pidfd, osConstants.signals.SIGKILL);
  }

  private onPoolChildExit(pc: PoolChild): void {
    if (native.reap(pc.pid) === null) return;
    // A learner that died before it answered: nothing learned from it.
    if (this.learners.delete(pc.pid) && this.prefault.learner?.pid === pc.pid) this.log.info('prefault', this.prefault.finish(null));
    const diedIdle = this.pool?.remove(pc.pid) !== undefined;
    this.retiring.delete(pc.pid);
    native.close(pc.pidfd);
    pc.pidfd = -1;
    closePoolChild(pc);
    if (pc.cgroup) this.cgroups.finish(pc.cgroup);
    if (diedIdle) this.poolFailed(`a pool child (pid ${pc.pid}) died before its claim`);
    else this.poolForkFailures = 0;
  }

  private onReport(child: ChildRecord): void {
    const report = native.readReport(child.reportFd);
    if (report === null) return;
    const owner = this.connections.get(child.ownerFd);
    if (report !== 'eof' && 'exit' in report) return; // read once the child is reaped
    if (report !== 'eof' && report.ok) {
      // A pid namespace's init writes the step's exit status here later: keep the pipe
      // (no longer watched) until the child is reaped.
      child.statusFd = child.reportFd;
      child.reportFd = -1;
      child.state = 'running';
      if (!owner) {
        closeHandover(child);
        killChild(child);
        return;
      }
      // A claimed pool child's client signals its step: its init passes nothing on.
      const signalFd = child.stepPidfd >= 0 ? child.stepPidfd : child.pidfd;
      const fds = [...child.stdio, signalFd, ...(child.outputFd >= 0 ? [child.outputFd] : [])];
      child.stdio = [-1, -1, -1]; // the connection closes them once sent
      child.outputFd = -1;
      this.guard(owner, () => owner.send({ kind: 'spawned', id: child.id, pid: child.pid, ...(child.limits ? { limits: child.limits } : {}) }, fds, new Set([signalFd])));
      return;
    }
    if (report === 'eof') {
      // Only the child's death closes the pipe without a report; its pidfd is about to say
      // so, with the exit status, and onChildExit reports the failure.
      native.close(child.reportFd);
      child.reportFd = -1;
      return;
    }
    this.failSetup(child, report.step, report.code, `sandbox step ${report.step} failed: ${report.code} (${report.message})`);
  }

  private failSetup(child: ChildRecord, step: string, errnoName: string, message: string): void {
    child.failed = true;
    closeHandover(child);
    killChild(child);
    this.log.error('child-failed', `child pid=${child.pid} id=${child.id}: ${message}`, { id: child.id, pid: child.pid, name: child.name });
    const owner = this.connections.get(child.ownerFd);
    if (owner) this.guard(owner, () => owner.send({ kind: 'spawnFailed', id: child.id, step, errnoName, message, sandbox: true }));
  }

  private expireDeadlines(): void {
    const now = performance.now();
    // An idle pool child is not kept for ever: a fresh one replaces it (when next idle).
    for (const pc of this.pool?.expired(now) ?? []) this.retire(pc);
    for (const c of this.children.values()) {
      if (c.deadline !== null && c.limitHit === null && now >= c.deadline && !c.failed) {
        // Wall-clock limit: the whole child dies (it cannot fork, so it is one process).
        c.limitHit = 'timeout';
        killChild(c);
        continue;
      }
      if (c.state === 'setup' && !c.failed && now - c.forkedAt > this.config.setupTimeoutMs) {
        this.failSetup(c, 'setup', 'ETIMEDOUT', `the child did not finish its setup within ${this.config.setupTimeoutMs} ms`);
      }
    }
  }

  /**
   * The init's exit record came (the step has exited). When the step was the last process of
   * its sandbox the client is told now: the init's own exit (the teardown of a zygote-sized
   * address space) and its reap are then off the client's path. Otherwise (something it left
   * still runs until the init's exit kills it) the reap tells, as before.
   */
  private onStepExit(child: ChildRecord): void {
    let r;
    try {
      r = native.readReport(child.statusFd);
    } catch {
      r = 'eof' as const;
    }
    if (r === null) return;
    if (r === 'eof' || !('exit' in r)) {
      // The init died without a record (killed with its step): its reap tells. Not watched again.
      native.close(child.statusFd);
      child.statusFd = -1;
      return;
    }
    child.stepExit = r.exit;
    if (!r.exit.alone || child.failed || child.limitHit !== null) return;
    const owner = this.connections.get(child.ownerFd);
    if (!owner) return;
    const cg = child.cgroup ? this.cgroups.figures(child.cgroup) : null;
    this.sendExit(owner, child, r.exit, r.exit, cg);
  }

  private onChildExit(child: ChildRecord): void {
    const st = reapChild(child);
    if (st === null) return;
    // The init of a pid namespace passes on how the step itself ended (native/init.cc).
    const stepExit = child.stepExit ?? readExitRecord(child);
    if (stepExit) {
      st.code = stepExit.code;
      st.signal = stepExit.signal;
    }
    this.children.delete(child.pid);
    native.close(child.pidfd);
    child.pidfd = -1;
    if (child.stepPidfd >= 0) native.close(child.stepPidfd);
    child.stepPidfd = -1;
    // Its slot (and uid) is free only now: admitWaiting() gives it to the queue this round.
    this.admission.reaped(child.pid);
    if (child.pooledUid !== null) this.uidPool!.release(child.pooledUid);
    // Every process of its network namespace is gone: its /30 is free once its allow rules go.
    if (child.network) this.network!.detach(child.network);
    if (child.state === 'setup' && !child.failed) {
      // Died before reporting; its report pipe shows EOF too, but the exit says more. A child
      // killed because its client left is no failure worth a log line.
      if (child.ownerFd >= 0) this.failSetup(child, 'setup', '', `the child died during setup (${describe(st.code, st.signal)})`);
      else child.failed = true;
    }
    closeHandover(child);
    const owner = this.connections.get(child.ownerFd);
    owner?.children.delete(child.id);
    // A child with a cgroup is measured by it: wait4 counts only what the init reaped, and an
    // init killed with its step (an OOM kill with memory.oom.group) never reaped it.
    const cg = child.cgroup ? this.cgroups.finish(child.cgroup) : null;
    if (owner && !child.failed && !child.exitSent) this.sendExit(owner, child, st, stepExit, cg);
  }

  /** Tells the client how its child ended, with the limit that ended it, if any. Once. */
  private sendExit(owner: Connection, child: ChildRecord, st: Pick<ReapResult, 'code' | 'signal' | 'userUs' | 'systemUs' | 'maxRssKb'>, stepExit: StepExit | null, cg: CgroupFigures | null): void {
    child.exitSent = true;
    const wallMs = performance.now() - child.forkedAt;
    const cpuMs = cg?.cpuUs != null ? cg.cpuUs / 1000 : (st.userUs + st.systemUs) / 1000;
    // The step's own peak RSS where its init reported it (wait4 of the init counts the init too).
    const maxRssBytes = (stepExit?.maxRssKb ?? st.maxRssKb) * 1024;
    const memoryPeakBytes = cg?.memoryPeakBytes ?? null;
    // A clean exit 0 is success even if the pids limit refused a thread along the way.
    const limit = child.limitHit ?? (st.code === 0 ? null : (cg?.hit ?? null)) ?? (cpuLimitReached(child, st.signal, cpuMs) ? 'cpu-limit' : null);
    const reason = limit ?? (st.signal !== null ? 'signal' : 'exit');
    if (this.config.verbose) {
      this.log.info('exit', `exit id=${child.id} pid=${child.pid} ${describe(st.code, st.signal)} wall=${wallMs.toFixed(1)}ms cpu=${cpuMs.toFixed(1)}ms${limit ? ` (${limit})` : ''}`, {
        id: child.id,
        pid: child.pid,
        name: child.name,
        uid: this.childUid(child),
        reason,
        code: st.code,
        signal: st.signal,
        wallMs: Math.round(wallMs * 10) / 10,
        cpuMs: Math.round(cpuMs * 10) / 10,
      });
    }
    this.guard(owner, () => owner.send({ kind: 'exited', id: child.id, pid: child.pid, code: st.code, signal: st.signal, wallMs, cpuMs, maxRssBytes, memoryPeakBytes, limit }));
  }

  /** Tells a client what was wrong with its frame, then drops it. The zygote carries on. */
  private fault(conn: Connection, message: string): void {
    this.log.error('bad-frame', `bad frame from ${conn.label}: ${message}`, { clientUid: conn.peer.uid });
    try {
      conn.send({ kind: 'fault', message });
    } catch {
      // The connection is being dropped anyway.
    }
    this.dropConnection(conn, `protocol fault: ${message}`);
  }

  /** Runs a send or flush; a dead or hopelessly slow client is dropped, not fatal. */
  private guard(conn: Connection, fn: () => boolean | void): void {
    try {
      if (fn() === false) this.dropConnection(conn, 'not reading its replies');
    } catch (err) {
      this.dropConnection(conn, (err as Error).message);
    }
  }

  /** Closes a connection and kills its children; they are reaped as they exit. */
  private dropConnection(conn: Connection, why: string): void {
    if (conn.closed) return;
    conn.close();
    this.connections.delete(conn.fd);
    const held = (this.connectionsOf.get(conn.peer.uid) ?? 1) - 1;
    if (held > 0) this.connectionsOf.set(conn.peer.uid, held);
    else this.connectionsOf.delete(conn.peer.uid);
    // Its waiting spawns go with it, and the fds they held.
    for (const w of this.admission.dropOwner(conn)) {
      this.queuedFds -= w.fds.length;
      closeClientFds(w.fds);
    }
    for (const pid of conn.children.values()) {
      const child = this.children.get(pid);
      if (!child) continue;
      child.ownerFd = -1;
      closeHandover(child);
      killChild(child);
    }
    if (this.config.verbose) this.log.info('disconnected', `${conn.label} closed (${why}); killed ${conn.children.size} children`, { clientUid: conn.peer.uid, reason: why, killed: conn.children.size });
    conn.children.clear();
    if (this.config.control.kind === 'fd') this.shutdown('its client disconnected');
  }

  /** Stops accepting, kills every child, and exits once they are reaped (bounded). */
  /**
   * Stops: no more connections or spawns (queued ones are refused), the pool is retired, and
   * running children get the drain (operations.drainMs) to finish before they are killed. A
   * second SIGTERM or SIGINT ends the drain at once.
   */
  private shutdown(reason: string): void {
    if (this.shuttingDown) {
      if (!this.shuttingDown.killed) {
        this.log.info('drain-cut', `drain cut short: ${reason}`, { reason });
        this.endDrain();
      }
      return;
    }
    const drainMs = this.children.size > 0 ? (this.config.operations?.drainMs ?? 0) : 0;
    const now = performance.now();
    this.shuttingDown = { reason, killAt: now + drainMs, killed: false, deadline: now + drainMs + this.config.shutdownTimeoutMs };
    this.log.info('stopping', `shutting down: ${reason}${drainMs > 0 ? `; ${this.children.size} running children may finish within ${drainMs} ms` : ''}`, { reason, running: this.children.size, drainMs });
    this.removeSocket();
    for (const pc of [...(this.pool?.all() ?? [])]) this.retire(pc);
    if (this.prefault.learner) this.endLearner('the zygote is shutting down');
    for (const w of this.admission.drain()) {
      this.queuedFds -= w.fds.length;
      closeClientFds(w.fds);
      this.guard(w.owner, () => w.owner.send({ kind: 'spawnFailed', id: w.id, step: 'shutdown', errnoName: '', message: 'the zygote is shutting down', sandbox: false }));
    }
    if (drainMs === 0) this.endDrain();
  }

  /** The drain is over: every child still alive is killed, and its client told 'shutdown'. */
  private endDrain(): void {
    const s = this.shuttingDown!;
    s.killed = true;
    s.deadline = Math.min(s.deadline, performance.now() + this.config.shutdownTimeoutMs);
    if (this.children.size > 0) this.log.info('drain-over', `killing ${this.children.size} children left at the end of the drain`, { killed: this.children.size });
    // Connections stay open until the children are reaped, so clients learn how each ended.
    for (const child of this.children.values()) {
      child.limitHit ??= 'shutdown';
      killChild(child);
    }
  }

  /** SIGHUP: the log file is reopened (after logrotate moved it); the server carries on. */
  private reopenLog(): void {
    try {
      this.log.reopen();
      this.log.info('log-reopened', 'log reopened (SIGHUP)');
    } catch (err) {
      this.log.error('log-reopen-failed', `SIGHUP: cannot reopen the log file: ${(err as Error).message}; still writing to the old one`);
    }
  }

  /** Stops listening and removes the socket this zygote bound (and nothing that replaced it). */
  private removeSocket(): void {
    const ctl = this.config.control;
    if (this.listenFd < 0 || ctl.kind !== 'listen') return;
    native.close(this.listenFd);
    this.listenFd = -1;
    try {
      if (lstatSync(ctl.path).ino === this.socketIno) unlinkSync(ctl.path);
    } catch {
      // Already gone: nothing to clean.
    }
  }

  private exit(): never {
    this.refusals.flushAll();
    this.acceptor?.close();
    this.metricsServer?.close();
    for (const problem of this.cgroups.removeAll()) this.log.error('cgroup-left', `left a cgroup behind: ${problem}`);
    this.network?.close();
    for (const conn of this.connections.values()) {
      try {
        conn.flush();
      } catch {
        // A client that is gone misses its last messages; nothing else to do.
      }
      conn.close();
    }
    const left = this.children.size;
    if (left > 0) this.log.error('reap-timeout', `${left} children not reaped within ${this.config.shutdownTimeoutMs} ms; exiting anyway`);
    this.log.info('stopped', 'exited');
    native.exitNow(left > 0 ? 1 : 0);
  }
}

/** Pool children that may fail in a row before the pool waits POOL_RETRY_MS to refill. */
const POOL_FORK_FAILURES_BEFORE_BACKOFF = 3;
const POOL_RETRY_MS = 1_000;

/** How soon the serve loop looks again for killed idmap helpers to reap. */
const IDMAP_SWEEP_MS = 2;

/**
 * A spawn's mounts with the fds the client opened their sources as. An fd must be O_PATH: it
 * proves only that the client could reach the path, and closing one never calls into the
 * filesystem (an open file of a hostile FUSE server could hold the serve loop in close()).
 */
function mountFds(mounts: readonly WireMount[], fds: readonly number[]): FdMount[] {
  return mounts.map((m, i) => {
    if (!native.isPathFd(fds[i])) throw new Error(`mounts[${i}] (${m.source}): its source fd was not opened with O_PATH`);
    return { source: m.source, target: m.target, writable: m.writable, fd: fds[i] };
  });
}

/** Closes a spawn's output filesystem that no child will use (the kernel frees it). */
function closeOutput(output: FdMount | null): void {
  if (output) native.close(output.fd);
}

/** Closes fds a client sent that the zygote does not keep. */
function closeClientFds(fds: readonly number[]): void {
  for (const fd of fds) native.close(fd);
}

/** RLIMIT_CPU ends a child with SIGXCPU, or SIGKILL a second later if it ignores that. */
function cpuLimitReached(child: ChildRecord, signal: number | null, cpuMs: number): boolean {
  if (child.cpuLimitSec === null || signal === null) return false;
  if (signal === osConstants.signals.SIGXCPU) return true;
  // The hard limit (soft + 1 s) sends SIGKILL to a child that ignored SIGXCPU. rusage samples
  // CPU time in ticks and can read several percent below what the kernel charged, hence the
  // slack; by then the child has used about soft + 1 seconds.
  return signal === osConstants.signals.SIGKILL && cpuMs >= child.cpuLimitSec * 1000 * 0.9;
}

/**
 * Signals a child through its pidfd; a child already reaped (pidfd closed) is left alone.
 * SIGKILL goes to its init (pid 1: the whole namespace dies with it); other signals to a
 * claimed pool child go to its step, which its init cannot pass them on to.
 */
function killChild(child: ChildRecord, signal: number = osConstants.signals.SIGKILL): void {
  const fd = signal !== osConstants.signals.SIGKILL && child.stepPidfd >= 0 ? child.stepPidfd : child.pidfd;
  if (fd >= 0) native.pidfdSendSignal(fd, signal);
}

/** Whether a pool child (full sandbox, root from the template, no network) can take this spawn. */
function poolable(sb: NativeSandboxSpec): boolean {
  return (
    sb.pidNamespace && sb.netNamespace && sb.veth === null && sb.ipcNamespace && sb.utsNamespace && sb.cgroupNamespace && sb.setsid && sb.closeFds &&
    sb.root !== null && (sb.root.templateFd ?? -1) >= 0 && sb.credentials !== null && sb.userNamespace &&
    // A test's injected failure, only where a claim runs that step (the rest ran before it).
    (sb.injectFailure === null || CLAIM_STEPS.includes(sb.injectFailure.step))
  );
}

/** The wire request as policy.ts checks it, with the granted rlimits and /tmp; an unknown layer name is refused. */
function sandboxRequest(w: WireSandboxRequest, limits: GrantedLimits): SandboxRequest {
  for (const layer of w.skip) {
    if (!(SANDBOX_LAYERS as readonly string[]).includes(layer)) throw new Error(`unknown sandbox layer ${JSON.stringify(layer)}`);
  }
  const req: SandboxRequest = { dangerouslySkip: w.skip as SandboxLayer[], rlimits: { nofile: limits.nofile, fsize: limits.fileBytes }, tmpBytes: limits.tmpBytes };
  if (w.injectStep !== undefined) req.dangerouslyInjectFailure = { step: w.injectStep, errno: w.injectErrno ?? 'EPERM' };
  if (w.network !== undefined) req.network = { allow: w.network.allow };
  return req;
}

function isJsonArray(text: string): boolean {
  try {
    return Array.isArray(JSON.parse(text));
  } catch {
    return false;
  }
}

function describe(code: number | null, signal: number | null): string {
  return signal !== null ? `signal=${signalName(signal)}` : `code=${code}`;
}

/** The step's exit status as its pid namespace's init recorded it, if it did. */
function readExitRecord(child: ChildRecord): StepExit | null {
  const fd = child.statusFd >= 0 ? child.statusFd : child.reportFd;
  if (fd < 0) return null;
  try {
    for (;;) {
      const r = native.readReport(fd);
      if (r === null || r === 'eof') return null;
      if ('exit' in r) return r.exit;
    }
  } catch {
    return null;
  }
}

/**
 * Whose output filesystems are on this kernel, tried once through an idmap namespace the
 * children use anyway (root to the sandbox's ids). A kernel whose tmpfs takes no idmapping
 * (before 6.3) is logged once: outputs are then the child's own.
 */
function probeOutputOwnership(idmaps: Idmaps, child: { uid: number; gid: number }, log: Log): OutputOwnership {
  let probe;
  try {
    probe = outputOwnership(idmaps.fd({ uid: process.getuid!(), gid: process.getgid!() }, child));
  } catch (err) {
    probe = { ownership: 'child' as const, errno: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
  if (probe.ownership === 'child') log.info('output-ownership', `this kernel's tmpfs takes no idmapped mounts (${probe.errno}; Linux 6.3+ does): a child's output filesystem is its own, and its client reads only what it leaves readable`);
  return probe.ownership;
}

/** The kernel's Landlock ABI, or 0 (logged once: children then run without that layer). */
function landlockAbi(log: Log): number {
  const probe = native.probeLandlockAbi();
  if (probe.abi !== null && probe.abi > 0) return probe.abi;
  log.info('landlock-missing', `Landlock is not available (${probe.errno ?? 'unknown'}): children run without that layer; see zygote doctor`);
  return 0;
}

/**
 * The children's root, built once (native/sandbox/root.cc) by a helper doing as real root what
 * every child would do. If it cannot (not root, no CAP_SYS_ADMIN, user namespaces refused), no
 * child could either: the zygote fails at start, saying which layer and where to look, rather
 * than starting and failing every spawn later with a raw unshare error.
 */
function rootTemplate(plan: RootPlan): number {
  try {
    return native.buildRootTemplate(plan, TEMPLATE_MOUNT_POINTS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const privileges =
      code === 'EPERM' || code === 'EACCES'
        ? `the sandbox's mount-namespace layer is not available here: a zygote needs root, or CAP_SYS_ADMIN with CAP_SETUID and CAP_SETGID; run \`zygote doctor\` to see what this host lacks`
        : 'run `zygote doctor` to check this host';
    throw new Error(`building the children's root failed (${(err as Error).message}): ${privileges}`, { cause: err });
  }
}
