// fork: turning the warm zygote into a child that is ready to run JS.
//
// The zygote's main thread calls forkChild() from its serve loop, between events, so no
// JS is half-way through anything. The sequence is the one that survived the stress runs
// recorded in shared/notes/fork-safety.md:
//   parent: snapshot fds, MADV_DOFORK every anonymous mapping, block signals, glibc fork()
//           (not raw clone3: glibc's fork handlers reset its cached tid and libuv's thread
//           pool), pidfd_open the child, unblock signals. For a pid namespace the zygote
//           unshares CLONE_NEWPID just before fork and setns()es back just after, so the
//           child is created in a new pid namespace by a real glibc fork (a pid namespace
//           cannot be entered later: fork-safety.md, failure 6).
//   child:  pid 1 of its namespace; it runs the setup list below, and at its end forks the
//           step (pid 2) and becomes the namespace's init (native/init.cc).
//   child:  the ordered setup list in RunChildSetup below, then back to JS, which fixes
//           per-process JS state (process.pid, Math.random) before any step code runs.
// The child reports the outcome of its setup over a pipe the zygote reads (never over its
// stdout, which untrusted code will own), and on any failure exits without running JS.
#include "fork.h"


#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <string>
#include <vector>

#include "childfds.h"
#include "errors.h"
#include "fdpass.h"
#include "forkable.h"
#include "init.h"
#include "prefault.h"
#include "pretouch.h"
#include "report.h"
#include "sandbox/creds.h"
#include "sandbox/landlock.h"
#include "sandbox/namespaces.h"
#include "sandbox/network.h"
#include "sandbox/rlimits.h"
#include "sandbox/root.h"
#include "sandbox/seccomp.h"
#include "sandbox/userns.h"
#include "signals.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>

namespace zygote {
namespace {

// The sandbox as the native code receives it: every layer on or off, and its settings. TS
// (zygote/sandbox/) decides all of it; nothing here has a default of its own.
struct SandboxSpec {
  bool setsid = false;
  bool close_fds = true;
  bool pid_ns = false;
  bool net_ns = false;
  sandbox::VethSpec veth;  // a networked child's link to the host (needs net_ns)
  bool ipc_ns = false;
  bool uts_ns = false;
  bool cgroup_ns = false;
  bool mnt_ns = false;  // with the root below
  sandbox::RootSpec root;        // every bind: built whole when there is no template
  sandbox::RootSpec spawn_root;  // the spawn's own binds, on top of the template
  int root_template = -1;        // the zygote's template mount namespace, or -1
  bool user_ns = false;
  bool credentials = false;
  uid_t uid = 0;
  gid_t gid = 0;
  bool capabilities = false;
  bool no_new_privs = false;
  bool not_dumpable = false;
  struct Limit {
    bool set = false;
    rlim_t value = 0;
  } core, nofile, fsize, cpu;
  int seccomp = -1;  // id of a compiled filter, or -1 for none
  int init_seccomp = -1;  // the pid namespace init's own filter
  int landlock_abi = 0;   // 0: no Landlock layer
  int cgroup_procs[2] = {-1, -1};  // cgroup.procs files to write ourselves into
  char inject_step[48] = {0};
  int inject_errno = 0;
};

struct ForkSpec {
  int stdio[3];      // the child's ends, put on 0, 1, 2
  int report_fd;     // write end of the setup-report pipe
  // A pool child (claim_fd >= 0): set up as far as no spawn is needed, then it waits on
  // claim_fd, its end of a socketpair with the zygote, for the spawn that claims it.
  int claim_fd;
  char name[16];     // comm name (TASK_COMM_LEN)
  int zygote_pidfd;  // the zygote, for the PDEATHSIG race check (getppid() is 0 in a pid ns)
  int death_signal;  // sent to the child when the zygote dies
  SandboxSpec sandbox;
  // A pool child's pages to copy, then to read, before it says it is ready (zygote/prefault.ts).
  std::vector<PageRange> prefault;
  std::vector<PageRange> pretouch;
};

// Child side. The setup list: each step runs in this order, reports the first failure with
// its name and errno, and ends the child before any of its JS runs (fail closed). A test
// may ask (through a configuration only tests can set) for a named step to fail.
class ChildSetup {
 public:
  ChildSetup(const ForkSpec& spec) : spec_(spec) {}

  void Step(const char* name, int err) {
    if (spec_.sandbox.inject_step[0] != '\0' && strcmp(spec_.sandbox.inject_step, name) == 0) err = spec_.sandbox.inject_errno;
    if (err == 0) return;
    WriteReport(spec_.report_fd, false, name, err);
    _exit(kSetupFailedExitCode);
  }

