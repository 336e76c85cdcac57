// files: opening files a sandboxed step wrote without following its links, and mapping files
// read-only without copying them.
//
// The renderer (root) reads what an untrusted step left in an output directory the step could
// write. Any name there may be a symlink or a hard link to a file of the renderer's, a FIFO that
// blocks an open for ever, or a mount point; openat2(2) refuses all of these in the kernel, at
// every path component, with no check-then-open race.
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <unordered_set>

#include "errors.h"

namespace zygote {
namespace {

// openat2 answers EAGAIN when a rename or mount raced with a RESOLVE_BENEATH walk; a hostile
// step could keep renaming, so the retries are bounded.
constexpr int kOpenRetries = 16;

// The longest external buffer Node 20 accepts on 64-bit (node::Buffer::kMaxLength, which is
// v8::TypedArray::kMaxLength); later versions accept more, so this is on the safe side.
constexpr size_t kMaxBufferLength = size_t{1} << 32;

int FdArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": fd must be a number");
  int fd = info[i].As<Napi::Number>().Int32Value();
  if (fd < 0) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": fd must not be negative, got " + std::to_string(fd));
  return fd;
}

std::string PathArg(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": path must be a string");
  std::string path = info[i].As<Napi::String>().Utf8Value();
  // A C string would silently end at the NUL: "ok.txt\0../../x" must not open "ok.txt".
  if (path.find('\0') != std::string::npos) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": path must not contain a NUL byte");
  return path;
}

// ErrnoError with the path in the message and in .path, as Node's fs errors have it.
[[noreturn]] void ThrowPathErrno(Napi::Env env, const char* syscall, const std::string& path, int err) {
  Napi::Error error = ErrnoError(env, syscall, err);
  error.Set("path", Napi::String::New(env, path));
  error.Set("message", Napi::String::New(env, std::string(syscall) + " '" + path + "' failed: " + ErrnoName(err) + " (" + strerror(err) + ")"));
  throw error;
}

// openBeneath(dirFd, path, 'read' | 'write') -> fd.
// 'read' opens an existing file read-only. 'write' only ever creates a new file (O_EXCL, mode
// 0644 less the umask, readable by the sandbox uid that the directory is for): an existing name
// may be a step's hard link to a renderer file, which O_TRUNC would destroy.
// O_NONBLOCK so that opening a FIFO returns at once (then fstat says what it is) instead of
// waiting for a writer that never comes; regular files ignore it.
Napi::Value OpenBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirfd = FdArg(info, 0, "openBeneath");
  std::string path = PathArg(info, 1, "openBeneath");
  std::string mode = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  struct open_how how = {};
  how.flags = O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
  if (mode == "read") {
    how.flags |= O_RDONLY;
  } else if (mode == "write") {
    how.flags |= O_WRONLY | O_CREAT | O_EXCL;
    how.mode = 0644;
  } else {
    throw Napi::TypeError::New(env, "openBeneath: flags must be 'read' or 'write'");
  }
  // BENEATH: no absolute path, no '..' above dirfd. NO_SYMLINKS: no symlink in any component
  // (ELOOP). NO_MAGICLINKS: no /proc/PID/fd jumps. NO_XDEV: no mount point crossed (EXDEV),
  // so a bind mount the step could not make but we might cannot lead out either.
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  long fd = -1;
  for (int attempt = 0; attempt < kOpenRetries; attempt++) {
    fd = syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
    if (fd >= 0 || (errno != EAGAIN && errno != EINTR)) break;
  }
  if (fd < 0) ThrowPathErrno(env, "openat2", path, errno);
  return Napi::Number::New(env, static_cast<double>(fd));
}

// openDirectory(path) -> fd of a directory the caller names (trusted), to open beneath.
Napi::Value OpenDirectory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = PathArg(info, 0, "openDirectory");
  int fd;
  do fd = open(path.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) ThrowPathErrno(env, "open", path, errno);
  return Napi::Number::New(env, fd);
}

