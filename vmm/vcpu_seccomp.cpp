#include "vmm/vcpu_seccomp.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <ctime>

#include <spdlog/spdlog.h>

#include "vmm/kvm_host_check.h"

namespace thaw::vmm {

namespace {

SeccompRule any_arguments(long nr) { return SeccompRule{nr, {}}; }

// ioctl(fd, request): the request is an unsigned int in the kernel; compare
// the low 32 bits only.
SeccompRule ioctl_request(unsigned long request) {
  return SeccompRule{__NR_ioctl, {{.arg = 1, .mask = 0xffff'ffffull, .value = request}}};
}

// mmap/mprotect without PROT_EXEC (argument 2): no new code on this thread.
SeccompRule without_exec(long nr) { return SeccompRule{nr, {{.arg = 2, .mask = PROT_EXEC, .value = 0}}}; }

SeccompRule madvise_advice(long advice) {
  return SeccompRule{__NR_madvise, {{.arg = 2, .mask = ~0ull, .value = static_cast<uint64_t>(advice)}}};
}

}  // namespace

std::vector<SeccompRule> vcpu_thread_rules() {
  return {
      // The run loop, and the registers a failure message shows (where_is_guest).
      ioctl_request(KVM_RUN),
      ioctl_request(KVM_GET_REGS),
      ioctl_request(KVM_GET_SREGS),
      // The 8250's interrupt line, raised and lowered from the port write
      // that changes it (Linux's serial driver runs interrupt-driven; the
      // mini guest polls, so only a Linux guest showed this).
      ioctl_request(KVM_IRQ_LINE),
      // Devices answer on this thread: console bytes, eventfd kicks to the
      // vsock muxer, and closing a guest's streams when its driver resets
      // the device.
      any_arguments(__NR_write),
      any_arguments(__NR_writev),
      any_arguments(__NR_close),
      // glibc's stdio sizes a FILE's buffer with fstat on its first output,
      // and a device's log line may be the first: fstat of an fd only.
      any_arguments(__NR_fstat),
      SeccompRule{__NR_newfstatat, {{.arg = 3, .mask = ~0ull, .value = AT_EMPTY_PATH}}},
      // Locks and condition variables (RunControl, the devices' queues).
      any_arguments(__NR_futex),
      any_arguments(__NR_sched_yield),
      // A guest that stops or pauses the VM kicks the other vCPUs (pthread_kill).
      any_arguments(__NR_getpid),
      any_arguments(__NR_gettid),
      any_arguments(__NR_tgkill),
      // The kick signal's handler returns; glibc masks signals around some calls.
      any_arguments(__NR_rt_sigreturn),
      any_arguments(__NR_rt_sigprocmask),
      any_arguments(__NR_restart_syscall),
      // malloc: this thread's arena grows and shrinks; never executable.
      without_exec(__NR_mmap),
      without_exec(__NR_mprotect),
      any_arguments(__NR_munmap),
      any_arguments(__NR_mremap),
      any_arguments(__NR_brk),
      madvise_advice(MADV_DONTNEED),
      madvise_advice(MADV_FREE),
      // Clocks, where the vDSO falls back to the kernel.
      any_arguments(__NR_clock_gettime),
      any_arguments(__NR_gettimeofday),
      any_arguments(__NR_clock_nanosleep),
      any_arguments(__NR_nanosleep),
      // The thread's end (and the SIGSYS reporter's).
      any_arguments(__NR_exit),
      any_arguments(__NR_exit_group),
  };
}

const SeccompFilter& vcpu_thread_filter() {
  // An immutable value computed once: compiling costs far more than applying.
  static const SeccompFilter filter = SeccompFilter::compile("vcpu", vcpu_thread_rules());
  return filter;
}

void prepare_thread_for_vcpu_filter() {
  ::tzset();
  spdlog::default_logger_raw();
  host_kvm_is_pvm();  // its file is read now, not on the filtered thread
}

}  // namespace thaw::vmm