 private:
  const ForkSpec& spec_;
};

int Errno(int rc) { return rc < 0 ? errno : 0; }

int DieWithZygote(const ForkSpec& spec) {
  if (prctl(PR_SET_PDEATHSIG, spec.death_signal) < 0) return errno;
  // If the zygote died before the prctl, nobody will send the signal: its pidfd tells.
  struct pollfd p = {spec.zygote_pidfd, POLLIN, 0};
  if (poll(&p, 1, 0) < 0) return errno;
  return p.revents == 0 ? 0 : ESRCH;
}

// The capability steps that need CAP_SETPCAP, run as real root and again as root of the
// child's own user namespace (entering one grants a full set there, and resets securebits).
void DropCapabilityBounds(ChildSetup& s) {
  s.Step("securebits", sandbox::LockSecurebits());
  s.Step("drop bounding set", sandbox::DropBoundingSet());
  s.Step("clear ambient capabilities", sandbox::ClearAmbientCaps());
}

// Pid 1 of the namespace forks the step and stays behind as its init. Every signal stays
// blocked over the fork so the init misses no SIGCHLD; the step unblocks them again.
void SplitInit(ChildSetup& s, const ForkSpec& spec) {
  sigset_t all, old;
  sigfillset(&all);
  s.Step("fork(step)", 0);  // before the fork, so an injected failure stops both
  sigprocmask(SIG_SETMASK, &all, &old);
  pid_t step = fork();
  if (step < 0) s.Step("fork(step)", errno);
  if (step == 0) {
    s.Step("sigprocmask(step)", Errno(sigprocmask(SIG_SETMASK, &old, nullptr)));
    return;
  }
  RunInit(step, spec.report_fd, spec.sandbox.init_seccomp >= 0 ? sandbox::SeccompProgram(spec.sandbox.init_seccomp) : nullptr);
}

int PutStdio(const ForkSpec& spec) {
  for (int i = 0; i < 3; i++) {
    if (dup2(spec.stdio[i], i) < 0) return errno;
  }
  return 0;
}

int UnblockSignals() {
  sigset_t none;
  sigemptyset(&none);
  return Errno(sigprocmask(SIG_SETMASK, &none, nullptr));
}

// Limits, then privileges: every step from here on is the same for a fresh fork and a
// claimed pool child.
void ApplyLimitsAndPrivileges(ChildSetup& s, const ForkSpec& spec) {
  const SandboxSpec& sb = spec.sandbox;
  // Limits. Never RLIMIT_AS: V8 reserves far more address space than it uses.
  if (sb.core.set) s.Step("setrlimit(RLIMIT_CORE)", sandbox::SetLimit(RLIMIT_CORE, sb.core.value));
  if (sb.nofile.set) s.Step("setrlimit(RLIMIT_NOFILE)", sandbox::SetLimit(RLIMIT_NOFILE, sb.nofile.value));
  if (sb.fsize.set) s.Step("setrlimit(RLIMIT_FSIZE)", sandbox::SetLimit(RLIMIT_FSIZE, sb.fsize.value));
  // CPU seconds: SIGXCPU at the soft limit, SIGKILL a second later if it is ignored.
  if (sb.cpu.set) s.Step("setrlimit(RLIMIT_CPU)", sandbox::SetLimits(RLIMIT_CPU, sb.cpu.value, sb.cpu.value + 1));

  // Privileges (sandbox/creds.cc): what needs CAP_SETPCAP first, then the ids, then the sets.
  if (sb.capabilities) DropCapabilityBounds(s);
  if (sb.credentials) {
    s.Step("setgroups", sandbox::DropGroups());
    s.Step("setresgid", sandbox::SetGids(sb.gid));
    s.Step("setresuid", sandbox::SetUids(sb.uid));
    // A uid change clears the parent-death signal (commit_creds): set it again.
    s.Step("prctl(PR_SET_PDEATHSIG) after setresuid", DieWithZygote(spec));
  }
  // Root of a user namespace of its own, mapped to the unprivileged uid it already runs as
  // (sandbox/userns.cc); the fresh capability set that comes with it is dropped next.
  if (sb.user_ns) {
    const char* step = "user namespace";
    int err = sandbox::EnterUserNamespace(sb.uid, sb.gid, &step);
    s.Step(err ? step : "user namespace", err);
    if (sb.capabilities) DropCapabilityBounds(s);
    s.Step("prctl(PR_SET_PDEATHSIG) after CLONE_NEWUSER", DieWithZygote(spec));
  }
  if (sb.capabilities) s.Step("capset", sandbox::ClearCapabilities());
  if (sb.credentials && sb.capabilities) {
    s.Step("verify no privilege is left", sb.user_ns ? sandbox::VerifyNoPrivilege(0, 0) : sandbox::VerifyNoPrivilege(sb.uid, sb.gid));
  }
  // No ptrace, no /proc/PID/mem, no core dump, even by a same-uid peer.
  if (sb.not_dumpable) s.Step("prctl(PR_SET_DUMPABLE)", Errno(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)));
  // No exec can ever grant privileges again; also what lets an unprivileged process install
  // a seccomp filter.
  if (sb.no_new_privs) s.Step("prctl(PR_SET_NO_NEW_PRIVS)", Errno(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)));
  // Landlock: write only to /tmp and writable mounts, whatever the mounts say (needs NNP).
  if (sb.landlock_abi > 0) {
    const char* step = "landlock";
    int err = sandbox::ApplyLandlock(sb.landlock_abi, sb.root, &step);
    s.Step(err ? step : "landlock", err);
  }
}