const char* TypeName(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "dir";
    case S_IFIFO: return "fifo";
    case S_IFLNK: return "symlink";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "char";
    case S_IFBLK: return "block";
    default: return "unknown";
  }
}

// fstatFile(fd) -> { type, size, nlink, dev, ino, uid, gid, mode }. Numbers are doubles, as in
// fs.fstatSync: an inode above 2^53 (overlayfs xino) loses its low bits.
Napi::Value FstatFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fstatFile");
  struct stat st;
  if (fstat(fd, &st) < 0) ThrowErrno(env, "fstat", errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", TypeName(st.st_mode));
  out.Set("size", static_cast<double>(st.st_size));
  out.Set("nlink", static_cast<double>(st.st_nlink));
  out.Set("dev", static_cast<double>(st.st_dev));
  out.Set("ino", static_cast<double>(st.st_ino));
  out.Set("uid", static_cast<double>(st.st_uid));
  out.Set("gid", static_cast<double>(st.st_gid));
  out.Set("mode", static_cast<double>(st.st_mode));
  return out;
}

// Start addresses of the live mappings mmapFile made, so unmapFile refuses other buffers.
// Guarded by a mutex: Worker threads load this addon too.
std::mutex mappings_mutex;
std::unordered_set<void*> mappings;

struct Mapping {
  void* addr;
  size_t length;
};

// Runs on the JS thread once V8 frees the buffer's backing store: after a GC collected the
// last reference, or soon after unmapFile detached it (Node defers it to an immediate).
void Unmap(Napi::Env, void*, Mapping* m) {
  {
    std::lock_guard<std::mutex> lock(mappings_mutex);
    mappings.erase(m->addr);
  }
  munmap(m->addr, m->length);
  delete m;
}

// mmapFile(fd, length?) -> ArrayBuffer over the file's first `length` bytes (all by default),
// without a copy. The fd may be closed at once: the mapping holds the file.
//
// PROT_READ: the buffer is read-only, so a write through a view of it is a SIGSEGV that ends
// the process. That is deliberate: a writable private map would turn each written page into
// anonymous memory silently, and no copy is what this is for.
// MAP_SHARED, not MAP_PRIVATE: for a read-only mapping they read the same, but a shared one can
// never hold anonymous (copied-on-write) pages nor count towards the commit charge, so under a
// cgroup memory limit every page stays clean page cache the kernel may drop and re-read.
// No MADV_SEQUENTIAL: Arrow reads its footer at the end, then columns in any order, and may come
// back to them; SEQUENTIAL would free pages just behind each read. Default readahead fits.
// No AdjustExternalMemory: these pages are file-backed page cache, not this process's
// anonymous memory. The kernel reclaims them under pressure on its own, and a GC frees no
// more of them than it can; reporting 2 GiB would make V8 run full GCs back to back for
// nothing. The cost: a dropped mapping lingers (address space, and the inode, so a deleted
// file's blocks) until a GC collects the buffer; unmapFile releases it deterministically.
Napi::Value MmapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "mmapFile");
  struct stat st;
  if (fstat(fd, &st) < 0) ThrowErrno(env, "fstat", errno);
  // A device's mmap can have side effects, a FIFO's or a directory's fails (ENODEV).
  if (!S_ISREG(st.st_mode)) throw Napi::TypeError::New(env, std::string("mmapFile: fd ") + std::to_string(fd) + " is a " + TypeName(st.st_mode) + ", not a regular file");
  size_t length = static_cast<size_t>(st.st_size);
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    double want = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
    if (!(want >= 0) || want != static_cast<double>(static_cast<int64_t>(want)))
      throw Napi::TypeError::New(env, "mmapFile: length must be a non-negative integer");
    // Touching a mapped page past the end of the file is a SIGBUS, never a short read.
    if (want > static_cast<double>(st.st_size))
      throw Napi::RangeError::New(env, "mmapFile: length " + std::to_string(static_cast<int64_t>(want)) + " is past the end of the file (" + std::to_string(st.st_size) + " bytes)");
    length = static_cast<size_t>(want);
  }
  // mmap of 0 bytes is EINVAL; an empty file is an empty buffer.
  if (length == 0) return Napi::ArrayBuffer::New(env, 0);
  // Node refuses a longer external buffer, and then both Node (which runs the finalizer at
  // once) and node-addon-api (which deletes its copy of it) free the same data: a double free
  // that aborts the process. So the length Node checks against is checked here first.
  if (length > kMaxBufferLength)
    throw Napi::RangeError::New(env, "mmapFile: " + std::to_string(length) + " bytes is more than one ArrayBuffer may hold here (" + std::to_string(kMaxBufferLength) + "); map less with the length argument");
  void* addr = mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) ThrowErrno(env, "mmap", errno);
  Mapping* m = new Mapping{addr, length};
  {
    std::lock_guard<std::mutex> lock(mappings_mutex);
    mappings.insert(addr);
  }
  return Napi::ArrayBuffer::New(env, addr, length, Unmap, m);
}

