/**
 * zygote control protocol: the messages between a client (the renderer) and the zygote
 * server on its Unix SOCK_SEQPACKET socket.
 *
 * Framing (protocol/framing.ts): each packet is one frame, a 4-byte big-endian length
 * followed by exactly that many bytes of one Thrift struct in the compact protocol.
 * File descriptors travel as SCM_RIGHTS on the packet of the message that names them.
 * Field ids are stable: add fields, never renumber or reuse them.
 */
namespace js zygote.protocol

const i32 PROTOCOL_VERSION = 2

/**
 * A host path shown to one child (see zygote/sandbox/root.ts). Its source travels as an fd: the
 * SpawnRequest's packet carries one O_PATH fd per mount, in order, opened by the client itself;
 * the zygote never resolves the path.
 */
struct Mount {
  /** Absolute host path, as the client named it: for messages only. */
  1: required string source
  /** Absolute path inside the child. */
  2: required string target
  /** Writable by the child; read-only if absent or false. */
  3: optional bool writable
}

/**
 * A network for one child (zygote/sandbox/network.ts): its own veth pair and address, NAT
 * through the host, and the zygote's nftables rules. Honoured only by a zygote started with
 * sandbox.network; any other refuses the spawn.
 */
struct NetworkRequest {
  /**
   * Destinations only this child may reach despite the zygote's forbidden ranges:
   * "IP:PORT" or "CIDR:PORT" (IPv4), "[IPv6]:PORT".
   */
  1: optional list<string> allow
}

/**
 * A filesystem of the child's own for what it writes (zygote/sandbox/output.ts): a fresh tmpfs
 * of Limits.outputBytes and outputFiles, owned by the client, shown to the child at target
 * (idmapped to it) and to the client as an fd that rides on Spawned.
 */
struct OutputRequest {
  /** Absolute path inside the child. */
  1: required string target
}

/**
 * What one spawn asks of the sandbox on top of the zygote's defaults. The skip and inject
 * fields are for tests: a zygote refuses them unless it was started to allow them.
 */
struct SandboxRequest {
  /** RLIMIT_NOFILE for this child. */
  1: optional i64 nofile
  /** RLIMIT_FSIZE for this child, in bytes. */
  2: optional i64 fsize
  /** Layers to leave out (names as in protocol/sandbox.ts, SANDBOX_LAYERS). */
  3: optional list<string> skip
  /** Make this native setup step fail with injectErrno (an errno name). */
  4: optional string injectStep
  5: optional string injectErrno
  /** Host paths only this child sees. */
  6: optional list<Mount> mounts
  /** A network of its own; absent: loopback only. */
  7: optional NetworkRequest network
  /** An output filesystem of its own; absent: none. */
  8: optional OutputRequest output
}

/**
 * Resource limits of one child, enforced by the zygote (output limits are the client's). An
 * absent field gets the zygote's default; 0 in fields 1-4 asks for no limit, which a zygote
 * with a cap on that field refuses (SpawnFailed.aboveCap). Defaults: protocol/limits.ts.
 */
struct Limits {
  /** Wall-clock time from fork; past it the child is killed and reported as "timeout". */
  1: optional i64 wallTimeMs
  /** CPU time (RLIMIT_CPU, whole seconds, rounded up); past it: "cpu-limit". */
  2: optional i64 cpuTimeMs
  /** Memory of the child's own cgroup (no swap); the kernel's OOM killer ends it: "oom". */
  3: optional i64 memoryBytes
  /** Tasks (processes and threads) in the child's cgroup; hitting it: "pids-limit". */
  4: optional i32 pids
  /** Size of the child's private /tmp (a tmpfs); writing past it gives ENOSPC. */
  5: optional i64 tmpBytes
  /** Size of the child's output filesystem (a tmpfs); writing past it gives ENOSPC. */
  6: optional i64 outputBytes
  /** Inodes (files, directories, links) the child may make in its output filesystem. */
  7: optional i64 outputFiles
}

/** Client → zygote: fork a child and run the zygote's main with these arguments. */
struct SpawnRequest {
  /** Chosen by the client, unique per connection; echoed in every reply about this child. */
  1: required i32 id
  /** The arguments for main's default export: a JSON array. */
  2: required string argsJson
  /** A label for logs and the child's process title. */
  3: optional string name
  4: optional SandboxRequest sandbox
  5: optional Limits limits
}

/** Client → zygote: send a signal to a child this connection spawned. */
struct KillRequest {
  1: required i32 id
  2: required i32 signal
}

/** Client → zygote: how busy is the zygote? Answered with Stats carrying the same id. */
struct StatsRequest {
  1: required i32 id
}

/** Client → zygote: is the zygote able to serve? Answered with Health carrying the same id. */
struct HealthRequest {
  1: required i32 id
}

union ClientMessage {
  1: SpawnRequest spawn
  2: KillRequest kill
  3: StatsRequest stats
  4: HealthRequest health
}

/** Zygote → client, first frame on every connection: the zygote is warm and serving. */
struct Hello {
  1: required i32 protocolVersion
  2: required i32 zygotePid
  3: required string nodeVersion
}

/** Zygote → client, if the zygote could not start (bad main, failed preload). */
struct StartupFailed {
  1: required string message
}

/**
 * The child is running. Four fds ride on this frame, in order: the write end of its
 * stdin, the read ends of its stdout and stderr, and a pidfd for it; a fifth, the output
 * filesystem's mount (an O_PATH fd of its root), when the spawn asked for one.
 */