// Process plumbing, as root, before anything is dropped: the same for a fresh fork and a pool
// child (whose stdio is /dev/null until its claim: nothing of the zygote's, its log, stays open).
void ProcessPlumbing(ChildSetup& s, const ForkSpec& spec, const std::vector<FdIdentity>& snapshot, uv_loop_t* loop) {
  const SandboxSpec& sb = spec.sandbox;
  // Process plumbing, as root, before anything is dropped.
  // 1. Signals: until the zygote's handlers are gone, a signal would wake the zygote. fork()
  //    ran with every signal blocked, so none was delivered yet.
  RestoreZygoteSignals();
  // 2. Die with the zygote (set again after the uid change, which clears it).
  s.Step("prctl(PR_SET_PDEATHSIG)", DieWithZygote(spec));
  s.Step("sigprocmask", UnblockSignals());
  // 3. A new session: no controlling terminal, so no TIOCSTI into the zygote's terminal and
  //    no signals from its process group.
  if (sb.setsid) s.Step("setsid", Errno(setsid()));
  // Into the child's own cgroups (memory, pids), while still root and before any of its own
  // allocations or threads; the fds are then closed with the rest of what was inherited.
  for (int fd : sb.cgroup_procs) {
    if (fd >= 0) s.Step("join cgroup", write(fd, "0", 1) == 1 ? 0 : errno);
  }
  // Its cgroup becomes the root of its view: /proc/self/cgroup names no host path.
  if (sb.cgroup_ns) s.Step("unshare(CLONE_NEWCGROUP)", sandbox::Unshare(CLONE_NEWCGROUP));
  // 4. The child's pipes become its stdio (dup2 clears close-on-exec on 0-2).
  s.Step("dup2(stdio)", PutStdio(spec));
  // 5. Close what was inherited, before uv_loop_fork so the loop's new fds cannot be hit.
  if (sb.close_fds) s.Step("close inherited fds", SweepInheritedFds(snapshot, loop, spec.report_fd));
  // 6. A fresh epoll fd, async eventfd and signal pipe for the event loop (uv_loop_fork(3)).
  if (int rc = uv_loop_fork(loop)) s.Step("uv_loop_fork", -rc);
  else s.Step("uv_loop_fork", 0);
  s.Step("renew loop reserve fd", RenewLoopReserveFd(loop));
  if (spec.name[0] != '\0') s.Step("prctl(PR_SET_NAME)", Errno(prctl(PR_SET_NAME, spec.name)));
}

void RunChildSetup(const ForkSpec& spec, const std::vector<FdIdentity>& snapshot, uv_loop_t* loop) {
  ChildSetup s(spec);
  const SandboxSpec& sb = spec.sandbox;

  ProcessPlumbing(s, spec, snapshot, loop);

  // A networked child keeps a way into the zygote's network namespace across the unshare
  // below (an fd of it, an rtnetlink socket bound to it; sandbox/network.cc). Made here, after
  // the fd sweep, so the sweep cannot take them; closed once its veth is set up.
  sandbox::VethSetup veth(sb.veth);
  if (sb.veth.set) {
    s.Step("network: open host netns", veth.OpenHostNamespace());
    s.Step("network: host netlink socket", veth.OpenHostNetlink());
  }
  // Namespaces of its own, while still root (they need CAP_SYS_ADMIN): no network but its own
  // loopback, no SysV IPC or POSIX message queues shared with anyone, its own hostname.
  int ns_flags = (sb.net_ns ? CLONE_NEWNET : 0) | (sb.ipc_ns ? CLONE_NEWIPC : 0) | (sb.uts_ns ? CLONE_NEWUTS : 0) |
                 (sb.mnt_ns && sb.root_template < 0 ? CLONE_NEWNS : 0);
  {
    // Its root's sources, captured before it leaves the zygote's mount namespace: a client's
    // mount is an fd of a mount of that namespace (or of the client's own, which the capture
    // enters), which open_tree copies from no other. The copies are closed once attached.
    sandbox::Trees trees;
    const sandbox::RootSpec& own_root = sb.root_template >= 0 ? sb.spawn_root : sb.root;
    if (sb.mnt_ns) {
      const char* step = "root";
      int err = sandbox::CaptureBinds(own_root, trees, &step);
      s.Step(err ? step : "root: capture", err);
    }
    for (const sandbox::RootBind& b : own_root.binds) {
      if (b.source_fd >= 0) close(b.source_fd);
    }
    for (int fd : {own_root.client_mnt_ns, own_root.own_mnt_ns}) {
      if (fd >= 0) close(fd);
    }
    if (ns_flags != 0) s.Step("unshare", sandbox::Unshare(ns_flags));
    // Its own filesystem: a fresh root of read-only binds of just what it needs, its own
    // /proc, a size-capped /tmp (sandbox/root.cc); the host's tree is gone from its namespace.
    // With the zygote's template (built once: sandbox/root.cc), the child enters a private copy
    // of it and adds only its own /tmp, /proc and mounts; without one it builds the whole root.
    if (sb.mnt_ns) {
      const char* step = "root";
      int err;
      if (sb.root_template >= 0) {
        err = sandbox::EnterRootFromTemplate(sb.root_template, sb.spawn_root, trees, &step);
      } else {
        s.Step("private mounts", sandbox::PrivateMounts());
        err = sandbox::EnterRoot(sb.root, trees, &step);
      }
      s.Step(err ? step : "root", err);
    }
    // Kept until now: the output's idmapped copy is made as the root is built.
    if (own_root.idmap_userns >= 0) close(own_root.idmap_userns);
  }
  if (sb.root_template >= 0) close(sb.root_template);
  if (sb.net_ns) s.Step("loopback up", sandbox::LoopbackUp());
  // A networked child (opt-in per spawn): a veth pair to the zygote's namespace, where the
  // zygote's nftables table decides what it may reach (zygote/sandbox/network.ts). Made by
  // the child itself, as real root; its namespace, and with it the pair, dies with it.
  if (sb.veth.set) {
    s.Step("network: child netlink socket", veth.OpenChildNetlink());
    s.Step("network: create veth", veth.CreatePair());
    s.Step("network: look up veth", veth.LookUpPair());
    // The host side first, so the child side comes up with a carrier and a gateway.
    s.Step("network: host side no IPv6", veth.HostNoIpv6());
    s.Step("network: host side address", veth.HostAddress());
    s.Step("network: host side up", veth.HostUp());
    s.Step("network: child side no IPv6", veth.ChildNoIpv6());
    s.Step("network: child side address", veth.ChildAddress());
    s.Step("network: child side up", veth.ChildUp());
    s.Step("network: default route", veth.DefaultRoute());
    veth.Close();
  }
  if (sb.uts_ns) s.Step("sethostname", sandbox::SetHostname("sandbox"));

  ApplyLimitsAndPrivileges(s, spec);
  // The zygote's pidfd was kept through the fd sweep for the checks above; no longer needed.
  close(spec.zygote_pidfd);
  if (sb.pid_ns) SplitInit(s, spec);
  // Seccomp last: every step above used syscalls the filter denies.
  if (sb.seccomp >= 0) {
    const std::vector<sock_filter>* program = sandbox::SeccompProgram(sb.seccomp);
    s.Step("seccomp", program == nullptr ? EINVAL : sandbox::ApplySeccomp(*program));
  }

  // Done: say so and close the channel, so nothing the step does can write to it.
  WriteReport(spec.report_fd, true, "ready", 0);
  close(spec.report_fd);
}

