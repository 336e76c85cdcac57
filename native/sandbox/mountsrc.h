// mountsrc: what a client's mount source may be. The client opens each source itself, with its
// own credentials, and passes the fd (SCM_RIGHTS); root never resolves a client's path.
#pragma once

namespace zygote::sandbox {

// Why a source fd is refused. A source must be a directory or a regular file (not a symlink,
// device, FIFO or socket) on a filesystem that holds data: never procfs, sysfs, cgroupfs,
// devtmpfs, debugfs, securityfs, bpf, tracefs or another pseudo filesystem, whose files are
// the kernel's (a host tunable, another process).
enum class SourceProblem { kNone, kUnexaminable, kSymlink, kNotDirOrFile, kPseudoFs };

// Checks a source fd. *fs names the filesystem of a pseudo filesystem; *err is the errno to
// report (the failed call's; EINVAL for a wrong kind; EPERM for a pseudo filesystem). Only
// fstat, fstatfs, statx and statmount: async-signal-safe.
SourceProblem CheckMountSource(int fd, const char** fs, int* err);

// The kind of source fd: true for a directory (after RefuseMountSource said it is fine).
bool IsDirectory(int fd);

}  // namespace zygote::sandbox
