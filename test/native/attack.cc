// Test-only addon: raw syscalls that JS cannot make, for the sandbox attack tests.
//
// A test zygote preloads this module (trusted code, loaded before fork); a hostile child
// then calls it to attack each sandbox layer. Every function REALLY attempts the privileged
// thing, so a positive-control run without the sandbox succeeds, and fails harmlessly when
// it cannot. Each returns a plain object
//   { ok: boolean, errno: string | null, value: number }
// where errno is the symbolic name (strerrorname_np) of the failure and value is the
// syscall's return value on success (-1 on failure). A few add a field (text, data, ids).
//
// Syscalls go through raw syscall(SYS_x, ...) so glibc adds nothing (no setxid broadcast to
// every thread, no cached pid, no fork handlers): what the kernel says is what the test sees.
// Note that credential calls made this way change only the calling thread.
//
// Each section names the layer that should stop it in a sandboxed child:
//   creds    = the uid/gid drop (non-root, no supplementary groups)
//   caps     = the emptied capability sets / no_new_privs
//   seccomp  = the syscall filter
//   dumpable = PR_SET_DUMPABLE 0 (blocks ptrace and /proc/<pid>/mem, environ, ... by others)
//   rlimits  = RLIMIT_CORE 0 and friends
// Argument errors (wrong JS types) throw a TypeError; they are test bugs, not results.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------------
// Result plumbing
// ---------------------------------------------------------------------------------------

// A syscall's outcome, with errno captured before anything else can clobber it.
struct Outcome {
  long ret;
  int err;
};

// Wraps the return of syscall()/libc: -1 means failure with errno set.
Outcome Sys(long ret) { return {ret, ret < 0 ? errno : 0}; }

// Wraps the return of a raw inline-asm syscall: -4095..-1 is -errno.
Outcome Raw(long ret) {
  if (ret < 0 && ret >= -4095) return {-1, static_cast<int>(-ret)};
  return {ret, 0};
}

const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);  // glibc >= 2.32
  if (name != nullptr) return name;
  static char buf[24];  // an errno glibc has no name for (only ever the JS thread here)
  snprintf(buf, sizeof buf, "E%d", err);
  return buf;
}

Napi::Object Result(Napi::Env env, Outcome o) {
  Napi::Object r = Napi::Object::New(env);
  bool ok = o.err == 0;
  r.Set("ok", Napi::Boolean::New(env, ok));
  r.Set("errno", ok ? Napi::Value(env.Null()) : Napi::Value(Napi::String::New(env, ErrnoName(o.err))));
  r.Set("value", Napi::Number::New(env, static_cast<double>(ok ? o.ret : -1)));
  return r;
}

// Closes an fd the attack created, keeping the attack's own outcome.
Outcome CloseAfter(Outcome o) {
  if (o.err == 0 && o.ret >= 0) close(static_cast<int>(o.ret));
  return o;
}

// ---------------------------------------------------------------------------------------
// Argument helpers
// ---------------------------------------------------------------------------------------

[[noreturn]] void TypeError(Napi::Env env, const char* fn, const char* what) {
  throw Napi::TypeError::New(env, std::string(fn) + ": " + what);
}

int64_t Int(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (info.Length() <= i || !info[i].IsNumber()) TypeError(info.Env(), fn, "expected a number argument");
  return info[i].As<Napi::Number>().Int64Value();
}

int64_t IntOr(const Napi::CallbackInfo& info, size_t i, int64_t dflt, const char* fn) {
  if (info.Length() <= i || info[i].IsUndefined()) return dflt;
  return Int(info, i, fn);
}

// A number or a BigInt, as the 64 raw bits (BigInt keeps bits a double cannot hold).
uint64_t U64(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (info.Length() > i && info[i].IsBigInt()) {
    bool lossless = false;
    return info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  }
  return static_cast<uint64_t>(Int(info, i, fn));
}

std::string Str(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (info.Length() <= i || !info[i].IsString()) TypeError(info.Env(), fn, "expected a string argument");
  return info[i].As<Napi::String>().Utf8Value();
}

bool Bool(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (info.Length() <= i || info[i].IsUndefined()) return false;
  if (!info[i].IsBoolean()) TypeError(info.Env(), fn, "expected a boolean argument");
  return info[i].As<Napi::Boolean>().Value();
}

// ---------------------------------------------------------------------------------------
// Credentials: gaining ids and capabilities back (creds + caps; seccomp may also deny)
// ---------------------------------------------------------------------------------------

// setuid(uid): become another user (root) again. Stopped by creds (no CAP_SETUID).
Napi::Value SetUid(const Napi::CallbackInfo& info) {
  return Result(info.Env(), Sys(syscall(SYS_setuid, static_cast<uid_t>(Int(info, 0, "setuid")))));
}