ForkSpec ParseSpec(Napi::Env env, Napi::Object o);

// A pool child's state between its setup and its claim (only ever set in a pool child).
struct PoolState {
  int root_fd = -1;         // its root (a private copy of the template), for the claim's mounts
  int zygote_mnt_ns = -1;   // where a client's mount fds name mounts, for the claim's captures
  int own_mnt_ns = -1;      // its own mount namespace, to come back to after a capture
  int zygote_pidfd = -1;    // for the parent-death checks of the claim
  int report_fd = -1;
  int claim_fd = -1;
};
PoolState g_pool;

// The pool child's init: pid 1 of the namespace forks the step-to-be now, before any claim,
// so a claim costs no fork. The init then drops every privilege (to the zygote's default
// uid: it never knows the claim's) and waits. Unlike a fresh fork's init it cannot pass
// signals on to the step once the claim changes the step's uid: the zygote signals the step
// through the pidfd the step sends it (below).
void SplitPoolInit(ChildSetup& s, const ForkSpec& spec) {
  const SandboxSpec& sb = spec.sandbox;
  sigset_t all, old;
  sigfillset(&all);
  s.Step("fork(step)", 0);
  sigprocmask(SIG_SETMASK, &all, &old);
  pid_t step = fork();
  if (step < 0) s.Step("fork(step)", errno);
  if (step == 0) {
    s.Step("sigprocmask(step)", Errno(sigprocmask(SIG_SETMASK, &old, nullptr)));
    return;
  }
  // The init keeps the report pipe (for the step's exit record) and nothing else.
  for (int fd : {g_pool.root_fd, g_pool.zygote_mnt_ns, g_pool.own_mnt_ns, g_pool.claim_fd}) close(fd);
  if (sb.capabilities) DropCapabilityBounds(s);
  if (sb.credentials) {
    s.Step("init: setgroups", sandbox::DropGroups());
    s.Step("init: setresgid", sandbox::SetGids(sb.gid));
    s.Step("init: setresuid", sandbox::SetUids(sb.uid));
    s.Step("init: prctl(PR_SET_PDEATHSIG)", DieWithZygote(spec));
  }
  close(spec.zygote_pidfd);
  if (sb.capabilities) s.Step("init: capset", sandbox::ClearCapabilities());
  if (sb.not_dumpable) s.Step("init: prctl(PR_SET_DUMPABLE)", Errno(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)));
  if (sb.no_new_privs) s.Step("init: prctl(PR_SET_NO_NEW_PRIVS)", Errno(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)));
  RunInit(step, spec.report_fd, sb.init_seccomp >= 0 ? sandbox::SeccompProgram(sb.init_seccomp) : nullptr);
}

// A pool child's setup: everything a fresh fork does that needs no spawn (signals, session,
// its cgroup (no limits yet: the zygote writes them at the claim), namespaces, a private copy
// of the root template with its /proc, loopback), then the split into init and step. The
// step-to-be ends by sending the zygote a pidfd of itself on claim_fd: it is ready.
void RunPoolSetup(const ForkSpec& spec, const std::vector<FdIdentity>& snapshot, uv_loop_t* loop, int zygote_mnt_ns) {
  ChildSetup s(spec);
  const SandboxSpec& sb = spec.sandbox;
  ProcessPlumbing(s, spec, snapshot, loop);
  g_pool.zygote_mnt_ns = zygote_mnt_ns;
  g_pool.zygote_pidfd = spec.zygote_pidfd;
  g_pool.report_fd = spec.report_fd;
  g_pool.claim_fd = spec.claim_fd;
  int ns_flags = (sb.net_ns ? CLONE_NEWNET : 0) | (sb.ipc_ns ? CLONE_NEWIPC : 0) | (sb.uts_ns ? CLONE_NEWUTS : 0);
  if (ns_flags != 0) s.Step("unshare", sandbox::Unshare(ns_flags));
  {
    const char* step = "root";
    int err = sandbox::EnterTemplateCopy(sb.root_template, sb.root.proc, &g_pool.root_fd, &step);
    s.Step(err ? step : "root", err);
  }
  close(sb.root_template);
  g_pool.own_mnt_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  s.Step("open own mount namespace", g_pool.own_mnt_ns < 0 ? errno : 0);
  if (sb.net_ns) s.Step("loopback up", sandbox::LoopbackUp());
  if (sb.uts_ns) s.Step("sethostname", sandbox::SetHostname("sandbox"));
  SplitPoolInit(s, spec);
  // Last, in the step-to-be alone: the pages its step will write are its own, and those it
  // will read have taken their first-access trap, before the claim.
  PrefaultRanges(spec.prefault);
  PretouchRanges(spec.pretouch);
  int self = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  s.Step("pidfd_open(self)", self < 0 ? errno : 0);
  int err = 0;
  bool sent = SendPacket(spec.claim_fd, "ready", 5, &self, 1, &err);
  s.Step("send ready", sent ? 0 : (err ? err : EAGAIN));
  close(self);
}

