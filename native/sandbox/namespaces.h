// namespaces: the child's own network, IPC, UTS, cgroup and mount namespaces (unshared after
// fork, as root).
#pragma once

namespace zygote::sandbox {

// unshare(flags); returns 0 or an errno. A forked child is single-threaded here, which
// unshare(CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS) needs no more than that.
int Unshare(int flags);
// Brings up the loopback interface of a fresh network namespace (it starts down), so a step
// can still talk to itself on 127.0.0.1 and ::1 and to nothing else.
int LoopbackUp();
// In a fresh mount namespace: stops mount events propagating to or from the host
// (MS_REC | MS_PRIVATE on /), before the root is built.
int PrivateMounts();
// Names the fresh UTS namespace, so the host's name does not leak into the step.
int SetHostname(const char* name);

}  // namespace zygote::sandbox
