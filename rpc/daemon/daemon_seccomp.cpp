#include "rpc/daemon/daemon_seccomp.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <initializer_list>

#include "vmm/kvm/kvm_abi.h"

namespace thaw::daemon {

namespace {

SeccompRule any(long nr) { return seccomp_any_arguments(nr); }
SeccompRule when(long nr, unsigned arg, uint64_t value, uint64_t mask = ~0ull) {
  return seccomp_arg_equals(nr, arg, value, mask);
}

// PAGEMAP_SCAN (Linux 6.7, include/uapi/linux/fs.h): _IOWR('f', 16, struct
// pm_scan_arg), 96 bytes. Spelled out: Debian 12's headers predate it.
constexpr unsigned long kPagemapScan = 0xc0606610ul;

// The requests whose argument ends in a flexible array come from thaw's own
// ABI header: <linux/kvm.h>'s sizes are wrong in C++ (vmm/kvm/kvm_abi.h).
std::vector<SeccompRule> kvm_ioctl_rules() {
  std::vector<SeccompRule> rules;
  for (unsigned long request : std::initializer_list<unsigned long>{
           // /dev/kvm
           KVM_GET_API_VERSION, KVM_CREATE_VM, KVM_CHECK_EXTENSION, KVM_GET_VCPU_MMAP_SIZE,
           vmm::kvm::abi::kGetSupportedCpuid, vmm::kvm::abi::kGetMsrIndexList,
           // a VM
           KVM_CREATE_VCPU, KVM_SET_USER_MEMORY_REGION, KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_SET_TSS_ADDR,
           KVM_SET_IDENTITY_MAP_ADDR, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP, KVM_GET_PIT2, KVM_SET_PIT2, KVM_GET_CLOCK,
           KVM_SET_CLOCK, KVM_IRQFD, KVM_IOEVENTFD, KVM_IRQ_LINE, KVM_GET_STATS_FD,
           // a vCPU
           KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_FPU, KVM_SET_FPU,
           vmm::kvm::abi::kGetXsave, vmm::kvm::abi::kGetXsave2, vmm::kvm::abi::kSetXsave, KVM_GET_XCRS, KVM_SET_XCRS, vmm::kvm::abi::kGetMsrs, vmm::kvm::abi::kSetMsrs,
           KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_GET_MP_STATE, KVM_SET_MP_STATE, KVM_GET_VCPU_EVENTS,
           KVM_SET_VCPU_EVENTS, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, vmm::kvm::abi::kGetCpuid2, vmm::kvm::abi::kSetCpuid2,
           KVM_GET_TSC_KHZ, KVM_SET_TSC_KHZ, KVM_KVMCLOCK_CTRL,
           // lazily paged guest memory, and the private-memory figures
           static_cast<unsigned long>(UFFDIO_API), static_cast<unsigned long>(UFFDIO_REGISTER),
           static_cast<unsigned long>(UFFDIO_COPY), static_cast<unsigned long>(UFFDIO_ZEROPAGE),
           static_cast<unsigned long>(UFFDIO_WAKE), kPagemapScan}) {
    rules.push_back(seccomp_ioctl_request(request));
  }
  return rules;
}

// Both processes: their own files, threads, signals to themselves, event
// loops, identity and limits.
std::vector<SeccompRule> process_rules(pid_t own_pid) {
  return {
      any(__NR_openat), any(__NR_read), any(__NR_readv), any(__NR_pread64), any(__NR_preadv), any(__NR_write),
      any(__NR_writev), any(__NR_pwrite64), any(__NR_pwritev), any(__NR_lseek), any(__NR_close),
      any(__NR_newfstatat), any(__NR_statx), any(__NR_getdents64), any(__NR_mkdir), any(__NR_mkdirat),
      any(__NR_rename), any(__NR_renameat), any(__NR_renameat2), any(__NR_rmdir), any(__NR_unlink),
      any(__NR_unlinkat), any(__NR_fsync), any(__NR_fdatasync), any(__NR_ftruncate), any(__NR_fallocate),
      any(__NR_fadvise64), any(__NR_flock), any(__NR_access), any(__NR_faccessat), any(__NR_faccessat2),
      any(__NR_readlink), any(__NR_readlinkat), any(__NR_getcwd), any(__NR_fcntl), any(__NR_dup), any(__NR_dup3),
      any(__NR_pipe2), any(__NR_copy_file_range), any(__NR_sendfile), any(__NR_madvise),
      // Threads only: clone3 hides its flags from seccomp, so it says ENOSYS
      // and glibc uses clone, which must carry CLONE_THREAD.
      SeccompRule{__NR_clone3, {}, ENOSYS}, when(__NR_clone, 0, CLONE_THREAD, CLONE_THREAD),
      any(__NR_set_robust_list), any(__NR_rseq), any(__NR_sched_setscheduler), any(__NR_sched_getaffinity),
      when(__NR_tgkill, 0, static_cast<uint64_t>(own_pid)), any(__NR_sigaltstack), any(__NR_rt_sigaction),
      when(__NR_prctl, 0, PR_SET_NAME), when(__NR_prctl, 0, PR_GET_SECCOMP),
      // Event loops.
      any(__NR_epoll_create1), any(__NR_epoll_ctl), any(__NR_epoll_wait), any(__NR_epoll_pwait),
      any(__NR_eventfd2), any(__NR_signalfd4), any(__NR_poll), any(__NR_ppoll),
      // Sockets once made (which families may be made is each filter's own).
      when(__NR_socketpair, 0, AF_UNIX), any(__NR_bind), any(__NR_listen), any(__NR_accept), any(__NR_accept4),
      any(__NR_connect), any(__NR_sendto), any(__NR_recvfrom), any(__NR_sendmsg), any(__NR_recvmsg),
      any(__NR_shutdown), any(__NR_getsockopt), any(__NR_setsockopt), any(__NR_getsockname), any(__NR_getpeername),
      // Identity, limits, randomness.
      any(__NR_getrandom), any(__NR_getppid), any(__NR_getuid), any(__NR_geteuid), any(__NR_getgid),
      any(__NR_getegid), any(__NR_getgroups), any(__NR_uname), any(__NR_prlimit64), any(__NR_getrlimit),
      any(__NR_sysinfo),
      // fd flags, and isatty() from stdio.
      seccomp_ioctl_request(FIOCLEX), seccomp_ioctl_request(FIONCLEX), seccomp_ioctl_request(FIONBIO),
      seccomp_ioctl_request(TCGETS),
  };
}

std::vector<SeccompRule> joined(std::vector<std::vector<SeccompRule>> parts) {
  std::vector<SeccompRule> all;
  for (auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  return with_thread_basics(std::move(all));
}

}  // namespace

std::vector<SeccompRule> template_worker_rules(pid_t own_pid) {
  return joined({
      process_rules(own_pid),
      kvm_ioctl_rules(),
      {
          // Guest memory: memfd or file mappings, never executable
          // (seccomp_thread_basics), paged in by userfaultfd.
          any(__NR_memfd_create), any(__NR_userfaultfd), any(__NR_mincore),
          // What a vCPU or muxer thread does to put its own filter on.
          when(__NR_prctl, 0, PR_SET_NO_NEW_PRIVS), when(__NR_seccomp, 0, SECCOMP_SET_MODE_FILTER),
          // Each vsock device's deadline timer (its muxer thread sets it).
          any(__NR_timerfd_create), any(__NR_timerfd_settime),
          // io_uring for snapshot reads.
          any(__NR_io_uring_setup), any(__NR_io_uring_enter), any(__NR_io_uring_register),
          // Unix sockets only: thawd's connection, the clones' vsock sockets.
          when(__NR_socket, 0, AF_UNIX),
      },
  });
}

std::vector<SeccompRule> thawd_rules(pid_t own_pid) {
  return joined({
      process_rules(own_pid),
      {
          // The unix socket (sd_notify's too), the TCP listener and metrics.
          when(__NR_socket, 0, AF_UNIX), when(__NR_socket, 0, AF_INET), when(__NR_socket, 0, AF_INET6),
          // The socket's mode and group (socket_group).
          any(__NR_chmod), any(__NR_fchmod), any(__NR_fchmodat), any(__NR_chown), any(__NR_fchown),
          any(__NR_fchownat), any(__NR_umask),
          // Watching, stopping and reaping its workers.
          any(__NR_pidfd_open), any(__NR_pidfd_send_signal), any(__NR_waitid), any(__NR_wait4),
          any(__NR_select), any(__NR_pselect6), seccomp_ioctl_request(FIONREAD),
      },
  });
}

const SeccompFilter& template_worker_filter() {
  static const SeccompFilter filter = SeccompFilter::compile("worker", template_worker_rules(::getpid()));
  return filter;
}

const SeccompFilter& thawd_filter() {
  static const SeccompFilter filter = SeccompFilter::compile("thawd", thawd_rules(::getpid()));
  return filter;
}

}  // namespace thaw::daemon