// claimChild({ stdin, stdout, stderr, name, sandbox }) in a pool child, with the fds its claim
// brought: the rest of a fresh fork's setup (its stdio, its /tmp and mounts, limits,
// privileges, seccomp), reporting on the pipe its setup began with. Returns { pid } only once
// every step succeeded; any failure ends the child here (fail closed).
Napi::Value ClaimChild(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g_pool.report_fd < 0) throw Napi::Error::New(env, "claimChild: this process is not a pool child");
  Napi::Object o = info[0].As<Napi::Object>();
  o.Set("report", g_pool.report_fd);
  ForkSpec spec = ParseSpec(env, o);
  spec.zygote_pidfd = g_pool.zygote_pidfd;
  spec.claim_fd = -1;
  SandboxSpec& sb = spec.sandbox;
  ChildSetup s(spec);
  close(g_pool.claim_fd);
  s.Step("dup2(stdio)", PutStdio(spec));
  for (int fd : spec.stdio) close(fd);
  if (spec.name[0] != '\0') s.Step("prctl(PR_SET_NAME)", Errno(prctl(PR_SET_NAME, spec.name)));
  {
    // The spawn's mounts are captured where their fds name them (the zygote's mount namespace,
    // or the client's), then attached to the root it entered before its claim.
    sandbox::RootSpec& own = sb.spawn_root;
    if (own.client_mnt_ns < 0) own.client_mnt_ns = g_pool.zygote_mnt_ns;
    own.own_mnt_ns = g_pool.own_mnt_ns;
    sandbox::Trees trees;
    const char* step = "root";
    int err = sandbox::CaptureBinds(own, trees, &step);
    for (const sandbox::RootBind& b : own.binds) {
      if (b.source_fd >= 0) close(b.source_fd);
    }
    if (!err) err = sandbox::CompleteRootFromTemplate(g_pool.root_fd, own, trees, &step);
    s.Step(err ? step : "root", err);
    if (own.client_mnt_ns != g_pool.zygote_mnt_ns) close(own.client_mnt_ns);
    for (int fd : {own.idmap_userns, g_pool.zygote_mnt_ns, g_pool.own_mnt_ns, g_pool.root_fd}) {
      if (fd >= 0) close(fd);
    }
  }
  ApplyLimitsAndPrivileges(s, spec);
  close(spec.zygote_pidfd);
  if (sb.seccomp >= 0) {
    const std::vector<sock_filter>* program = sandbox::SeccompProgram(sb.seccomp);
    s.Step("seccomp", program == nullptr ? EINVAL : sandbox::ApplySeccomp(*program));
  }
  WriteReport(spec.report_fd, true, "ready", 0);
  close(spec.report_fd);
  g_pool = PoolState{};
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", getpid());
  return out;
}

int FdField(Napi::Env env, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("forkChild: ") + key + " must be an fd number");
  int fd = v.As<Napi::Number>().Int32Value();
  if (fd <= STDERR_FILENO) throw Napi::RangeError::New(env, std::string("forkChild: ") + key + " must be above 2");
  return fd;
}

bool Flag(Napi::Object o, const char* key) { return o.Has(key) && o.Get(key).ToBoolean(); }

SandboxSpec::Limit LimitField(Napi::Object o, const char* key) {
  SandboxSpec::Limit l;
  if (o.Has(key) && o.Get(key).IsNumber()) {
    l.set = true;
    l.value = static_cast<rlim_t>(o.Get(key).As<Napi::Number>().DoubleValue());
  }
  return l;
}

// { hostName, childName, hostAddr, childAddr, prefix }: names of at most 15 bytes, dotted
// IPv4 addresses in one /prefix. Checked here, before fork, so the child only carries it out.
sandbox::VethSpec ParseVeth(Napi::Env env, Napi::Object v) {
  sandbox::VethSpec veth;
  veth.set = true;
  auto name = [&](const char* key, char* out) {
    std::string s = v.Get(key).IsString() ? v.Get(key).As<Napi::String>().Utf8Value() : "";
    if (s.empty() || s.size() >= IFNAMSIZ || s.find('/') != std::string::npos)
      throw Napi::RangeError::New(env, std::string("forkChild: veth.") + key + " must be an interface name of 1 to 15 bytes");
    memcpy(out, s.c_str(), s.size() + 1);
  };
  auto addr = [&](const char* key, in_addr* out) {
    std::string s = v.Get(key).IsString() ? v.Get(key).As<Napi::String>().Utf8Value() : "";
    if (inet_pton(AF_INET, s.c_str(), out) != 1) throw Napi::RangeError::New(env, std::string("forkChild: veth.") + key + " must be a dotted IPv4 address");
  };
  name("hostName", veth.host_name);
  name("childName", veth.child_name);
  addr("hostAddr", &veth.host_addr);
  addr("childAddr", &veth.child_addr);
  veth.prefix = v.Get("prefix").IsNumber() ? v.Get("prefix").As<Napi::Number>().Int32Value() : -1;
  if (veth.prefix < 1 || veth.prefix > 31) throw Napi::RangeError::New(env, "forkChild: veth.prefix must be 1 to 31");
  return veth;
}

