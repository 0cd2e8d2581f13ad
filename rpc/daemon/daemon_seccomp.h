// thawd's own seccomp allow-lists, one per kind of process (the vCPU and
// vsock muxer threads add theirs on top, vmm/vcpu_seccomp.h and
// devices/virtio/vsock_seccomp.h). Both are applied on the process's main
// thread before it starts the threads that will run under them, so every
// later thread inherits the filter. A forbidden call ends that process and
// names the call (base/seccomp_filter.h).
//
// 'worker', a template worker (thawd --template-worker), applied right
// after Landlock: what it leaves out is what a guest that broke into the
// worker would reach for: no execve, no new processes (clone only with
// CLONE_THREAD; clone3 fails with ENOSYS so glibc falls back to clone), no
// sockets but unix ones (no network at all), no ptrace or process_vm_*,
// signals only to its own threads, no executable memory, no mount,
// namespace, key, BPF or module calls, and ioctl only with the KVM,
// userfaultfd and pagemap requests thaw issues and a few fd/tty ones.
// Paths are Landlock's job.
//
// 'thawd', the RPC front when its templates live in workers: the same
// minus KVM, userfaultfd and guest memory, plus TCP and UDP sockets (the
// TCP listener, the metrics endpoint), chmod/chown for its socket, and
// pidfds to watch and stop its workers. It starts workers only through the
// WorkerSpawner thread made before the filter (template_worker.h).
#pragma once

#include <sys/types.h>

#include <vector>

#include "base/seccomp_filter.h"

namespace thaw::daemon {

// `own_pid`: the process's pid, the only target tgkill may name.
std::vector<SeccompRule> template_worker_rules(pid_t own_pid);
std::vector<SeccompRule> thawd_rules(pid_t own_pid);

// Compiled once per process, for the calling process's pid.
const SeccompFilter& template_worker_filter();
const SeccompFilter& thawd_filter();

}  // namespace thaw::daemon
