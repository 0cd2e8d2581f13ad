// The seccomp allow-list of a template worker process (thawd
// --template-worker), applied on its main thread right after Landlock and
// before it starts any thread, so every thread of the worker runs under it;
// vCPU and vsock muxer threads add their own, narrower filters on top.
//
// What it leaves out is what a guest that broke into the worker would reach
// for: no execve, no new processes (clone only with CLONE_THREAD; clone3
// fails with ENOSYS so glibc falls back to clone), no sockets but unix ones
// (no network at all), no ptrace or process_vm_*, signals only to its own
// threads, no executable memory, no mount, namespace, key, BPF or module
// calls, and ioctl only with the KVM, userfaultfd and pagemap requests thaw
// issues and a few fd/tty ones. Paths are Landlock's job.
#pragma once

#include <vector>

#include "base/seccomp_filter.h"

namespace thaw::daemon {

// `own_pid`: the worker's pid, the only target tgkill may name.
std::vector<SeccompRule> template_worker_rules(pid_t own_pid);

// Compiled once per process, for the calling process's pid.
const SeccompFilter& template_worker_filter();

}  // namespace thaw::daemon