// setgid(gid): join another group (root). Stopped by creds (no CAP_SETGID).
Napi::Value SetGid(const Napi::CallbackInfo& info) {
  return Result(info.Env(), Sys(syscall(SYS_setgid, static_cast<gid_t>(Int(info, 0, "setgid")))));
}

// setgroups(0, NULL): drop supplementary groups (needs CAP_SETGID). Stopped by creds/caps.
Napi::Value SetGroups0(const Napi::CallbackInfo& info) {
  return Result(info.Env(), Sys(syscall(SYS_setgroups, 0, nullptr)));
}

// capset: raise every capability into effective and permitted. Stopped by caps (a new
// permitted set may not exceed the old one); the kernel masks bits past CAP_LAST_CAP.
Napi::Value CapsetAll(const Napi::CallbackInfo& info) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  syscall(SYS_capget, &hdr, data);  // keeps inheritable as it is; ignored if it fails
  hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  for (auto& d : data) d.effective = d.permitted = 0xffffffffu;
  return Result(info.Env(), Sys(syscall(SYS_capset, &hdr, data)));
}

// The outcome with the three ids (real, effective, saved) in `ids`.
template <typename Id>
Napi::Object WithIds(Napi::Env env, Outcome o, Id r, Id e, Id s) {
  Napi::Object res = Result(env, o);
  Napi::Array ids = Napi::Array::New(env, 3);
  ids.Set(0u, Napi::Number::New(env, r));
  ids.Set(1u, Napi::Number::New(env, e));
  ids.Set(2u, Napi::Number::New(env, s));
  res.Set("ids", ids);
  return res;
}

// getresuid: the real, effective and saved uids, in `ids`. A probe, not an attack.
Napi::Value GetResUid(const Napi::CallbackInfo& info) {
  uid_t r = 0, e = 0, s = 0;
  Outcome o = Sys(syscall(SYS_getresuid, &r, &e, &s));
  return WithIds(info.Env(), o, r, e, s);
}

// getresgid: the real, effective and saved gids, in `ids`. A probe, not an attack.
Napi::Value GetResGid(const Napi::CallbackInfo& info) {
  gid_t r = 0, e = 0, s = 0;
  Outcome o = Sys(syscall(SYS_getresgid, &r, &e, &s));
  return WithIds(info.Env(), o, r, e, s);
}

// prctl(option, 0, 0, 0, 0): read a process attribute, e.g. PR_GET_DUMPABLE (3),
// PR_GET_SECUREBITS (27), PR_GET_NO_NEW_PRIVS (39); value is prctl's return. A probe.
Napi::Value PrctlGet(const Napi::CallbackInfo& info) {
  int option = static_cast<int>(Int(info, 0, "prctl_get"));
  return Result(info.Env(), Sys(prctl(option, 0UL, 0UL, 0UL, 0UL)));
}

// prctl(option, arg, 0, 0, 0): set a process attribute, e.g. PR_SET_DUMPABLE (4) 1 to make
// a victim traceable again in a positive control. Stopped by seccomp (prctl options).
Napi::Value PrctlSet(const Napi::CallbackInfo& info) {
  int option = static_cast<int>(Int(info, 0, "prctl_set"));
  unsigned long arg = static_cast<unsigned long>(Int(info, 1, "prctl_set"));
  return Result(info.Env(), Sys(prctl(option, arg, 0UL, 0UL, 0UL)));
}

// ---------------------------------------------------------------------------------------
// Filesystem view and namespaces: escaping or reshaping the mount tree (caps + seccomp)
// ---------------------------------------------------------------------------------------

// chroot(path): change the root (needs CAP_SYS_CHROOT). Stopped by caps/seccomp.
Napi::Value Chroot(const Napi::CallbackInfo& info) {
  std::string path = Str(info, 0, "chroot");
  return Result(info.Env(), Sys(syscall(SYS_chroot, path.c_str())));
}

// mount("none", target, "tmpfs", 0, NULL): mount over a path (needs CAP_SYS_ADMIN).
// Stopped by caps/seccomp. Unsandboxed, this really mounts: call it only in a private
// mount namespace.
Napi::Value MountTmpfs(const Napi::CallbackInfo& info) {
  std::string target = Str(info, 0, "mount_tmpfs");
  return Result(info.Env(), Sys(syscall(SYS_mount, "none", target.c_str(), "tmpfs", 0UL, nullptr)));
}

// pivot_root(newRoot, putOld): swap the root mount (needs CAP_SYS_ADMIN). Stopped by
// caps/seccomp.
Napi::Value PivotRoot(const Napi::CallbackInfo& info) {
  std::string new_root = Str(info, 0, "pivot_root");
  std::string put_old = Str(info, 1, "pivot_root");
  return Result(info.Env(), Sys(syscall(SYS_pivot_root, new_root.c_str(), put_old.c_str())));
}

