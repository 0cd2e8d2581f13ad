#include "devices/virtio/vsock_seccomp.h"

#include <sys/socket.h>
#include <sys/syscall.h>

namespace thaw::devices {

// Beside these: the device mutex, malloc for connection buffers, the
// deadlines' clocks and the thread's end (seccomp_thread_basics). A muxer
// starts no threads: a pool's one is started once and applies the filter
// itself (vmm/vm_thread_spawners.h).
std::vector<SeccompRule> vsock_muxer_rules() {
  auto rules = with_thread_basics({
      // The loop: its epoll sets (devices and connections come and go),
      // the queue-notify and stop eventfds, each device's deadline timerfd,
      // and the guest's interrupt (an irqfd write).
      seccomp_any_arguments(__NR_epoll_wait),
      seccomp_any_arguments(__NR_epoll_pwait),
      seccomp_any_arguments(__NR_epoll_ctl),
      seccomp_any_arguments(__NR_timerfd_settime),
      seccomp_any_arguments(__NR_read),
      seccomp_any_arguments(__NR_write),
      seccomp_any_arguments(__NR_close),
      // Host clients: accepted on the device's socket, their CONNECT line
      // peeked and read, bytes sent both ways, half-closed at the guest's
      // SHUTDOWN.
      seccomp_any_arguments(__NR_accept4),
      seccomp_any_arguments(__NR_recvfrom),
      seccomp_any_arguments(__NR_sendto),
      seccomp_any_arguments(__NR_shutdown),
      // A guest's connection to host port P is a connect to `<uds>_P`: a
      // unix stream socket, nothing else.
      SeccompRule{__NR_socket, {{.arg = 0, .mask = ~0ull, .value = AF_UNIX}}},
      seccomp_any_arguments(__NR_connect),
  });
  return rules;
}

const SeccompFilter& vsock_muxer_filter() {
  static const SeccompFilter filter = SeccompFilter::compile("vsock", vsock_muxer_rules());
  return filter;
}

}  // namespace thaw::devices