// unmapFile(buffer): detaches a buffer from mmapFile (every view of it then reads as empty,
// so no JS can touch the pages) and lets Node free it, which unmaps it on the event loop's
// next turn instead of whenever a GC gets to it. An empty buffer is just detached.
Napi::Value UnmapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "unmapFile: expected an ArrayBuffer from mmapFile");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  if (buffer.IsDetached()) throw Napi::TypeError::New(env, "unmapFile: the buffer is already detached (unmapped or transferred)");
  if (buffer.ByteLength() > 0) {
    std::lock_guard<std::mutex> lock(mappings_mutex);
    if (mappings.count(buffer.Data()) == 0) throw Napi::TypeError::New(env, "unmapFile: the buffer is not a mapping from mmapFile");
  }
  buffer.Detach();
  return env.Undefined();
}

}  // namespace

// sealedDataFd(bytes, inheritable) -> fd: a memfd holding bytes, sealed against any change, read
// position 0: how a zygote gets its configuration across spawn or execve without it ever being
// on argv (ps, and every child's /proc/1/cmdline, would show it). Close-on-exec unless
// inheritable: spawn() dups it into the child's slot itself, and any other program this process
// starts meanwhile must not get it; only an execve of this very process wants it kept.
Napi::Value SealedDataFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsBuffer() || !info[1].IsBoolean()) throw Napi::TypeError::New(env, "sealedDataFd(bytes, inheritable): a Buffer and a boolean");
  Napi::Buffer<char> data = info[0].As<Napi::Buffer<char>>();
  bool inheritable = info[1].As<Napi::Boolean>().Value();
  int fd = static_cast<int>(syscall(SYS_memfd_create, "zygote-config", MFD_ALLOW_SEALING | (inheritable ? 0U : MFD_CLOEXEC)));
  if (fd < 0) ThrowErrno(env, "memfd_create", errno);
  size_t off = 0;
  while (off < data.Length()) {
    ssize_t n = write(fd, data.Data() + off, data.Length() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      close(fd);
      ThrowErrno(env, "write(memfd)", err);
    }
    off += static_cast<size_t>(n);
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "seal(memfd)", err);
  }
  return Napi::Number::New(env, fd);
}

void InitFiles(Napi::Env env, Napi::Object exports) {
  exports.Set("openBeneath", Napi::Function::New(env, OpenBeneath, "openBeneath"));
  exports.Set("sealedDataFd", Napi::Function::New(env, SealedDataFd, "sealedDataFd"));
  exports.Set("openDirectory", Napi::Function::New(env, OpenDirectory, "openDirectory"));
  exports.Set("fstatFile", Napi::Function::New(env, FstatFile, "fstatFile"));
  exports.Set("mmapFile", Napi::Function::New(env, MmapFile, "mmapFile"));
  exports.Set("unmapFile", Napi::Function::New(env, UnmapFile, "unmapFile"));
}

}  // namespace zygote