// unshare(flags): new namespaces (CLONE_NEWUSER is the one an unprivileged child can
// use). Stopped by seccomp (and caps for the others). Note: the kernel refuses
// CLONE_NEWUSER and CLONE_NEWNS/CLONE_FS with EINVAL in a multi-threaded process such as
// Node, sandbox or not; clone_raw/clone3_raw are the sharper test of user namespaces.
Napi::Value Unshare(const Napi::CallbackInfo& info) {
  unsigned long flags = U64(info, 0, "unshare");
  return Result(info.Env(), Sys(syscall(SYS_unshare, flags)));
}

// open(path, O_RDONLY): an fd for setns, e.g. /proc/1/ns/mnt; value is the fd (left open;
// close it with close()). Stopped by dumpable/creds for other processes' namespaces.
Napi::Value OpenNs(const Napi::CallbackInfo& info) {
  std::string path = Str(info, 0, "open_ns");
  return Result(info.Env(), Sys(syscall(SYS_openat, AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC, 0)));
}

// setns(fd, nstype): join another namespace (needs CAP_SYS_ADMIN). Stopped by
// caps/seccomp. (User and mount namespaces also refuse multi-threaded callers: EINVAL.)
Napi::Value Setns(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(Int(info, 0, "setns"));
  int nstype = static_cast<int>(IntOr(info, 1, 0, "setns"));
  return Result(info.Env(), Sys(syscall(SYS_setns, fd, nstype)));
}

// close(fd): a helper for the fds open_ns hands out. Not an attack.
Napi::Value Close(const Napi::CallbackInfo& info) {
  return Result(info.Env(), Sys(syscall(SYS_close, static_cast<int>(Int(info, 0, "close")))));
}

// ---------------------------------------------------------------------------------------
// Other processes: tracing and reading their memory (dumpable + creds + seccomp)
// ---------------------------------------------------------------------------------------

