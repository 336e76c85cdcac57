// channel: the client's end of a zygote control socket, driven by the Node event loop.
//
// Node's net.Socket cannot receive SCM_RIGHTS, so the client watches the socket with a
// uv_poll_t on its own loop: no thread, no busy wait, no blocking recvmsg on the main
// thread. Each readable wake-up drains the socket packet by packet (bounded per wake-up so
// one chatty zygote cannot starve the loop) and hands each to JS with its fds.
#include "channel.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <deque>
#include <memory>
#include <vector>

#include "errors.h"
#include "fdpass.h"

namespace zygote {
namespace {

constexpr int kMaxPacketsPerWakeup = 64;

struct Outgoing {
  std::vector<char> data;
  // Copies (dup) of the fds to pass with it, owned here until sent or dropped.
  std::vector<int> fds;
};

class Channel : public Napi::ObjectWrap<Channel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Channel",
                       {InstanceMethod("send", &Channel::Send), InstanceMethod("close", &Channel::Close),
                        InstanceMethod("ref", &Channel::RefHandle), InstanceMethod("unref", &Channel::UnrefHandle)});
  }

  // new Channel(fd, maxBytes, onPacket(data, fds, truncated), onEnd(errorCode | null))
  // The channel owns fd from here on and closes it in close().
  explicit Channel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Channel>(info) {
    Napi::Env env = info.Env();
    fd_ = info[0].As<Napi::Number>().Int32Value();
    max_bytes_ = info[1].As<Napi::Number>().Uint32Value();
    on_packet_ = Napi::Persistent(info[2].As<Napi::Function>());
    on_end_ = Napi::Persistent(info[3].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "zygote:channel");
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc != 0) {
      delete poll_;
      poll_ = nullptr;
      throw Napi::Error::New(env, std::string("uv_poll_init failed: ") + uv_err_name(rc));
    }
    poll_->data = this;
    Napi::ObjectWrap<Channel>::Ref();  // keep the JS object alive while the handle is open
    UpdateInterest();
  }

  ~Channel() override { Shutdown(); }

 private:
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) throw Napi::Error::New(env, "channel is closed");
    Napi::Buffer<char> data = info[0].As<Napi::Buffer<char>>();
    // fds to pass with the packet (the caller keeps its own and closes them when it likes).
    std::vector<int> fds;
    if (info.Length() > 1 && info[1].IsArray()) {
      Napi::Array arr = info[1].As<Napi::Array>();
      if (arr.Length() > static_cast<uint32_t>(kMaxFdsPerPacket)) throw Napi::RangeError::New(env, "too many fds for one packet");
      for (uint32_t i = 0; i < arr.Length(); i++) fds.push_back(arr.Get(i).As<Napi::Number>().Int32Value());
    }
    if (queue_.empty()) {
      int err;
      if (SendPacket(fd_, data.Data(), data.Length(), fds.data(), static_cast<int>(fds.size()), &err)) return env.Undefined();
      if (err != 0) ThrowErrno(env, "sendmsg", err);
    }
    // The socket is full: keep the packet, and copies of its fds, until the loop says it is writable.
    Outgoing o{std::vector<char>(data.Data(), data.Data() + data.Length()), {}};
    for (int fd : fds) {
      int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
      if (copy < 0) {
        int e = errno;
        CloseAll(o.fds);
        ThrowErrno(env, "fcntl(F_DUPFD_CLOEXEC)", e);
      }
      o.fds.push_back(copy);
    }
    queue_.push_back(std::move(o));
    UpdateInterest();
    return env.Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  Napi::Value RefHandle(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value UnrefHandle(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  void UpdateInterest() {
    if (poll_ == nullptr) return;
    int events = UV_READABLE | UV_DISCONNECT;
    if (!queue_.empty()) events |= UV_WRITABLE;
    uv_poll_start(poll_, events, OnPoll);
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    Channel* self = static_cast<Channel*>(handle->data);
    if (self == nullptr) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    if (status < 0) {
      self->End(uv_err_name(status));
      return;
    }
    if (events & UV_WRITABLE) self->Flush();
    if (self->fd_ >= 0 && (events & (UV_READABLE | UV_DISCONNECT))) self->Drain();
  }

  void Flush() {
    while (!queue_.empty()) {
      int err;
      Outgoing& o = queue_.front();
      if (!SendPacket(fd_, o.data.data(), o.data.size(), o.fds.data(), static_cast<int>(o.fds.size()), &err)) {
        if (err != 0) End(ErrnoName(err));
        else UpdateInterest();
        return;
      }
      CloseAll(o.fds);
      queue_.pop_front();
    }
    UpdateInterest();
  }

  void Drain() {
    Napi::Env env = Env();
    for (int i = 0; i < kMaxPacketsPerWakeup && fd_ >= 0; i++) {
      Packet p;
      int err;
      RecvStatus st = RecvPacket(fd_, max_bytes_, &p, &err);
      if (st == RecvStatus::kWouldBlock) return;
      if (st == RecvStatus::kEof) {
        End(err != 0 ? ErrnoName(err) : nullptr);
        return;
      }
      Napi::Array fds = Napi::Array::New(env, p.fds.size());
      for (size_t k = 0; k < p.fds.size(); k++) fds.Set(static_cast<uint32_t>(k), p.fds[k]);
      Call(on_packet_, {Napi::Buffer<char>::Copy(env, p.data.data(), p.data.size()), fds,
                        Napi::Boolean::New(env, p.truncated)});
    }
  }

  void End(const char* code) {
    if (ended_) return;
    ended_ = true;
    Napi::Env env = Env();
    Shutdown();
    Call(on_end_, {code ? Napi::String::New(env, code).As<Napi::Value>() : env.Null()});
  }

  // Calls back into JS as an event-loop callback (microtasks run after it); a throw in the
  // callback is reported as an uncaught exception rather than lost.
  void Call(Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args) {
    Napi::Env env = Env();
    try {
      fn.MakeCallback(Value(), args, *context_);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  void Shutdown() {
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
      Napi::ObjectWrap<Channel>::Unref();
    }
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
    for (Outgoing& o : queue_) CloseAll(o.fds);
    queue_.clear();
  }

  static void CloseAll(std::vector<int>& fds) {
    for (int fd : fds) close(fd);
    fds.clear();
  }

  int fd_ = -1;
  uint32_t max_bytes_ = 0;
  bool ended_ = false;
  uv_poll_t* poll_ = nullptr;
  std::deque<Outgoing> queue_;
  Napi::FunctionReference on_packet_;
  Napi::FunctionReference on_end_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void InitChannel(Napi::Env env, Napi::Object exports) { exports.Set("Channel", Channel::Define(env)); }

}  // namespace zygote