std::vector<std::string> Strings(Napi::Env env, Napi::Object o, const char* key) {
  std::vector<std::string> out;
  if (!o.Has(key) || o.Get(key).IsUndefined()) return out;
  Napi::Array a = o.Get(key).As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    std::string s = a.Get(i).As<Napi::String>().Utf8Value();
    if (s.size() < 2 || s[0] != '/') throw Napi::RangeError::New(env, std::string("root.") + key + " needs absolute paths");
    out.push_back(s);
  }
  return out;
}

// The module copies, links and the dirs under /tmp of a root plan (see sandbox/root.h).
void ParseCopies(Napi::Env env, Napi::Object r, sandbox::RootSpec& spec) {
  spec.copies = Strings(env, r, "copies");
  if (r.Has("links") && r.Get("links").IsArray()) {
    Napi::Array links = r.Get("links").As<Napi::Array>();
    for (uint32_t i = 0; i < links.Length(); i++) {
      Napi::Object l = links.Get(i).As<Napi::Object>();
      sandbox::RootLink link{l.Get("path").As<Napi::String>().Utf8Value(), l.Get("target").As<Napi::String>().Utf8Value()};
      if (link.path.size() < 2 || link.path[0] != '/' || link.target.empty()) throw Napi::RangeError::New(env, "root.links need absolute paths and a target");
      spec.links.push_back(link);
    }
  }
  spec.copy_bytes = r.Has("copyBytes") && r.Get("copyBytes").IsNumber() ? static_cast<unsigned long long>(r.Get("copyBytes").As<Napi::Number>().DoubleValue()) : 0;
  spec.tmp_dirs = Strings(env, r, "tmpDirs");
}

sandbox::RootBind ParseBind(Napi::Env env, Napi::Object b) {
  sandbox::RootBind bind;
  bind.source = b.Get("source").As<Napi::String>().Utf8Value();
  bind.target = b.Get("target").As<Napi::String>().Utf8Value();
  if (bind.source.empty() || bind.source[0] != '/' || bind.target.size() < 2 || bind.target[0] != '/')
    throw Napi::RangeError::New(env, "forkChild: root binds need absolute source and target paths");
  bind.writable = Flag(b, "writable");
  bind.device = Flag(b, "device");
  // A client's mount: its O_PATH fd, never its path (sandbox/root.cc).
  if (b.Has("fd") && b.Get("fd").IsNumber()) {
    bind.source_fd = b.Get("fd").As<Napi::Number>().Int32Value();
    if (bind.source_fd <= STDERR_FILENO) throw Napi::RangeError::New(env, "forkChild: a mount's fd must be above 2");
    bind.index = b.Has("index") && b.Get("index").IsNumber() ? b.Get("index").As<Napi::Number>().Int32Value() : -1;
    bind.output = Flag(b, "output");
    bind.no_idmap = bind.output && Flag(b, "noIdmap");
  }
  return bind;
}

