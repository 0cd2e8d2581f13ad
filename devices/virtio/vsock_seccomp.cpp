#include "devices/virtio/vsock_seccomp.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>

namespace thaw::devices {

namespace {

SeccompRule any_arguments(long nr) { return SeccompRule{nr, {}}; }

SeccompRule without_exec(long nr) { return SeccompRule{nr, {{.arg = 2, .mask = PROT_EXEC, .value = 0}}}; }

SeccompRule madvise_advice(long advice) {
  return SeccompRule{__NR_madvise, {{.arg = 2, .mask = ~0ull, .value = static_cast<uint64_t>(advice)}}};
}

}  // namespace

std::vector<SeccompRule> vsock_muxer_rules() {
  return {
      // The loop: its epoll set (connections come and go), the queue-notify
      // and stop eventfds, and the guest's interrupt (an irqfd write).
      any_arguments(__NR_epoll_wait),
      any_arguments(__NR_epoll_pwait),
      any_arguments(__NR_epoll_ctl),
      any_arguments(__NR_read),
      any_arguments(__NR_write),
      any_arguments(__NR_close),
      // Host clients: accepted on the device's socket, their CONNECT line
      // peeked and read, bytes sent both ways, half-closed at the guest's
      // SHUTDOWN.
      any_arguments(__NR_accept4),
      any_arguments(__NR_recvfrom),
      any_arguments(__NR_sendto),
      any_arguments(__NR_shutdown),
      // A guest's connection to host port P is a connect to `<uds>_P`: a
      // unix stream socket, nothing else.
      SeccompRule{__NR_socket, {{.arg = 0, .mask = ~0ull, .value = AF_UNIX}}},
      any_arguments(__NR_connect),
      // A device's log line may be the process's first stdio output.
      any_arguments(__NR_fstat),
      SeccompRule{__NR_newfstatat, {{.arg = 3, .mask = ~0ull, .value = AT_EMPTY_PATH}}},
      // The device mutex and the pause condition variable.
      any_arguments(__NR_futex),
      any_arguments(__NR_sched_yield),
      any_arguments(__NR_getpid),
      any_arguments(__NR_gettid),
      any_arguments(__NR_rt_sigreturn),
      any_arguments(__NR_rt_sigprocmask),
      any_arguments(__NR_restart_syscall),
      // malloc (buffers per connection); never executable.
      without_exec(__NR_mmap),
      without_exec(__NR_mprotect),
      any_arguments(__NR_munmap),
      any_arguments(__NR_mremap),
      any_arguments(__NR_brk),
      madvise_advice(MADV_DONTNEED),
      madvise_advice(MADV_FREE),
      // Deadlines (connect and close timeouts), where the vDSO falls back.
      any_arguments(__NR_clock_gettime),
      any_arguments(__NR_gettimeofday),
      any_arguments(__NR_clock_nanosleep),
      any_arguments(__NR_nanosleep),
      // The thread's end.
      any_arguments(__NR_exit),
      any_arguments(__NR_exit_group),
  };
}

const SeccompFilter& vsock_muxer_filter() {
  static const SeccompFilter filter = SeccompFilter::compile("vsock", vsock_muxer_rules());
  return filter;
}

}  // namespace thaw::devices