struct Spawned {
  1: required i32 id
  /** The child's pid in the zygote's pid namespace. */
  2: required i32 pid
  /** The limits the zygote granted it, defaults filled in. */
  3: optional GrantedLimits limits
}

/** What the zygote granted one child; 0 in fields 1-4: no limit. */
struct GrantedLimits {
  1: required i64 wallTimeMs
  2: required i64 cpuTimeMs
  3: required i64 memoryBytes
  4: required i32 pids
  5: required i64 tmpBytes
  /** RLIMIT_FSIZE. */
  6: required i64 fileBytes
  /** RLIMIT_NOFILE. */
  7: required i32 nofile
  8: required i64 outputBytes
  9: required i64 outputFiles
}

/** A limit a spawn asked for above the zygote's cap (zygote serve --max-*, --tmp-bytes, --fsize, --nofile). */
struct LimitAboveCap {
  /** wallTimeMs, cpuTimeMs, memoryBytes, pids, tmpBytes, fileBytes, nofile, outputBytes or outputFiles. */
  1: required string field
  /** What was asked; absent: no limit. */
  2: optional i64 requested
  3: required i64 cap
}

/**
 * The zygote had no room for a spawn (zygote serve --max-children, --max-children-per-uid,
 * --max-queue, --queue-timeout): nothing was forked.
 */
struct Capacity {
  /** The cap: "children", "children-per-uid", "queue-full" or "queue-timeout". */
  1: required string cap
  /** Its value: a number of children or spawns, or the queue timeout in milliseconds. */
  2: required i64 limit
}

/** The fork or the child's setup failed; no untrusted code ran. */
struct SpawnFailed {
  1: required i32 id
  /** The setup step that failed, e.g. "fork", "pipe", or a sandbox step like "setresuid". */
  2: required string step
  /** The errno's symbolic name, e.g. "EAGAIN"; empty when the failure had none. */
  3: required string errnoName
  4: required string message
  /** True when the step was one of the child's own sandbox steps (fail closed: no JS ran). */
  5: optional bool sandbox
  /** Set when the spawn asked for a limit above a cap (step "limits"). */
  6: optional LimitAboveCap aboveCap
  /** Set when the zygote had no room for the spawn (step "admission"). */
  7: optional Capacity capacity
}

/**
 * The zygote is full: the spawn waits in its queue for a child to be reaped, for at most
 * timeoutMs, after which it gets Spawned or SpawnFailed (capacity "queue-timeout").
 */
struct Queued {
  1: required i32 id
  2: required i64 timeoutMs
}

/**
 * Zygote -> client, instead of Hello: this connection is refused, and closed after this frame.
 * reason: "not-allowed" (the peer's uid is not in --allow-uid), "connections-per-uid" (it holds
 * --max-connections-per-uid already), "fds" (the zygote is short of file descriptors).
 */
struct Refused {
  1: required string reason
  2: required string message
  /** The cap, for "connections-per-uid". */
  3: optional i64 limit
}

/** A child of this connection was reaped. */
struct Exited {
  1: required i32 id
  2: required i32 pid
  /** Set when the child exited normally. */
  3: optional i32 code
  /** Set when a signal ended the child: its number. */
  4: optional i32 signal
  /** Fork to reap, measured by the zygote. */
  5: required double wallMs
  /** User plus system CPU time, from wait4's rusage; from its cgroup when it has one. */
  6: required double cpuMs
  /** The step process's peak resident set size (its init's wait4 rusage, else the zygote's). */
  7: required double maxRssBytes
  /** Set when a limit ended the child: "timeout", "cpu-limit", "oom" or "pids-limit"; or "shutdown": the zygote stopped, and its drain ended before the child did. */
  8: optional string limit
  /**
   * Set when the child had a cgroup: the peak memory charged to it (memory.peak on v2,
   * memory.max_usage_in_bytes on v1), which counts its tmpfs files and page cache too.
   */
  9: optional double memoryPeakBytes
}

/** The zygote refused a frame from this client; it closes the connection after sending this. */
struct Fault {
  1: required string message
}

/** Zygote → client: the answer to a StatsRequest; counts since the zygote started. */
struct Stats {
  1: required i32 id
  /** Children running (forked or claimed, not yet reaped), of every client. */
  2: required i32 busy
  /** Spawns waiting in the queue for room. */
  3: required i32 queued
  /** Pool children forked and waiting for a claim (0 without a pool). */
  4: required i32 poolIdle
  /** The pool's size (0 without a pool). */
  5: required i32 poolSize
  /** Spawns served by a pool child. */
  6: required i64 claimed
  /** Spawns that forked fresh. */
  7: required i64 forked
  /** Pool children that died or were retired before a claim. */
  8: required i64 retired
}

/**
 * Zygote → client: the answer to a HealthRequest. healthy: every check passed; problems: one
 * line per failed check (cannot fork, a cgroup root missing, nftables rules gone, stopping).
 */
struct Health {
  1: required i32 id
  2: required bool healthy
  3: required list<string> problems
  /** The checks that ran, passed or not (fork, cgroups, nftables, serving). */
  4: required list<string> checks
}

union ServerMessage {
  1: Hello hello
  2: StartupFailed startupFailed
  3: Spawned spawned
  4: SpawnFailed spawnFailed
  5: Exited exited
  6: Fault fault
  7: Refused refused
  8: Queued queued
  9: Stats stats
  10: Health health
}