// PTRACE_ATTACH pid; on success wait (bounded, 2 s) for its stop and PTRACE_DETACH with
// no signal, so the target runs on unharmed. Stopped by dumpable/creds/seccomp.
Napi::Value PtraceAttach(const Napi::CallbackInfo& info) {
  pid_t pid = static_cast<pid_t>(Int(info, 0, "ptrace_attach"));
  Outcome o = Sys(syscall(SYS_ptrace, PTRACE_ATTACH, pid, nullptr, nullptr));
  if (o.err == 0) {
    // __WALL: the target may be a thread or a non-child; WNOHANG so a target that never
    // stops cannot hang the caller.
    for (int i = 0; i < 200; i++) {
      int status = 0;
      pid_t w = waitpid(pid, &status, __WALL | WNOHANG);
      if (w == pid || (w < 0 && errno != EINTR)) break;
      struct timespec ts{0, 10 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    syscall(SYS_ptrace, PTRACE_DETACH, pid, nullptr, nullptr);
  }
  return Result(info.Env(), o);
}

// process_vm_readv: read 8 bytes at address (number or BigInt) in pid; value is the byte
// count, `data` the bytes as a little-endian BigInt (null on failure). Stopped by
// dumpable/creds (the ptrace access check) and seccomp.
Napi::Value ProcessVmReadv(const Napi::CallbackInfo& info) {
  pid_t pid = static_cast<pid_t>(Int(info, 0, "process_vm_readv"));
  uint64_t address = U64(info, 1, "process_vm_readv");
  uint64_t data = 0;
  struct iovec local{&data, sizeof data};
  struct iovec remote{reinterpret_cast<void*>(address), sizeof data};
  Outcome o = Sys(syscall(SYS_process_vm_readv, pid, &local, 1UL, &remote, 1UL, 0UL));
  Napi::Object res = Result(info.Env(), o);
  res.Set("data", o.err == 0 ? Napi::Value(Napi::BigInt::New(info.Env(), data)) : info.Env().Null());
  return res;
}

// open + read (not fs) of a file, typically /proc/<pid>/{environ,mem,maps,stack}: value is
// the bytes read (at most 64 KiB), `text` the first 4 KiB. Some /proc files check access at
// read time, so a read error counts as failure too. Stopped by dumpable/creds/seccomp.
Napi::Value ReadProcFile(const Napi::CallbackInfo& info) {
  std::string path = Str(info, 0, "read_proc_file");
  constexpr size_t kMax = 64 * 1024, kText = 4096;
  std::string buf(kMax, '\0');
  size_t total = 0;
  Outcome o = Sys(syscall(SYS_openat, AT_FDCWD, path.c_str(), O_RDONLY | O_CLOEXEC, 0));
  if (o.err == 0) {
    int fd = static_cast<int>(o.ret);
    while (total < kMax) {
      Outcome r = Sys(syscall(SYS_read, fd, buf.data() + total, kMax - total));
      if (r.err == EINTR) continue;
      if (r.err != 0) {
        o = r;
        break;
      }
      if (r.ret == 0) break;
      total += static_cast<size_t>(r.ret);
    }
    close(fd);
    if (o.err == 0) o.ret = static_cast<long>(total);
  }
  Napi::Object res = Result(info.Env(), o);
  res.Set("value", Napi::Number::New(info.Env(), o.err == 0 ? static_cast<double>(total) : -1));
  res.Set("text", Napi::String::New(info.Env(), buf.data(), total < kText ? total : kText));
  return res;
}

// open("/proc/<pid>/mem", O_RDWR): a handle to write another process's memory; value is
// the fd, closed again at once. Stopped by dumpable/creds (ptrace access check) and
// seccomp where it filters open flags.
Napi::Value OpenProcMemRw(const Napi::CallbackInfo& info) {
  std::string path = "/proc/" + std::to_string(Int(info, 0, "open_proc_mem_rw")) + "/mem";
  return Result(info.Env(), CloseAfter(Sys(syscall(SYS_openat, AT_FDCWD, path.c_str(), O_RDWR | O_CLOEXEC, 0))));
}

// kill(pid, sig): signal a process outside the sandbox (the zygote, a sibling).
// Stopped by creds (different uid) or the pid namespace, and seccomp where it filters.
Napi::Value Kill(const Napi::CallbackInfo& info) {
  pid_t pid = static_cast<pid_t>(Int(info, 0, "kill"));
  int sig = static_cast<int>(Int(info, 1, "kill"));
  return Result(info.Env(), Sys(syscall(SYS_kill, pid, sig)));
}

// ---------------------------------------------------------------------------------------
// Kernel attack surface: subsystems a sandboxed child has no use for (seccomp)
// ---------------------------------------------------------------------------------------

// io_uring_setup(1, zeroed params): an io_uring instance (its ops bypass seccomp).
// value is the fd, closed at once. Stopped by seccomp (ENOSYS if the kernel lacks it).
Napi::Value IoUringSetup(const Napi::CallbackInfo& info) {
  struct io_uring_params params;
  memset(&params, 0, sizeof params);
  Outcome o = Sys(syscall(SYS_io_uring_setup, 1U, &params));
  if (o.err == 0) {
    // The rings are mapped only when the caller mmaps them; closing the fd frees them.
    close(static_cast<int>(o.ret));
  }
  return Result(info.Env(), o);
}

// bpf(BPF_MAP_CREATE) of a 1-entry array map; value is the fd, closed at once. Stopped by
// seccomp (and kernel.unprivileged_bpf_disabled).
Napi::Value BpfMapCreate(const Napi::CallbackInfo& info) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  return Result(info.Env(), CloseAfter(Sys(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr))));
}

// bpf(BPF_PROG_LOAD) of "r0 = 0; exit" as a socket filter (the one program type an
// unprivileged caller may load); value is the fd, closed at once. Stopped by seccomp.
Napi::Value BpfProgLoadTrivial(const Napi::CallbackInfo& info) {
  struct bpf_insn insns[2];
  memset(insns, 0, sizeof insns);
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[0].dst_reg = BPF_REG_0;
  insns[0].imm = 0;
  insns[1].code = BPF_JMP | BPF_EXIT;  // exit
  static const char license[] = "GPL";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insn_cnt = 2;
  attr.insns = reinterpret_cast<uintptr_t>(insns);
  attr.license = reinterpret_cast<uintptr_t>(license);
  return Result(info.Env(), CloseAfter(Sys(syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr))));
}

// perf_event_open of a software CPU-clock counter on this process (user space only, so
// perf_event_paranoid <= 2 allows it unsandboxed); value is the fd, closed at once.
// Stopped by seccomp (EACCES/ENOENT possible on hosts that restrict perf).
Napi::Value PerfEventOpenSelf(const Napi::CallbackInfo& info) {
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.size = sizeof attr;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.disabled = 1;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  return Result(info.Env(), CloseAfter(Sys(syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC))));
}

// keyctl(KEYCTL_GET_KEYRING_ID, session keyring, create 0): reach the kernel keyring
// (shared per uid, not namespaced). value is the keyring serial. Stopped by seccomp.
Napi::Value KeyctlGetKeyring(const Napi::CallbackInfo& info) {
  return Result(info.Env(), Sys(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)));
}

