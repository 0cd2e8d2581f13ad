// Lines of /proc/self/status (and other small kernel text files), for code
// that must check the process's own state before an irreversible step (one
// thread before Landlock or a user namespace; the capabilities left after
// dropping them).
#pragma once

#include <string>

namespace thaw {

// The value of `key` ("Threads", "CapEff", "Seccomp"), without the key,
// the colon and leading blanks; "" when the file or the line is missing.
std::string proc_self_status(const std::string& key);

// The "Threads" line as a number; 0 when it cannot be read.
int current_thread_count();

// A small text file the kernel writes (/proc/self/mountinfo, a cgroup's
// cgroup.controllers), whole; "" when it cannot be read, which callers
// treat as "the kernel does not offer this".
std::string read_kernel_text(const std::string& path);

}  // namespace thaw
