// init: pid 1 of a child's pid namespace, a tiny reaper in C that never runs JS.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <vector>

namespace zygote {

// Runs in the original child, which is pid 1 of its own pid namespace, after it forked the
// step (pid 2) with every signal blocked. Reaps everything, forwards the signals the zygote
// sends (kill requests) to the step, and when the step is gone writes its wait status to
// report_fd (an exit record) and exits. Closes every other fd first and, if filter is not
// null, confines itself to the few syscalls it needs.
[[noreturn]] void RunInit(pid_t step, int report_fd, const std::vector<sock_filter>* filter);

}  // namespace zygote