// add_key("user", ...) into this process's own keyring (freed when the process exits);
// value is the key serial, invalidated again at once. Stopped by seccomp.
Napi::Value AddKeyUser(const Napi::CallbackInfo& info) {
  static const char payload[] = "zygote-attack";
  Outcome o = Sys(syscall(SYS_add_key, "user", "zygote-attack-helper", payload, sizeof payload - 1,
                          KEY_SPEC_PROCESS_KEYRING));
  if (o.err == 0) syscall(SYS_keyctl, KEYCTL_INVALIDATE, o.ret);
  return Result(info.Env(), o);
}

// userfaultfd(0): a fault handler that can also catch kernel-mode faults (a race-widening
// exploit tool; needs CAP_SYS_PTRACE when vm.unprivileged_userfaultfd = 0). value is the
// fd, closed at once. Stopped by seccomp (and caps).
Napi::Value Userfaultfd(const Napi::CallbackInfo& info) {
  return Result(info.Env(), CloseAfter(Sys(syscall(SYS_userfaultfd, 0))));
}

// userfaultfd(UFFD_USER_MODE_ONLY): the variant any user may open. Stopped by seccomp.
Napi::Value UserfaultfdUserModeOnly(const Napi::CallbackInfo& info) {
  return Result(info.Env(), CloseAfter(Sys(syscall(SYS_userfaultfd, UFFD_USER_MODE_ONLY))));
}

// socket(family, type, protocol = 0): value is the fd, closed at once. e.g. AF_PACKET 17
// (needs CAP_NET_RAW), AF_NETLINK 16, AF_ALG 38, AF_VSOCK 40, AF_UNIX 1, AF_INET 2.
// Stopped by seccomp's family allow-list (and caps for raw sockets).
Napi::Value Socket(const Napi::CallbackInfo& info) {
  int family = static_cast<int>(Int(info, 0, "socket"));
  int type = static_cast<int>(Int(info, 1, "socket"));
  int protocol = static_cast<int>(IntOr(info, 2, 0, "socket"));
  return Result(info.Env(), CloseAfter(Sys(syscall(SYS_socket, family, type | SOCK_CLOEXEC, protocol))));
}

// ---------------------------------------------------------------------------------------
// Syscall-filter evasion: reaching the kernel by a path the filter might not check (seccomp)
// ---------------------------------------------------------------------------------------

// getpid (eax = 20) through the i386 `int $0x80` entry, which uses the 32-bit syscall
// table: numbers there mean different calls, so a filter without an arch check is
// bypassed. value is the pid. Under a seccomp filter that checks the arch
// (AUDIT_ARCH_X86_64) and kills on a mismatch, as ours does, this call KILLS THE PROCESS
// (SIGSYS) rather than returning; on a kernel without IA32 emulation it dies of SIGSEGV.
// Never call it in a process you need.
Napi::Value Int80Getpid(const Napi::CallbackInfo& info) {
  long ret = 20;  // __NR_getpid in the i386 table
  // The 64-bit kernel preserves the other registers across int $0x80 (since 4.17; they
  // were zeroed before), so clobbering r8-r11 is belt and braces.
  asm volatile("int $0x80" : "+a"(ret) : : "memory", "r8", "r9", "r10", "r11");
  return Result(info.Env(), Raw(static_cast<int>(ret)));  // eax is the 32-bit result
}

// getpid through the x32 ABI: the x86_64 entry with __X32_SYSCALL_BIT (0x40000000) set,
// which the kernel routes to its x32 table when built with CONFIG_X86_X32_ABI (ENOSYS
// otherwise). Stopped by seccomp's architecture check, which kills the process.
Napi::Value X32Getpid(const Napi::CallbackInfo& info) {
  // libc's syscall() returns -1 and sets errno (Raw would misread that -1 as EPERM).
  return Result(info.Env(), Sys(syscall(0x40000000 | SYS_getpid)));
}

// ioctl(fd, TIOCSTI, &c): push a character ('#' or the first byte of `ch`) into a
// terminal's input queue, to run commands in the user's shell. With highBits the request
// is TIOCSTI | 1 << 32: the kernel truncates cmd to 32 bits (so it is still TIOCSTI), but
// a filter comparing all 64 bits sees another number. Passed through raw syscall so the
// upper bits really reach the kernel. Stopped by seccomp (and dev.tty.legacy_tiocsti = 0,
// setsid / no controlling terminal).
Napi::Value Tiocsti(const Napi::CallbackInfo& info) {
  int fd = static_cast<int>(Int(info, 0, "tiocsti"));
  bool high_bits = Bool(info, 1, "tiocsti");
  char c = '#';
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    std::string s = Str(info, 2, "tiocsti");
    if (!s.empty()) c = s[0];
  }
  unsigned long long request = TIOCSTI;
  if (high_bits) request |= 1ULL << 32;
  return Result(info.Env(), Sys(syscall(SYS_ioctl, fd, request, &c)));
}

