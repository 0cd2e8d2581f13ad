#include "vmm/vcpu_seccomp.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <ctime>
#include <mutex>

#include <spdlog/spdlog.h>

#include "vmm/kvm_host_check.h"

namespace thaw::vmm {

// Beside these: locks (RunControl, the devices' queues), malloc, clocks, the
// kick signal's return and the thread's end (seccomp_thread_basics), and
// starting threads under this same filter (seccomp_thread_creation_rules):
// a pool's vCPU threads are started by one filtered thread and inherit its
// filter, because applying a filter costs ~75-100 us of CPU each time.
std::vector<SeccompRule> vcpu_thread_rules() {
  auto rules = with_thread_basics({
      // The run loop, and the registers a failure message shows (where_is_guest).
      seccomp_ioctl_request(KVM_RUN),
      seccomp_ioctl_request(KVM_GET_REGS),
      seccomp_ioctl_request(KVM_GET_SREGS),
      // The 8250's interrupt line, raised and lowered from the port write
      // that changes it (Linux's serial driver runs interrupt-driven; the
      // mini guest polls, so only a Linux guest showed this).
      seccomp_ioctl_request(KVM_IRQ_LINE),
      // Devices answer on this thread: console bytes, eventfd kicks to the
      // vsock muxer, and closing a guest's streams when its driver resets
      // the device.
      seccomp_any_arguments(__NR_write),
      seccomp_any_arguments(__NR_writev),
      seccomp_any_arguments(__NR_close),
      // A guest that stops or pauses the VM kicks the other vCPUs (pthread_kill).
      seccomp_any_arguments(__NR_tgkill),
  });
  for (auto& rule : seccomp_thread_creation_rules()) rules.push_back(std::move(rule));
  return rules;
}

const SeccompFilter& vcpu_thread_filter() {
  // An immutable value computed once: compiling costs far more than applying.
  static const SeccompFilter filter = SeccompFilter::compile("vcpu", vcpu_thread_rules());
  return filter;
}

void prepare_thread_for_vcpu_filter() {
  // Process-wide state: once is enough (tzset stats /etc/localtime on
  // every call, a system call per restored clone).
  static std::once_flag time_zone_read;
  std::call_once(time_zone_read, [] { ::tzset(); });
  spdlog::default_logger_raw();
  host_kvm_is_pvm();  // its file is read now, not on the filtered thread
}

}  // namespace thaw::vmm
