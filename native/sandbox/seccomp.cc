// seccomp: the syscall filter. Compiled once in the zygote (prepare), installed in each child (apply).
//
// The policy (which syscalls, which action, which argument checks) is written in TS
// (zygote/sandbox/seccomp-policy.ts) and handed here as plain rules; libseccomp compiles it
// to BPF once, at zygote start. Forked children only install the finished program, so a
// child does no allocation and no policy work between fork and its first line of JS.
#include "seccomp.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "../errors.h"

namespace zygote::sandbox {
namespace {

std::vector<std::vector<sock_filter>> g_programs;

uint64_t U64(Napi::Env env, Napi::Value v, const std::string& what) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d < 0 || d > 9007199254740991.0) throw Napi::RangeError::New(env, what + " must be a non-negative safe integer");
    return static_cast<uint64_t>(d);
  }
  throw Napi::TypeError::New(env, what + " must be a number or bigint");
}

uint32_t Action(Napi::Env env, Napi::Object rule, const std::string& name) {
  std::string action = rule.Get("action").As<Napi::String>().Utf8Value();
  if (action == "allow") return SCMP_ACT_ALLOW;
  if (action == "kill") return SCMP_ACT_KILL_PROCESS;
  if (action == "errno") return SCMP_ACT_ERRNO(rule.Get("errno").As<Napi::Number>().Uint32Value());
  throw Napi::Error::New(env, "seccomp rule for " + name + ": unknown action " + action);
}

struct Ctx {
  scmp_filter_ctx ctx;
  ~Ctx() { seccomp_release(ctx); }
};

void Check(Napi::Env env, int rc, const std::string& what) {
  if (rc < 0) throw ErrnoError(env, what.c_str(), -rc);
}

// compileSeccomp(rules: {name, action, errno?, args?: {index, op, value, mask?}[]}[],
//                defaultErrno: number) -> id
// Architecture: x86_64 only. A syscall made through another ABI (int 0x80 i386, x32) kills
// the process (SCMP_FLTATR_ACT_BADARCH).
Napi::Value CompileSeccomp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array rules = info[0].As<Napi::Array>();
  uint32_t default_errno = info[1].As<Napi::Number>().Uint32Value();
  Ctx c{seccomp_init(SCMP_ACT_ERRNO(default_errno))};
  if (c.ctx == nullptr) throw Napi::Error::New(env, "seccomp_init failed");
  Check(env, seccomp_attr_set(c.ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "seccomp_attr_set(ACT_BADARCH)");
  // The child sets no_new_privs itself, as its own step; libseccomp must not do it on load.
  Check(env, seccomp_attr_set(c.ctx, SCMP_FLTATR_CTL_NNP, 0), "seccomp_attr_set(CTL_NNP)");
  for (uint32_t i = 0; i < rules.Length(); i++) {
    Napi::Object rule = rules.Get(i).As<Napi::Object>();
    std::string name = rule.Get("name").As<Napi::String>().Utf8Value();
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) throw Napi::Error::New(env, "seccomp policy names an unknown syscall: " + name);
    uint32_t action = Action(env, rule, name);
    std::vector<scmp_arg_cmp> cmps;
    if (rule.Has("args") && rule.Get("args").IsArray()) {
      Napi::Array args = rule.Get("args").As<Napi::Array>();
      for (uint32_t k = 0; k < args.Length(); k++) {
        Napi::Object a = args.Get(k).As<Napi::Object>();
        unsigned index = a.Get("index").As<Napi::Number>().Uint32Value();
        std::string op = a.Get("op").As<Napi::String>().Utf8Value();
        uint64_t value = U64(env, a.Get("value"), name + " arg value");
        if (op == "eq") {
          cmps.push_back(SCMP_CMP(index, SCMP_CMP_EQ, value));
        } else if (op == "masked_eq") {
          uint64_t mask = U64(env, a.Get("mask"), name + " arg mask");
          cmps.push_back(SCMP_CMP(index, SCMP_CMP_MASKED_EQ, mask, value));
        } else {
          throw Napi::Error::New(env, "seccomp rule for " + name + ": unknown comparison " + op);
        }
      }
    }
    int rc = seccomp_rule_add_array(c.ctx, action, nr, static_cast<unsigned>(cmps.size()), cmps.data());
    if (rc < 0) throw Napi::Error::New(env, "seccomp rule for " + name + " rejected by libseccomp: " + ErrnoName(-rc));
  }
  // libseccomp 2.5 exports BPF only to an fd: a memfd, read back into memory.
  int fd = memfd_create("zygote-seccomp", MFD_CLOEXEC);
  if (fd < 0) ThrowErrno(env, "memfd_create", errno);
  int rc = seccomp_export_bpf(c.ctx, fd);
  if (rc < 0) {
    close(fd);
    throw ErrnoError(env, "seccomp_export_bpf", -rc);
  }
  off_t size = lseek(fd, 0, SEEK_END);
  std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(fd, program.data(), static_cast<size_t>(size), 0) != size) {
    int e = errno;
    close(fd);
    ThrowErrno(env, "pread(seccomp bpf)", e);
  }
  close(fd);
  g_programs.push_back(std::move(program));
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", static_cast<double>(g_programs.size() - 1));
  out.Set("instructions", static_cast<double>(g_programs.back().size()));
  return out;
}

}  // namespace

const std::vector<sock_filter>* SeccompProgram(int id) {
  if (id < 0 || static_cast<size_t>(id) >= g_programs.size()) return nullptr;
  return &g_programs[static_cast<size_t>(id)];
}

int ApplySeccomp(const std::vector<sock_filter>& program) {
  struct sock_fprog prog = {static_cast<unsigned short>(program.size()), const_cast<sock_filter*>(program.data())};
  // TSYNC: every thread of the process gets the filter, or the call fails. A forked child
  // has one thread, but the flag makes that an enforced fact rather than an assumption.
  long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
  if (rc < 0) return errno;
  if (rc > 0) return EBUSY;  // TSYNC failure: rc is the id of a thread that could not sync
  return 0;
}

void InitSeccomp(Napi::Env env, Napi::Object exports) {
  exports.Set("compileSeccomp", Napi::Function::New(env, CompileSeccomp, "compileSeccomp"));
}

}  // namespace zygote::sandbox