SandboxSpec ParseSandbox(Napi::Env env, Napi::Object o) {
  SandboxSpec sb;
  sb.setsid = Flag(o, "setsid");
  sb.close_fds = Flag(o, "closeFds");
  sb.pid_ns = Flag(o, "pidNamespace");
  sb.net_ns = Flag(o, "netNamespace");
  sb.ipc_ns = Flag(o, "ipcNamespace");
  if (o.Has("veth") && o.Get("veth").IsObject()) {
    if (!sb.net_ns) throw Napi::TypeError::New(env, "forkChild: a veth needs the network namespace");
    sb.veth = ParseVeth(env, o.Get("veth").As<Napi::Object>());
  }
  sb.uts_ns = Flag(o, "utsNamespace");
  sb.cgroup_ns = Flag(o, "cgroupNamespace");
  sb.user_ns = Flag(o, "userNamespace");
  if (o.Has("credentials") && o.Get("credentials").IsObject()) {
    Napi::Object c = o.Get("credentials").As<Napi::Object>();
    sb.credentials = true;
    sb.uid = c.Get("uid").As<Napi::Number>().Uint32Value();
    sb.gid = c.Get("gid").As<Napi::Number>().Uint32Value();
  }
  if (sb.user_ns && !sb.credentials) throw Napi::TypeError::New(env, "forkChild: a user namespace needs credentials (the host uid to map its root to)");
  if (o.Has("root") && o.Get("root").IsObject()) {
    Napi::Object r = o.Get("root").As<Napi::Object>();
    sb.mnt_ns = true;
    sb.root.proc = Flag(r, "proc");
    sb.root.tmp_bytes = static_cast<unsigned long long>(r.Get("tmpBytes").As<Napi::Number>().DoubleValue());
    Napi::Array binds = r.Get("binds").As<Napi::Array>();
    for (uint32_t i = 0; i < binds.Length(); i++) sb.root.binds.push_back(ParseBind(env, binds.Get(i).As<Napi::Object>()));
    ParseCopies(env, r, sb.root);
    sb.root.idmap_userns = r.Has("idmapFd") && r.Get("idmapFd").IsNumber() ? r.Get("idmapFd").As<Napi::Number>().Int32Value() : -1;
    sb.root.client_mnt_ns = r.Has("clientMountNsFd") && r.Get("clientMountNsFd").IsNumber() ? r.Get("clientMountNsFd").As<Napi::Number>().Int32Value() : -1;
    sb.root_template = r.Has("templateFd") && r.Get("templateFd").IsNumber() ? r.Get("templateFd").As<Napi::Number>().Int32Value() : -1;
    if (sb.root_template >= 0) {
      // What the child mounts on top of the template: its own binds, after putting back what
      // the template holds under /tmp, which its own /tmp would otherwise hide.
      sb.spawn_root = sb.root;
      sb.spawn_root.binds.clear();
      sb.spawn_root.copies.clear();
      sb.spawn_root.links.clear();
      Napi::Array own = r.Get("templateBinds").As<Napi::Array>();
      for (uint32_t i = 0; i < own.Length(); i++) sb.spawn_root.binds.push_back(ParseBind(env, own.Get(i).As<Napi::Object>()));
      sb.spawn_root.tmp_dirs = Strings(env, r, "templateTmpDirs");
    }
  }
  sb.capabilities = Flag(o, "capabilities");
  sb.no_new_privs = Flag(o, "noNewPrivs");
  sb.not_dumpable = Flag(o, "notDumpable");
  if (o.Has("rlimits") && o.Get("rlimits").IsObject()) {
    Napi::Object r = o.Get("rlimits").As<Napi::Object>();
    sb.core = LimitField(r, "core");
    sb.nofile = LimitField(r, "nofile");
    sb.fsize = LimitField(r, "fsize");
    sb.cpu = LimitField(r, "cpu");
  }
  if (o.Has("cgroupProcs") && o.Get("cgroupProcs").IsArray()) {
    Napi::Array a = o.Get("cgroupProcs").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length() && i < 2; i++) sb.cgroup_procs[i] = a.Get(i).As<Napi::Number>().Int32Value();
  }
  sb.seccomp = o.Has("seccomp") && o.Get("seccomp").IsNumber() ? o.Get("seccomp").As<Napi::Number>().Int32Value() : -1;
  if (sb.seccomp >= 0 && sandbox::SeccompProgram(sb.seccomp) == nullptr) throw Napi::RangeError::New(env, "forkChild: unknown seccomp filter id");
  sb.landlock_abi = o.Has("landlockAbi") && o.Get("landlockAbi").IsNumber() ? o.Get("landlockAbi").As<Napi::Number>().Int32Value() : 0;
  sb.init_seccomp = o.Has("initSeccomp") && o.Get("initSeccomp").IsNumber() ? o.Get("initSeccomp").As<Napi::Number>().Int32Value() : -1;
  if (sb.init_seccomp >= 0 && sandbox::SeccompProgram(sb.init_seccomp) == nullptr) throw Napi::RangeError::New(env, "forkChild: unknown init seccomp filter id");
  if (o.Has("injectFailure") && o.Get("injectFailure").IsObject()) {
    Napi::Object f = o.Get("injectFailure").As<Napi::Object>();
    std::string step = f.Get("step").As<Napi::String>().Utf8Value();
    snprintf(sb.inject_step, sizeof sb.inject_step, "%s", step.c_str());
    sb.inject_errno = f.Get("errno").As<Napi::Number>().Int32Value();
  }
  return sb;
}

// A pool child's learned pages (PageRangesFromJs); absent: none.
std::vector<PageRange> RangesField(Napi::Env env, Napi::Object o, const char* key) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return {};
  return PageRangesFromJs(env, o.Get(key), std::string("forkChild: ") + key);
}

ForkSpec ParseSpec(Napi::Env env, Napi::Object o) {
  ForkSpec spec = {};
  spec.stdio[0] = FdField(env, o, "stdin");
  spec.stdio[1] = FdField(env, o, "stdout");
  spec.stdio[2] = FdField(env, o, "stderr");
  spec.report_fd = FdField(env, o, "report");
  spec.claim_fd = o.Has("claim") && !o.Get("claim").IsUndefined() ? FdField(env, o, "claim") : -1;
  std::string name = o.Has("name") && o.Get("name").IsString() ? o.Get("name").As<Napi::String>().Utf8Value() : "";
  snprintf(spec.name, sizeof spec.name, "%s", name.c_str());
  spec.death_signal = SIGKILL;
  if (!o.Has("sandbox") || !o.Get("sandbox").IsObject()) throw Napi::TypeError::New(env, "forkChild: sandbox must be an object");
  spec.sandbox = ParseSandbox(env, o.Get("sandbox").As<Napi::Object>());
  spec.prefault = RangesField(env, o, "prefault");
  spec.pretouch = RangesField(env, o, "pretouch");
  return spec;
}