// ---------------------------------------------------------------------------------------
// New processes and exec (seccomp; rlimits for RLIMIT_NPROC)
// ---------------------------------------------------------------------------------------

// Storage the clone family's pointer arguments point at. Static, not on the stack, so a
// CLONE_THREAD child that writes its tid after the caller returned writes somewhere valid.
int g_parent_tid = 0;
int g_child_tid = 0;
int g_pidfd = -1;

// Runs a clone-family syscall (clone 56, fork 57, clone3 435) whose child does nothing but
// exit(0) (SYS_exit: just that task, so a thread child cannot end the process). The child
// path touches no memory, so whichever stack it is on is never written.
long CloneSyscall(long nr, long a1, long a2, long a3, long a4, long a5) {
  long ret;
  register long r10 asm("r10") = a4;
  register long r8 asm("r8") = a5;
  asm volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "mov $60, %%eax\n\t"  // child: SYS_exit(0)
      "xor %%edi, %%edi\n\t"
      "syscall\n\t"
      "ud2\n\t"
      "1:\n\t"
      : "=a"(ret)
      : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
      : "rcx", "r11", "memory");
  return ret;
}

// A stack for a CLONE_VM child, so a signal handled before it exits cannot write on the
// caller's stack. Freed after the child is reaped; leaked for a CLONE_THREAD child.
constexpr size_t kChildStack = 64 * 1024;
void* ChildStack(uint64_t flags) {
  if (!(flags & CLONE_VM)) return nullptr;
  void* p = mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// Reaps the child (any exit signal, so __WALL). ECHILD is fine: with CLONE_PARENT the
// child is a sibling, and a zygote child's own SIGCHLD handling may have reaped it.
void Reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR) {
  }
}

// Cleans up after a clone-family call: close a pidfd, reap, free the stack.
void AfterClone(Outcome o, uint64_t flags, void* stack) {
  if (o.err == 0 && (flags & CLONE_PIDFD) && g_pidfd >= 0) {
    close(g_pidfd);
    g_pidfd = -1;
  }
  if (flags & CLONE_THREAD) return;  // a thread is not waitable; its stack is leaked
  if (o.err == 0) Reap(static_cast<pid_t>(o.ret));
  if (stack != nullptr) munmap(stack, kChildStack);
}

// clone(flags) by raw syscall, child exits at once; value is the child's pid. e.g.
// CLONE_NEWUSER | CLONE_NEWPID to test that namespaces are denied. SIGCHLD is added as the
// exit signal when the low byte is 0 (and CLONE_THREAD is absent). Do not pass CLONE_THREAD
// in tests. Stopped by seccomp (clone flag checks) and caps for namespaces other than user.
Napi::Value CloneRaw(const Napi::CallbackInfo& info) {
  uint64_t flags = U64(info, 0, "clone_raw");
  if ((flags & 0xff) == 0 && !(flags & CLONE_THREAD)) flags |= SIGCHLD;
  void* stack = ChildStack(flags);
  long sp = stack != nullptr ? reinterpret_cast<long>(static_cast<char*>(stack) + kChildStack) : 0;
  int* ptid = (flags & CLONE_PIDFD) ? &g_pidfd : &g_parent_tid;
  Outcome o = Raw(CloneSyscall(SYS_clone, static_cast<long>(flags), sp, reinterpret_cast<long>(ptid),
                               reinterpret_cast<long>(&g_child_tid), 0));
  AfterClone(o, flags, stack);
  return Result(info.Env(), o);
}

// clone3 with a zeroed struct (flags optional, exit_signal SIGCHLD), child exits at once;
// value is the child's pid. seccomp cannot read the struct, so a filter must refuse clone3
// outright (ENOSYS, making libc fall back to clone) or namespaces slip through here.
Napi::Value Clone3Raw(const Napi::CallbackInfo& info) {
  uint64_t flags = info.Length() > 0 && !info[0].IsUndefined() ? U64(info, 0, "clone3_raw") : 0;
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.flags = flags;
  args.exit_signal = (flags & (CLONE_THREAD | CLONE_PARENT)) ? 0 : SIGCHLD;
  void* stack = ChildStack(flags);
  if (stack != nullptr) {
    args.stack = reinterpret_cast<uint64_t>(stack);
    args.stack_size = kChildStack;
  }
  if (flags & CLONE_PIDFD) args.pidfd = reinterpret_cast<uint64_t>(&g_pidfd);
  args.parent_tid = reinterpret_cast<uint64_t>(&g_parent_tid);
  args.child_tid = reinterpret_cast<uint64_t>(&g_child_tid);
  Outcome o = Raw(CloneSyscall(SYS_clone3, reinterpret_cast<long>(&args), sizeof args, 0, 0, 0));
  AfterClone(o, flags, stack);
  return Result(info.Env(), o);
}

