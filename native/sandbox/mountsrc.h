// mountsrc: what a client's mount source may be. The client opens each source itself, with its
// own credentials, and passes the fd (SCM_RIGHTS); root never resolves a client's path.
#pragma once

namespace zygote::sandbox {

// Why a source fd is refused: nullptr if it is fine. A source must be a directory or a regular
// file (not a symlink, device, FIFO or socket) on a filesystem that holds data: never procfs,
// sysfs, cgroupfs, devtmpfs, debugfs, securityfs, bpf, tracefs or another pseudo filesystem,
// whose files are the kernel's (a host tunable, another process). *fs names the filesystem of
// a refused pseudo filesystem. Only fstat, fstatfs, statx and statmount: async-signal-safe.
// *err is the errno to report (ENOTDIR-like kinds: EINVAL; pseudo filesystems: EPERM).
const char* RefuseMountSource(int fd, const char** fs, int* err);

// The kind of source fd: true for a directory (after RefuseMountSource said it is fine).
bool IsDirectory(int fd);

}  // namespace zygote::sandbox