// forkChild({ stdin, stdout, stderr, report, name }) ->
//   in the zygote: { role: "parent", pid, pidfd }
//   in the child:  { role: "child", pid }  (only after every setup step succeeded)
Napi::Value ForkChild(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ForkSpec spec = ParseSpec(env, info[0].As<Napi::Object>());
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
    throw Napi::Error::New(env, "forkChild: no event loop");
  // Opened once, kept for the zygote's life: a pidfd for itself (children watch it) and its
  // own pid namespace (to return to after forking into a new one).
  static int self_pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  static int own_pid_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  static int own_mnt_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (self_pidfd < 0) ThrowErrno(env, "pidfd_open(zygote)", errno);
  if (spec.sandbox.pid_ns && own_pid_ns < 0) ThrowErrno(env, "open(/proc/self/ns/pid)", errno);
  if (spec.sandbox.root.client_mnt_ns >= 0) {
    // The child returns here after copying a client's mounts from the client's namespace; it
    // gets its own copy of this fd (dup), which it closes.
    if (own_mnt_ns < 0) ThrowErrno(env, "open(/proc/self/ns/mnt)", errno);
    spec.sandbox.root.own_mnt_ns = spec.sandbox.spawn_root.own_mnt_ns = own_mnt_ns;
  }
  spec.zygote_pidfd = self_pidfd;

  std::vector<FdIdentity> snapshot = SnapshotFds();
  // The child closes these itself once it used them; the fd sweep must leave them.
  const bool pool = spec.claim_fd >= 0;
  if (pool && (!spec.sandbox.pid_ns || !spec.sandbox.mnt_ns || spec.sandbox.root_template < 0 || spec.sandbox.veth.set))
    throw Napi::TypeError::New(env, "forkChild: a pool child needs a pid namespace and the root template, and no veth");
  if (pool && own_mnt_ns < 0) ThrowErrno(env, "open(/proc/self/ns/mnt)", errno);
  std::vector<int> keep = {self_pidfd, spec.sandbox.root_template, spec.sandbox.root.idmap_userns, spec.sandbox.root.client_mnt_ns, spec.sandbox.root.own_mnt_ns, spec.claim_fd, pool ? own_mnt_ns : -1};
  for (const sandbox::RootBind& b : spec.sandbox.root.binds) keep.push_back(b.source_fd);
  std::erase_if(snapshot, [&keep](const FdIdentity& f) { return std::find(keep.begin(), keep.end(), f.fd) != keep.end(); });
  MakeMemoryForkable();

  if (spec.sandbox.pid_ns && unshare(CLONE_NEWPID) < 0) ThrowErrno(env, "unshare(CLONE_NEWPID)", errno);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = fork();
  int fork_err = errno;
  if (pid != 0 && spec.sandbox.pid_ns && setns(own_pid_ns, CLONE_NEWPID) < 0) {
    // Every later fork would land in this child's namespace, and the zygote could start no
    // thread: there is no safe way on.
    fprintf(stderr, "zygote: setns back to its own pid namespace failed: %s\n", strerror(errno));
    abort();
  }
  if (pid == 0 && pool) {
    RunPoolSetup(spec, snapshot, loop, own_mnt_ns);
    Napi::Object out = Napi::Object::New(env);
    out.Set("role", "child");
    out.Set("pid", getpid());
    out.Set("newRoot", true);
    out.Set("pooled", true);
    return out;
  }
  if (pid == 0) {
    RunChildSetup(spec, snapshot, loop);
    Napi::Object out = Napi::Object::New(env);
    out.Set("role", "child");
    out.Set("pid", getpid());
    // Its cwd is now "/" of a new root, which Node's cached process.cwd() does not know.
    out.Set("newRoot", spec.sandbox.mnt_ns);
    return out;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) ThrowErrno(env, "fork", fork_err);

  // The child cannot be reaped before we open the pidfd (only we reap it), so there is no
  // pid-reuse window here.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    int e = errno;
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, __WALL);
    ThrowErrno(env, "pidfd_open", e);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("role", "parent");
  out.Set("pid", pid);
  out.Set("pidfd", pidfd);
  return out;
}

}  // namespace

// buildRootTemplate({ binds, copies, links, copyBytes }, dirs) -> fd of the template mount
// namespace (see sandbox/root.h).
Napi::Value BuildRootTemplate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sandbox::RootSpec spec;
  Napi::Object plan = info[0].As<Napi::Object>();
  ParseCopies(env, plan, spec);
  spec.tmp_dirs.clear();  // the template keeps everything in place; children lift /tmp's part
  Napi::Array binds = plan.Get("binds").As<Napi::Array>();
  for (uint32_t i = 0; i < binds.Length(); i++) {
    Napi::Object b = binds.Get(i).As<Napi::Object>();
    sandbox::RootBind bind;
    bind.source = b.Get("source").As<Napi::String>().Utf8Value();
    bind.target = b.Get("target").As<Napi::String>().Utf8Value();
    if (bind.source.empty() || bind.source[0] != '/' || bind.target.size() < 2 || bind.target[0] != '/')
      throw Napi::RangeError::New(env, "buildRootTemplate: binds need absolute source and target paths");
    bind.device = Flag(b, "device");
    spec.binds.push_back(bind);
  }
  std::vector<std::string> dirs;
  Napi::Array d = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < d.Length(); i++) dirs.push_back(d.Get(i).As<Napi::String>().Utf8Value());
  const char* step = "root template";
  int fd = sandbox::BuildRootTemplate(spec, dirs, &step);
  if (fd < 0) ThrowErrno(env, step, -fd);
  return Napi::Number::New(env, fd);
}

void InitFork(Napi::Env env, Napi::Object exports) {
  exports.Set("forkChild", Napi::Function::New(env, ForkChild, "forkChild"));
  exports.Set("claimChild", Napi::Function::New(env, ClaimChild, "claimChild"));
  exports.Set("buildRootTemplate", Napi::Function::New(env, BuildRootTemplate, "buildRootTemplate"));
}

}  // namespace zygote