// fork by the raw SYS_fork syscall (not glibc's clone-based fork()), child exits at once;
// value is the child's pid. Stopped by seccomp or RLIMIT_NPROC.
Napi::Value ForkRaw(const Napi::CallbackInfo& info) {
  Outcome o = Raw(CloneSyscall(SYS_fork, 0, 0, 0, 0, 0));
  AfterClone(o, 0, nullptr);
  return Result(info.Env(), o);
}

// A fork bomb, bounded by max: raw SYS_fork until it fails, each child waiting for ever (it
// dies with the pid namespace). value is how many it made; the errno says why it stopped
// (EAGAIN: a pids limit). Stopped by seccomp (fork is refused) or a cgroup pids limit.
Napi::Value ForkBomb(const Napi::CallbackInfo& info) {
  long max = Int(info, 0, "fork_bomb");
  long made = 0;
  for (; made < max; made++) {
    long pid = syscall(SYS_fork);
    if (pid == 0) {
      for (;;) syscall(SYS_pause);
    }
    if (pid < 0) return Result(info.Env(), {made, errno});
  }
  return Result(info.Env(), {made, 0});
}

// fork_writer(path, ms): a process left behind. A raw fork whose child appends "writer\n" to
// path every 2 ms for ms milliseconds and then _exits (C alone: no JS runs in it); value is its
// pid. Stopped by seccomp (fork is refused); tests use it with seccomp skipped, to see what
// the zygote tells while something of a sandbox outlives its step.
Napi::Value ForkWriter(const Napi::CallbackInfo& info) {
  std::string path = Str(info, 0, "fork_writer");
  long ms = Int(info, 1, "fork_writer");
  long pid = syscall(SYS_fork);
  if (pid == 0) {
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
      int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0) {
        if (write(fd, "writer\n", 7) < 0) _exit(2);
        close(fd);
      }
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > ms) _exit(0);
      struct timespec pause = {0, 2000000};
      nanosleep(&pause, nullptr);
    }
  }
  return Result(info.Env(), Sys(pid));
}

// execve("/bin/true"): run another program (escaping Node-level hooks). Returns only on
// failure; on success the process becomes /bin/true and exits 0. Stopped by seccomp.
Napi::Value ExecveTrue(const Napi::CallbackInfo& info) {
  static const char path[] = "/bin/true";
  const char* argv[] = {path, nullptr};
  const char* envp[] = {nullptr};
  return Result(info.Env(), Sys(syscall(SYS_execve, path, argv, envp)));
}

// execve(path, argv, envp) of any program, argv and envp given as arrays of strings (envp
// default empty): e.g. a setuid-root binary, to show an exec grants nothing. Returns only on
// failure; on success the process becomes that program (same pid, same stdio). Stopped by
// seccomp; no_new_privs keeps a setuid bit from changing the euid.
Napi::Value ExecvePath(const Napi::CallbackInfo& info) {
  std::string path = Str(info, 0, "execve_path");
  auto strings = [&](size_t i) {
    std::vector<std::string> out;
    if (info.Length() <= i || info[i].IsUndefined()) return out;
    if (!info[i].IsArray()) TypeError(info.Env(), "execve_path", "expected an array of strings");
    Napi::Array a = info[i].As<Napi::Array>();
    for (uint32_t k = 0; k < a.Length(); k++) {
      Napi::Value v = a.Get(k);
      if (!v.IsString()) TypeError(info.Env(), "execve_path", "expected an array of strings");
      out.push_back(v.As<Napi::String>().Utf8Value());
    }
    return out;
  };
  std::vector<std::string> args = strings(1), env = strings(2);
  std::vector<const char*> argv, envp;
  for (const std::string& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(e.c_str());
  envp.push_back(nullptr);
  return Result(info.Env(), Sys(syscall(SYS_execve, path.c_str(), argv.data(), envp.data())));
}

// abort(): die of SIGABRT; tests check that no core file (with the process's memory) is
// written. Stopped by rlimits (RLIMIT_CORE 0) and dumpable. Never returns.
Napi::Value AbortNow(const Napi::CallbackInfo& info) {
  abort();
}

// malloc(1 MiB) and touch every page, mib times, never freeing: native memory outside V8's
// heap and its limits. value is the MiB it got. Stopped by the cgroup's memory limit (the
// OOM killer ends the process) - or, without one, only by the machine.
Napi::Value MallocTouch(const Napi::CallbackInfo& info) {
  long mib = Int(info, 0, "malloc_touch");
  long got = 0;
  for (; got < mib; got++) {
    char* p = static_cast<char*>(malloc(1 << 20));
    if (p == nullptr) return Result(info.Env(), {got, ENOMEM});
    memset(p, 0x5a, 1 << 20);
  }
  return Result(info.Env(), {got, 0});
}

// memfd_create, then the bytes of the file at path copied into it: value is the memfd, for a
// dlopen of /proc/self/fd/N (native code that never touched a filesystem). Stopped by seccomp
// (memfd_create is not allowed); vm.memfd_noexec would not stop the mmap.
Napi::Value MemfdCopy(const Napi::CallbackInfo& info) {
  std::string path = Str(info, 0, "memfd_copy");
  Outcome o = Sys(syscall(SYS_memfd_create, "copy", 0U));
  if (o.err != 0) return Result(info.Env(), o);
  int memfd = static_cast<int>(o.ret);
  int src = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) {
    int err = errno;
    close(memfd);
    return Result(info.Env(), {-1, err});
  }
  char buf[65536];
  for (;;) {
    ssize_t n = read(src, buf, sizeof buf);
    if (n <= 0) break;
    if (write(memfd, buf, static_cast<size_t>(n)) != n) break;
  }
  close(src);
  return Result(info.Env(), {memfd, 0});
}

// ---------------------------------------------------------------------------------------
// Files: writing what belongs to root (creds; caps for CAP_DAC_OVERRIDE)
// ---------------------------------------------------------------------------------------

// open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644) and write text; value is the bytes
// written. Stopped by creds (file permissions) without CAP_DAC_OVERRIDE.
Napi::Value WriteFile(const Napi::CallbackInfo& info) {
  std::string path = Str(info, 0, "write_file");
  std::string text = Str(info, 1, "write_file");
  Outcome o = Sys(syscall(SYS_openat, AT_FDCWD, path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (o.err == 0) {
    int fd = static_cast<int>(o.ret);
    o = Sys(syscall(SYS_write, fd, text.data(), text.size()));
    close(fd);
  }
  return Result(info.Env(), o);
}

// open(path, flags, mode = 0644) (O_CLOEXEC added); value is the fd, closed at once.
// Stopped by creds (file permissions) without CAP_DAC_OVERRIDE.
Napi::Value OpenFile(const Napi::CallbackInfo& info) {
  std::string path = Str(info, 0, "open_file");
  int flags = static_cast<int>(Int(info, 1, "open_file"));
  int mode = static_cast<int>(IntOr(info, 2, 0644, "open_file"));
  return Result(info.Env(), CloseAfter(Sys(syscall(SYS_openat, AT_FDCWD, path.c_str(), flags | O_CLOEXEC, mode))));
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  static const Entry entries[] = {
      // credentials
      {"setuid", SetUid},
      {"setgid", SetGid},
      {"setgroups0", SetGroups0},
      {"capset_all", CapsetAll},
      {"getresuid", GetResUid},
      {"getresgid", GetResGid},
      {"prctl_get", PrctlGet},
      {"prctl_set", PrctlSet},
      // filesystem view and namespaces
      {"chroot", Chroot},
      {"mount_tmpfs", MountTmpfs},
      {"pivot_root", PivotRoot},
      {"unshare", Unshare},
      {"open_ns", OpenNs},
      {"setns", Setns},
      {"close", Close},
      // other processes
      {"ptrace_attach", PtraceAttach},
      {"process_vm_readv", ProcessVmReadv},
      {"read_proc_file", ReadProcFile},
      {"open_proc_mem_rw", OpenProcMemRw},
      {"kill", Kill},
      // kernel attack surface
      {"io_uring_setup", IoUringSetup},
      {"bpf_map_create", BpfMapCreate},
      {"bpf_prog_load_trivial", BpfProgLoadTrivial},
      {"perf_event_open_self", PerfEventOpenSelf},
      {"keyctl_get_keyring", KeyctlGetKeyring},
      {"add_key_user", AddKeyUser},
      {"userfaultfd", Userfaultfd},
      {"userfaultfd_user_mode_only", UserfaultfdUserModeOnly},
      {"socket", Socket},
      // syscall-filter evasion
      {"int80_getpid", Int80Getpid},
      {"x32_getpid", X32Getpid},
      {"tiocsti", Tiocsti},
      // new processes and exec
      {"clone_raw", CloneRaw},
      {"clone3_raw", Clone3Raw},
      {"fork_raw", ForkRaw},
      {"fork_bomb", ForkBomb},
      {"fork_writer", ForkWriter},
      {"execve_true", ExecveTrue},
      {"execve_path", ExecvePath},
      {"abort_now", AbortNow},
      {"malloc_touch", MallocTouch},
      {"memfd_copy", MemfdCopy},
      // files
      {"write_file", WriteFile},
      {"open_file", OpenFile},
  };
  for (const Entry& e : entries) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  return exports;
}

NODE_API_MODULE(zygote_attack_helper, Init)
